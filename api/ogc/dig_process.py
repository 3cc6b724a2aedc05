"""OGC API - Processes ``dig-check``: who must be asked before digging here?

For GIS clients (QGIS's processing toolbox, OWSLib, plain HTTP). The OGC
endpoints carry no user identity, so this process discloses what LER's free
lookup discloses to anyone: the owners concerned and, per owner, how many
assets of which utility type and hazard class lie within the dig area plus
the answer buffer and which precautions they call for; never an asset's
geometry, id, depth or attributes. Asset detail comes only with a filed
request (``POST /api/dig-requests``) to its filer. Each check is written to
the audit log (anonymous, with the area and the counts).

Inputs: ``geometry`` (GeoJSON Polygon, or LineString with ``line_width_m``),
``crs`` (default CRS84), ``work_types`` (default machine excavation). The
same validation as a filed request applies (size, vertices, CRS, service
area), so a check that passes tells a contractor its request will be
accepted.
"""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from psycopg2.extras import Json

from api.ogc.processes import GeobyProcessor, InvalidProcessInput, register
from dig_coordination import conflicts, rules
from dig_coordination.model import WORK_TYPES
from dig_coordination.service import DigService
from dig_coordination.validate import DigRequestIn, check
from dig_coordination.workdays import WorkingCalendar
from layers.crs import CRS84
from layers.errors import InvalidInput

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "dig-check",
    "title": "Dig check: owners and precautions for a planned dig",
    "description": (
        "The owners whose buried networks lie within a planned dig area (plus the answer "
        "buffer), with counts of their assets by utility type and hazard class and the "
        "precautions the rules require for the given work types. No asset geometry or "
        "detail: file a dig request at /api/dig-requests for that."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["dig", "excavation", "LER", "KLIC", "utilities"],
    "links": [],
    "inputs": {
        "geometry": {
            "title": "Dig area",
            "description": "GeoJSON Polygon, or LineString with line_width_m, in `crs`.",
            "schema": {"type": "object", "required": ["type", "coordinates"]},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "crs": {
            "title": "CRS of the geometry",
            "description": "CRS84 (lon, lat; default) or any EPSG CRS as URI or EPSG:n.",
            "schema": {"type": "string", "default": CRS84},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "line_width_m": {
            "title": "Width of a dig along a line (m)",
            "schema": {"type": "number", "exclusiveMinimum": 0},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "work_types": {
            "title": "Work types",
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": list(WORK_TYPES)},
                "default": ["machine_excavation"],
            },  # fmt: skip
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "check": {
            "title": "Owners and precautions",
            "description": (
                "area_m2, buffer_m, asset_count, owners: a list of {owner, assets, "
                "by_utility_type, by_hazard_class, actions, blocking}."
            ),
            "schema": {"type": "object", "contentMediaType": "application/json"},
        }
    },
    "example": {
        "inputs": {
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [12.5300, 55.6440],
                        [12.5316, 55.6440],
                        [12.5316, 55.6449],
                        [12.5300, 55.6449],
                        [12.5300, 55.6440],
                    ]
                ],
            },  # fmt: skip
            "work_types": ["machine_excavation"],
        }
    },
}


class DigCheckProcessor(GeobyProcessor):
    """``dig-check``: owners and precaution counts for an area, no asset detail."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))

    def validate(self, data: dict[str, Any]) -> Any:
        data = super().validate(data)
        settings = self.bound.settings
        zone = ZoneInfo(settings.dig.timezone)
        today = datetime.now(UTC).astimezone(zone).date()
        try:
            body = DigRequestIn(
                geometry=data["geometry"] if isinstance(data["geometry"], dict) else {},
                crs=data.get("crs", CRS84),
                line_width_m=data.get("line_width_m"),
                start_date=today, end_date=today,
                work_types=data.get("work_types", ["machine_excavation"]),
                contact={"name": "dig-check", "phone": "-"},
            )  # fmt: skip
            valid = check(body, settings.dig, WorkingCalendar(settings.dig), today)
        except InvalidInput as exc:
            raise InvalidProcessInput(_input(exc.field), exc.detail) from None
        except ValueError as exc:  # pydantic's
            raise InvalidProcessInput("inputs", str(exc).splitlines()[0]) from None
        service = DigService(self.bound.database, settings)
        with self.bound.database.connection("admin") as conn:
            try:
                service.check_service_area(conn, valid.area)
            except InvalidInput as exc:
                raise InvalidProcessInput("geometry", exc.detail) from None
        return valid

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        valid = self.validate(data)
        settings = self.bound.settings
        buffer_m = settings.dig.answer_buffer_m
        with self.bound.database.connection("admin") as conn:
            found = conflicts.find(conn, valid.area, buffer_m)
            owners = sorted({a["owner"] for a in found} | conflicts.interested_owners(
                conn, valid.area))  # fmt: skip
            applicable = rules.load(conn, owners)
            per_owner: dict[str, dict[str, Any]] = {
                o: {"owner": o, "assets": 0, "by_utility_type": Counter(),
                    "by_hazard_class": Counter(), "actions": Counter(), "blocking": 0}
                for o in owners
            }  # fmt: skip
            for asset in found:
                entry = per_owner[asset["owner"]]
                actions = rules.apply(applicable, asset, valid.work_types, asset["distance_m"])
                entry["assets"] += 1
                entry["by_utility_type"][asset["utility_type"]] += 1
                entry["by_hazard_class"][asset["hazard_class"] or "unknown"] += 1
                entry["actions"].update(a.action for a in actions)
                entry["blocking"] += any(a.blocks for a in actions)
            result = {
                "area_m2": round(valid.area.area, 1),
                "buffer_m": buffer_m,
                "work_types": valid.work_types,
                "asset_count": len(found),
                "owners": [_plain(e) for e in per_owner.values()],
                "file_request": "/api/dig-requests",
            }
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO geoby.audit_log (action, object_type, object_id, detail)"
                    " VALUES ('dig_check.disclosed', 'area', NULL, %s)",
                    (
                        Json(
                            {
                                "area_wkt": shapely.to_wkt(valid.area, rounding_precision=1),
                                "assets": len(found),
                                "owners": {e["owner"]: e["assets"] for e in per_owner.values()},
                            },
                            dumps=json.dumps,
                        ),
                    ),  # fmt: skip
                )
        return "application/json", result


def _input(field: str | None) -> str:
    if not field:
        return "geometry"
    head = field.split(".")[0]
    return head if head in PROCESS_METADATA["inputs"] else "geometry"


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = defaultdict(dict)
    for key, value in entry.items():
        out[key] = dict(value) if isinstance(value, Counter) else value
    return dict(out)


register("dig-check", f"{__name__}.DigCheckProcessor")
