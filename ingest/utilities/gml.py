"""Streaming GML: features as flat records, geometries as shapely objects.

GDAL's GML driver makes one layer per feature type, drops ``xlink:href``
references (an IMKL cable's ``inNetwork`` and ``link``, the code-list values
of status and type) and keeps one geometry property per layer: a KLIC
delivery read that way loses which network, and so which owner and theme,
every cable belongs to. The utilities readers therefore parse GML with the
standard library's ``xml.etree.ElementTree.iterparse`` (expat, no external
entities fetched): each feature becomes a :class:`Feature` (flattened
properties, references, geometries) and its elements are freed at once, so
memory holds records, not the XML tree. lxml would add nothing here.

Decisions:

- a *feature* is a child of a member element of the root (``gml:featureMember``,
  ``gml:featureMembers``, LER's ``ler:ledningMember``...); other children of
  the root (LER's answer id and contact) are yielded as header features;
- properties are flattened to dotted paths of property names (class
  elements such as ``NEN3610ID`` or ``Kontaktprofil`` add no step); a
  repeated property becomes a list; ``uom`` goes to ``<path>_uom``; nil
  properties are left out (a class element is one with children whose name
  starts upper case); a code-list reference (an http URL) is kept as
  its last path segment, an internal reference as written;
- geometries: Point, LineString, LinearRing, Curve (segments joined; arcs
  by their control points), CompositeCurve, OrientableCurve, Polygon,
  Surface, and the Multi* kinds; ``srsName`` and ``srsDimension`` are
  inherited from enclosing elements; geographic CRSs named as URN or URL
  have their lat/lon axes swapped to lon/lat; heights of -99, -999 and
  -9999 (LER's "unknown") become NaN;
- a compound CRS (EPSG:7416, ETRS89 / UTM 32N + DVR90) is read as its
  horizontal part, heights kept as they are.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO

import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import (
    GeometryCollection,
    LinearRing,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)  # fmt: skip

from layers.errors import CRSMismatch, InvalidInput

GML_NAMESPACES = ("http://www.opengis.net/gml/3.2", "http://www.opengis.net/gml")
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
GEOMETRIES = {"Point", "LineString", "LinearRing", "Curve", "CompositeCurve", "OrientableCurve",
              "Polygon", "Surface", "MultiPoint", "MultiCurve", "MultiLineString", "MultiSurface",
              "MultiPolygon", "MultiGeometry", "CompositeSurface"}  # fmt: skip
UNKNOWN_HEIGHTS = (-99.0, -999.0, -9999.0)
_EPSG = re.compile(r"(?:EPSG(?:/[\d.]+/|::?|:[\d.]+:)|epsg\.xml#)(\d+)\s*$", re.IGNORECASE)


@dataclass
class Feature:
    """One GML feature, flattened."""

    tag: str
    namespace: str
    gml_id: str | None
    props: dict[str, object] = field(default_factory=dict)
    hrefs: dict[str, list[str]] = field(default_factory=dict)
    geometries: list[tuple[str, object]] = field(default_factory=list)
    srs: str | None = None
    header: bool = False

    def first(self, *paths: str) -> object | None:
        """The first value found under any of ``paths`` (the first item of a list)."""
        for path in paths:
            value = self.props.get(path)
            if isinstance(value, list):
                value = value[0] if value else None
            if value is not None:
                return value
        return None

    def href(self, path: str) -> str | None:
        """The first reference under a property path."""
        refs = self.hrefs.get(path)
        return refs[0] if refs else None

    @property
    def geometry(self) -> object | None:
        """The geometry of the highest dimension (a culvert's centre line over its point)."""
        if not self.geometries:
            return None
        return max(self.geometries, key=lambda g: shapely.get_dimensions(g[1]))[1]


def split(tag: str) -> tuple[str, str]:
    """``{namespace}local`` -> ``(namespace, local)``."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def srid_of(srs: str | None) -> int | None:
    """The EPSG code in an ``srsName`` (URN, URL or ``EPSG:n``), or ``None``."""
    if not srs:
        return None
    match = _EPSG.search(srs.strip())
    return int(match.group(1)) if match else None


@lru_cache(maxsize=32)
def storage_crs(srid: int) -> CRS:
    """The CRS to declare for coordinates in ``srid``: the horizontal part of a compound CRS.

    Raises
    ------
    CRSMismatch
        ``srid`` is no EPSG code PROJ knows (an ``srsName`` of ``EPSG:999999``).
    """
    try:
        crs = CRS.from_epsg(srid)
    except CRSError as exc:
        raise CRSMismatch(f"srsName EPSG:{srid} is not a CRS geoby knows", field="srsName",
                          log_detail=str(exc)) from exc  # fmt: skip
    return crs.sub_crs_list[0] if crs.is_compound else crs


@lru_cache(maxsize=32)
def _swap_axes(srs: str) -> bool:
    srid = srid_of(srs)
    if srid is None or not srs.lower().startswith(("urn:", "http")):
        return False
    return storage_crs(srid).is_geographic


def _swap(coords: np.ndarray) -> np.ndarray:
    out = coords.copy()
    out[:, [0, 1]] = coords[:, [1, 0]]
    return out


def iter_features(stream: IO[bytes], *, name: str) -> Iterator[Feature]:
    """Features of a GML document, one at a time.

    Parameters
    ----------
    stream
        The document (a binary file object).
    name
        The file name, for messages.

    Raises
    ------
    InvalidInput
        The document is not well-formed XML (naming line and column), or a
        geometry cannot be read (naming the feature).
    """
    depth, root, member, default_srs = 0, None, False, None
    try:
        for event, elem in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    root = elem
                elif depth == 2:
                    member = split(elem.tag)[1].lower().endswith(("member", "members"))
                continue
            if depth == 3 and member:
                yield _feature(elem, default_srs, name)
                elem.clear()
            elif depth == 2:
                local = split(elem.tag)[1]
                if local == "boundedBy":
                    envelope = next(iter(elem), None)
                    default_srs = envelope.get("srsName") if envelope is not None else None
                elif not member and len(elem):
                    header = _feature(elem, default_srs, name)
                    header.header = True
                    yield header
                root.clear()
            depth -= 1
    except ET.ParseError as exc:
        line, column = exc.position
        raise InvalidInput(f"{name}: not well-formed XML at line {line}, column {column}",
                           record=f"line {line}", log_detail=str(exc)) from exc  # fmt: skip


def _feature(elem: ET.Element, srs: str | None, name: str) -> Feature:
    ns, tag = split(elem.tag)
    gml_id = next((elem.get(f"{{{g}}}id") for g in GML_NAMESPACES if elem.get(f"{{{g}}}id")),
                  elem.get("fid"))  # fmt: skip
    feature = Feature(tag=tag, namespace=ns, gml_id=gml_id, srs=elem.get("srsName") or srs)
    try:
        _walk(elem, "", feature, feature.srs)
    except (ValueError, IndexError, shapely.errors.ShapelyError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInput(f"{name}: feature {gml_id or tag} has a geometry that cannot be read: "
                           f"{reason}", record=f"record {gml_id or tag}", field="geometry") from exc  # fmt: skip
    return feature


def _put(props: dict, key: str, value: object) -> None:
    if key in props:
        held = props[key]
        props[key] = [*held, value] if isinstance(held, list) else [held, value]
    else:
        props[key] = value


def _walk(elem: ET.Element, path: str, feature: Feature, srs: str | None) -> None:
    for child in elem:
        ns, local = split(child.tag)
        child_srs = child.get("srsName") or srs
        if ns in GML_NAMESPACES and local in GEOMETRIES:
            geom = _geometry(child, child_srs, None)
            if child_srs and _swap_axes(child_srs):
                geom = shapely.transform(geom, _swap)
            feature.geometries.append((path or local, geom))
            feature.srs = child_srs
            continue
        if ns in GML_NAMESPACES and local in ("boundedBy", "identifier", "name", "description"):
            continue
        if child.get(XSI_NIL) in ("true", "1"):
            continue
        # a class element (NEN3610ID, Kontaktprofil) adds no step to the path
        wrapper = local[:1].isupper() and len(child) > 0
        key = path if wrapper else (f"{path}.{local}" if path else local)
        href = child.get(XLINK_HREF)
        if href is not None:
            feature.hrefs.setdefault(key, []).append(href)
            _put(feature.props, key, href.rstrip("/").rsplit("/", 1)[-1]
                 if href.startswith("http") else href)  # fmt: skip
        if len(child):
            _walk(child, key, feature, child_srs)
        elif child.text and child.text.strip():
            _put(feature.props, key, child.text.strip())
            if child.get("uom"):
                feature.props[f"{key}_uom"] = child.get("uom")


# -- geometry ----------------------------------------------------------------------


def _children(elem: ET.Element, *names: str) -> list[ET.Element]:
    return [c for c in elem if split(c.tag)[1] in names]


def _dimension(elem: ET.Element, dim: int | None) -> int | None:
    declared = elem.get("srsDimension")
    return int(declared) if declared else dim


def _coords(elem: ET.Element, dim: int | None) -> np.ndarray:
    """The positions directly inside a curve, ring or point element, as an (n, d) array."""
    dim = _dimension(elem, dim)
    for child in elem:
        local = split(child.tag)[1]
        if local == "posList":
            d = _dimension(child, dim) or 2
            return _heights(np.array((child.text or "").split(), dtype=float).reshape(-1, d))
        if local == "coordinates":
            rows = [p.split(",") for p in (child.text or "").split()]
            return _heights(np.array(rows, dtype=float))
    rows = []
    for child in elem:
        local = split(child.tag)[1]
        if local == "pos":
            rows.append((child.text or "").split())
        elif local == "pointProperty" and len(child):
            rows.append(_coords(child[0], dim)[0])
    if not rows:
        raise ValueError(f"no coordinates in gml:{split(elem.tag)[1]}")
    return _heights(np.array(rows, dtype=float))


def _heights(xy: np.ndarray) -> np.ndarray:
    if xy.shape[1] == 3:
        xy[np.isin(xy[:, 2], UNKNOWN_HEIGHTS), 2] = np.nan
    return xy


def _curve(elem: ET.Element, dim: int | None) -> np.ndarray:
    dim = _dimension(elem, dim)
    local = split(elem.tag)[1]
    if local == "Curve":
        parts = [_coords(s, dim) for seg in _children(elem, "segments") for s in seg]
        return _join(parts)
    if local == "OrientableCurve":
        base = _children(elem, "baseCurve")[0][0]
        coords = _curve(base, dim)
        return coords[::-1] if elem.get("orientation") == "-" else coords
    if local == "CompositeCurve":
        return _join([_curve(m[0], dim) for m in _children(elem, "curveMember")])
    return _coords(elem, dim)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    out = [parts[0]]
    for part in parts[1:]:
        out.append(part[1:] if np.array_equal(out[-1][-1], part[0]) else part)
    return np.concatenate(out)


def _ring(elem: ET.Element, dim: int | None) -> LinearRing:
    ring = elem[0]
    if split(ring.tag)[1] == "Ring":
        return LinearRing(_join([_curve(m[0], dim) for m in _children(ring, "curveMember")]))
    return LinearRing(_coords(ring, dim))


def _polygon(elem: ET.Element, dim: int | None) -> Polygon:
    dim = _dimension(elem, dim)
    shell = _children(elem, "exterior", "outerBoundaryIs")
    holes = _children(elem, "interior", "innerBoundaryIs")
    return Polygon(_ring(shell[0], dim), [_ring(h, dim) for h in holes])


def _members(
    elem: ET.Element, single: tuple[str, ...], plural: tuple[str, ...]
) -> list[ET.Element]:
    found = [m[0] for m in _children(elem, *single) if len(m)]
    for group in _children(elem, *plural):
        found.extend(group)
    return found


def _geometry(elem: ET.Element, srs: str | None, dim: int | None):
    local = split(elem.tag)[1]
    dim = _dimension(elem, dim)
    if local == "Point":
        return Point(_coords(elem, dim)[0])
    if local in ("LineString", "Curve", "OrientableCurve", "CompositeCurve"):
        return LineString(_curve(elem, dim))
    if local == "LinearRing":
        return LineString(_coords(elem, dim))
    if local == "Polygon":
        return _polygon(elem, dim)
    if local == "Surface":
        patches = [_polygon(p, dim) for g in _children(elem, "patches") for p in g]
        return patches[0] if len(patches) == 1 else MultiPolygon(patches)
    if local == "MultiPoint":
        return MultiPoint([_geometry(m, srs, dim) for m in
                           _members(elem, ("pointMember",), ("pointMembers",))])  # fmt: skip
    if local in ("MultiCurve", "MultiLineString"):
        lines = [_geometry(m, srs, dim) for m in
                 _members(elem, ("curveMember", "lineStringMember"), ("curveMembers",))]  # fmt: skip
        return MultiLineString(lines)
    if local in ("MultiSurface", "MultiPolygon", "CompositeSurface"):
        polygons = []
        for m in _members(elem, ("surfaceMember", "polygonMember"), ("surfaceMembers",)):
            part = _geometry(m, srs, dim)
            polygons.extend(getattr(part, "geoms", [part]))
        return MultiPolygon(polygons)
    parts = [_geometry(m, srs, dim) for m in
             _members(elem, ("geometryMember",), ("geometryMembers",))]  # fmt: skip
    return GeometryCollection(parts)
