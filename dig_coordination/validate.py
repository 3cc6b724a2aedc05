"""What a dig request must be, checked before anything is stored.

:class:`DigRequestIn` is the HTTP body (``POST /api/dig-requests``);
:func:`check` turns it into a :class:`ValidRequest` with the dig area as a
polygon in EPSG:25832, or raises :class:`~layers.errors.InvalidInput` naming
the field, vertex or limit at fault. A refused request changes nothing.

Decisions (where the issue is silent):

* **Coordinates** are x/east first, as in GeoJSON. ``crs`` defaults to
  CRS84 (lon/lat); EPSG:4326 is read lon/lat too, since GeoJSON has no other
  order. Coordinates that cannot be in the declared CRS (a longitude of
  720000; a "projected" point at (12.5, 55.7)) are refused as the wrong CRS.
* **One polygon**: a MultiPolygon of one part is that polygon; more parts are
  refused (file one request per part, as LER does). Holes are refused (KLIC
  allows none). The ring must be closed. Self-intersections are named with
  their position in the input CRS.
* **A line with a width** becomes the polygon of its flat-ended buffer of half
  the width either side; the vertex limit applies to the line as drawn.
* **Period**: the end may not be before the start; normal and planning
  requests may not start in the past nor more than ``max_days_ahead``
  working days ahead; an emergency may have started up to
  :data:`EMERGENCY_BACKDATE_DAYS` days ago (the work may already be under
  way) and must start within the same limit ahead.
* **Limits by kind**: normal and emergency use the normal extent and area
  limits, planning the planning ones (all settings).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import shapely
from pydantic import BaseModel, Field
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import LineString, Polygon, shape
from shapely.geometry.base import BaseGeometry

from dig_coordination.model import KINDS, WORK_TYPES
from dig_coordination.workdays import WorkingCalendar
from layers.crs import CRS84, STORAGE_EPSG, reproject
from layers.errors import CRSMismatch, InvalidInput
from layers.settings import DigLimits

EMERGENCY_BACKDATE_DAYS = 3
MAX_WORK_TYPES = 6


class Contact(BaseModel):
    """Who answers for the work on site."""

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=200)


class DigRequestIn(BaseModel):
    """A dig request as filed (GeoJSON geometry plus fields)."""

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon, or LineString with line_width_m")
    crs: str = Field(default=CRS84, description="CRS of the coordinates (OGC URI or EPSG:n)")
    line_width_m: float | None = Field(default=None, description="Width of a dig along a line")
    kind: Literal["normal", "planning", "emergency"] = "normal"
    start_date: date
    end_date: date
    work_types: list[str] = Field(min_length=1)
    depth_m: float | None = Field(default=None, description="Planned depth below ground (m)")
    description: str = Field(default="", max_length=2000)
    contact: Contact


@dataclass(frozen=True)
class ValidRequest:
    """A checked request: the dig area in EPSG:25832 and the cleaned fields."""

    area: Polygon
    drawn: BaseGeometry
    line_width_m: float | None
    kind: str
    start_date: date
    end_date: date
    work_types: list[str]
    depth_m: float | None
    description: str
    contact: dict[str, Any]


def _epsg(uri: str) -> int:
    """The EPSG code of the input CRS (0 for CRS84); any CRS in the EPSG registry is read."""
    text = uri.strip()
    if text in (CRS84, "CRS84", "OGC:CRS84"):
        return 0
    match = re.match(r"^(?:EPSG:|urn:ogc:def:crs:EPSG::|https?://www\.opengis\.net/def/crs/EPSG/"
                     r"0/)(\d+)$", text, re.IGNORECASE)  # fmt: skip
    if match is None:
        raise CRSMismatch(f"crs {uri!r} is not an OGC CRS URI or EPSG:n", field="crs")
    epsg = int(match.group(1))
    try:
        crs = CRS.from_epsg(epsg)
    except CRSError as exc:
        raise CRSMismatch(f"crs {uri!r}: EPSG:{epsg} is not in the EPSG registry",
                          field="crs") from exc  # fmt: skip
    if not (crs.is_projected or crs.is_geographic):
        raise CRSMismatch(f"crs {uri!r} is not a horizontal CRS", field="crs")
    return epsg


def _positions(geometry: dict[str, Any]) -> list:
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list | tuple) or not coords:
        raise InvalidInput(f"the {kind} has no coordinates", field="geometry.coordinates")
    return coords


def _check_numbers(points: list, field: str) -> None:
    for i, p in enumerate(points):
        ok = isinstance(p, list | tuple) and len(p) in (2, 3)
        ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in p)
        if not ok:
            raise InvalidInput(f"position {i} ({p!r}) is not a pair of finite numbers", field=field)


def _as_shape(body: DigRequestIn) -> BaseGeometry:
    geometry = body.geometry
    kind = geometry.get("type")
    if kind == "MultiPolygon":
        parts = _positions(geometry)
        if len(parts) != 1:
            raise InvalidInput(
                f"a request is one polygon; this MultiPolygon has {len(parts)} parts: "
                "file one request per part",
                field="geometry",
            )
        geometry = {"type": "Polygon", "coordinates": parts[0]}
        kind = "Polygon"
    if kind == "Polygon":
        rings = _positions(geometry)
        if len(rings) > 1:
            raise InvalidInput(
                f"the polygon has {len(rings) - 1} hole(s); a dig area may have none",
                field="geometry",
            )
        ring = rings[0]
        if not isinstance(ring, list | tuple):
            raise InvalidInput("the polygon's ring is not a list of positions", field="geometry")
        _check_numbers(ring, "geometry.coordinates[0]")
        if len(ring) < 4:
            raise InvalidInput(
                f"the polygon's ring has {len(ring)} positions; it needs at least 4 (closed)",
                field="geometry",
            )
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise InvalidInput(
                "the polygon's ring is not closed: its first and last positions differ",
                field="geometry",
            )
        if body.line_width_m is not None:
            raise InvalidInput("line_width_m is for a line; a polygon has no width",
                               field="line_width_m")  # fmt: skip
    elif kind == "LineString":
        line = _positions(geometry)
        _check_numbers(line, "geometry.coordinates")
        if len(line) < 2:
            raise InvalidInput("the line needs at least 2 positions", field="geometry")
        if body.line_width_m is None:
            raise InvalidInput("a line needs line_width_m, the width of the dig",
                               field="line_width_m")  # fmt: skip
    else:
        raise InvalidInput(
            f"a dig area is a Polygon, or a LineString with line_width_m; got {kind!r}",
            field="geometry.type",
        )
    return shape(geometry)


def _check_crs(drawn: BaseGeometry, epsg: int) -> None:
    crs = CRS.from_epsg(epsg) if epsg else CRS.from_user_input("OGC:CRS84")
    xs, ys = zip(*shapely.get_coordinates(drawn), strict=True)
    if crs.is_geographic:
        for x, y in zip(xs, ys, strict=True):
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise CRSMismatch(
                    f"coordinate ({x:g}, {y:g}) is not longitude/latitude: give the CRS of the "
                    "coordinates in 'crs' (e.g. http://www.opengis.net/def/crs/EPSG/0/25832)",
                    field="geometry",
                )
    elif all(abs(x) <= 180 for x in xs) and all(abs(y) <= 90 for y in ys):
        raise CRSMismatch(
            f"the coordinates look like longitude/latitude but crs says EPSG:{epsg}; "
            "omit 'crs' for lon/lat (CRS84)",
            field="crs",
        )


def _to_storage(drawn: BaseGeometry, epsg: int) -> BaseGeometry:
    return reproject(drawn, 0 if epsg == 4326 else epsg, STORAGE_EPSG)


def _vertices(drawn: BaseGeometry) -> int:
    if isinstance(drawn, Polygon):
        return len(drawn.exterior.coords) - 1
    return len(drawn.coords)


def check(
    body: DigRequestIn, limits: DigLimits, calendar: WorkingCalendar, today: date
) -> ValidRequest:
    """Check ``body`` against the rules and limits; the valid request or InvalidInput."""
    epsg = _epsg(body.crs)
    drawn = _as_shape(body)
    _check_crs(drawn, epsg)
    n = _vertices(drawn)
    if n > limits.max_vertices:
        raise InvalidInput(
            f"the dig area has {n} vertices; at most {limits.max_vertices} are allowed",
            field="geometry",
        )
    if isinstance(drawn, Polygon) and not drawn.is_valid:
        raise InvalidInput(
            f"the polygon is not valid: {shapely.is_valid_reason(drawn)}", field="geometry"
        )
    if isinstance(drawn, LineString) and not drawn.is_simple:
        raise InvalidInput("the line crosses itself; draw the dig as a polygon", field="geometry")
    stored = _to_storage(drawn, epsg)
    if isinstance(stored, LineString):
        width = body.line_width_m
        if not (width and 0 < width <= limits.max_line_width_m):
            raise InvalidInput(
                f"line_width_m must be above 0 and at most {limits.max_line_width_m:g} m",
                field="line_width_m",
            )
        if stored.length == 0:
            raise InvalidInput("the line has no length", field="geometry")
        area = stored.buffer(width / 2, cap_style="flat", join_style="mitre", mitre_limit=2.0)
    else:
        area = stored
    if area.is_empty or area.area <= 0:
        raise InvalidInput("the dig area has no area", field="geometry")
    _check_size(area, body.kind, limits)
    work_types = _check_work(body)
    _check_period(body, limits, calendar, today)
    if body.depth_m is not None and not 0 < body.depth_m <= limits.max_depth_m:
        raise InvalidInput(
            f"depth_m must be above 0 and at most {limits.max_depth_m:g} m", field="depth_m"
        )
    contact = body.contact.model_dump(exclude_none=True)
    if not (contact.get("phone") or contact.get("email")):
        raise InvalidInput("the contact needs a phone number or an email address",
                           field="contact")  # fmt: skip
    return ValidRequest(
        area=shapely.set_precision(area, 0.001),
        drawn=stored,
        line_width_m=body.line_width_m,
        kind=body.kind,
        start_date=body.start_date,
        end_date=body.end_date,
        work_types=work_types,
        depth_m=body.depth_m,
        description=body.description.strip(),
        contact=contact,
    )


def _check_size(area: Polygon, kind: str, limits: DigLimits) -> None:
    planning = kind == "planning"
    max_extent = limits.planning_max_extent_m if planning else limits.normal_max_extent_m
    max_area = limits.planning_max_area_m2 if planning else limits.normal_max_area_m2
    minx, miny, maxx, maxy = area.bounds
    width, height = maxx - minx, maxy - miny
    if width > max_extent or height > max_extent:
        raise InvalidInput(
            f"the dig area spans {width:,.0f} x {height:,.0f} m; a {kind} request may span at "
            f"most {max_extent:,.0f} x {max_extent:,.0f} m",
            field="geometry",
        )
    if area.area > max_area:
        raise InvalidInput(
            f"the dig area is {area.area:,.0f} m2; a {kind} request may cover at most "
            f"{max_area:,.0f} m2",
            field="geometry",
        )


def _check_work(body: DigRequestIn) -> list[str]:
    unknown = [w for w in body.work_types if w not in WORK_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown work type(s) {', '.join(map(repr, unknown))}; known: "
            + ", ".join(WORK_TYPES),
            field="work_types",
        )
    work = list(dict.fromkeys(body.work_types))
    if len(work) > MAX_WORK_TYPES:
        raise InvalidInput(f"at most {MAX_WORK_TYPES} work types", field="work_types")
    if body.kind not in KINDS:  # pragma: no cover - pydantic's Literal refuses it first
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    return work


def _check_period(
    body: DigRequestIn, limits: DigLimits, calendar: WorkingCalendar, today: date
) -> None:
    if body.end_date < body.start_date:
        raise InvalidInput(
            f"end_date {body.end_date} is before start_date {body.start_date}", field="end_date"
        )
    if (body.end_date - body.start_date).days + 1 > limits.max_period_days:
        raise InvalidInput(
            f"the dig period may last at most {limits.max_period_days} days", field="end_date"
        )
    earliest = today - timedelta(days=EMERGENCY_BACKDATE_DAYS if body.kind == "emergency" else 0)
    if body.start_date < earliest:
        allowed = (
            f"an emergency may have started at most {EMERGENCY_BACKDATE_DAYS} days ago"
            if body.kind == "emergency"
            else "a normal or planning request cannot start in the past"
        )
        raise InvalidInput(f"start_date {body.start_date} lies in the past: {allowed}",
                           field="start_date")  # fmt: skip
    latest = calendar.add_working_days(today, limits.max_days_ahead)
    if body.start_date > latest:
        raise InvalidInput(
            f"start_date {body.start_date} is more than {limits.max_days_ahead} working days "
            f"ahead (the latest start is {latest})",
            field="start_date",
        )
