"""Reading a stored answer back, and writing it as GeoJSON.

The answer is the snapshot taken when the request was filed
(``restricted.dig_conflicts`` and ``geoby.dig_owner_responses``), so it says
exactly what was disclosed, whatever happens to the networks afterwards; a
renewal files a new request against today's data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import shapely
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from dig_coordination.model import Action, Answer, Conflict, DigRequest, OwnerState
from layers.crs import CRS84, STORAGE_EPSG, crs_uri, reproject
from layers.errors import NotFound

REQUEST_COLUMNS = ("id", "reference", "organisation", "kind", "status", "geom", "start_date",
                   "end_date", "work_types", "depth_m", "description", "contact", "buffer_m",
                   "created_at", "valid_until", "line_width_m", "answered_at", "cancelled_at",
                   "renewed_from", "org_id", "user_id")  # fmt: skip
EMPTY = shapely.GeometryCollection()


def _names(columns: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


_REQUEST_SQL = (
    "SELECT r.id::text, r.reference, o.name, r.kind, r.status, ST_AsBinary(r.geom),"
    " r.start_date, r.end_date, r.work_types, r.depth_m, r.description, r.contact, r.buffer_m,"
    " r.created_at, r.valid_until, r.line_width_m, r.answered_at, r.cancelled_at,"
    " r.renewed_from::text, r.org_id, r.user_id"
    " FROM geoby.dig_requests r JOIN geoby.organisations o ON o.id = r.org_id"
)
_OWNER_COLUMNS = ("owner", "mode", "status", "asset_count", "due_at", "answered_at",
                  "notified_at", "remarks", "marking_required", "marking_booked_for",
                  "marking_done_at", "precautions_agreed_at")  # fmt: skip
_CONFLICT_COLUMNS = ("layer", "asset_fid", "asset_id", "owner", "utility_type", "subtype",
                     "asset_kind", "hazard_class", "status", "depth_m", "depth_reference",
                     "accuracy_class", "diameter_mm", "voltage_kv", "pressure_bar",
                     "distance_m", "required_actions", "geom")  # fmt: skip


def _request(row: tuple) -> DigRequest:
    doc = dict(zip(REQUEST_COLUMNS, row, strict=True))
    doc["geometry"] = shapely.from_wkb(bytes(doc.pop("geom")))
    doc["work_types"] = list(doc["work_types"])
    return DigRequest(**doc)


def load_request(conn: Connection, request_id: str) -> DigRequest:
    """The stored request; :class:`NotFound` when there is none."""
    with conn.cursor() as cur:
        cur.execute(_REQUEST_SQL + " WHERE r.id::text = %s", (request_id,))  # noqa: S608
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no dig request {request_id}")
    return _request(row)


def load_requests(
    conn: Connection, where: str, params: dict[str, Any], limit: int
) -> list[DigRequest]:
    """Requests matching a condition written by this package (never by a caller), newest first."""
    with conn.cursor() as cur:
        statement = sql.SQL("{} WHERE {} ORDER BY r.created_at DESC, r.number DESC LIMIT %(lim)s")
        cur.execute(
            statement.format(sql.SQL(_REQUEST_SQL), sql.SQL(where)), params | {"lim": limit}
        )
        return [_request(row) for row in cur.fetchall()]


def load_owners(conn: Connection, request_id: str, now: datetime) -> list[OwnerState]:
    """The owners concerned; a pending answer past its due time reads as ``overdue``."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM geoby.dig_owner_responses WHERE request_id = %s ORDER BY owner"
            ).format(_names(_OWNER_COLUMNS)),
            (request_id,),
        )
        states = [OwnerState(**dict(zip(_OWNER_COLUMNS, r, strict=True))) for r in cur]
    for state in states:
        if state.status == "pending" and state.due_at is not None and state.due_at < now:
            state.status = "overdue"
    return states


def load_links(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    """Other live requests linked to this one for coordination (no asset data)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT o.id::text, o.reference, org.name, o.kind, o.start_date, o.end_date,"
            " o.work_types, o.contact, l.distance_m, l.overlap_start, l.overlap_end"
            " FROM geoby.dig_links l"
            " JOIN geoby.dig_requests o ON o.id = CASE WHEN l.request_a = %(id)s"
            "      THEN l.request_b ELSE l.request_a END"
            " JOIN geoby.organisations org ON org.id = o.org_id"
            " WHERE (l.request_a = %(id)s OR l.request_b = %(id)s) AND o.status <> 'cancelled'"
            " ORDER BY l.distance_m, o.reference",
            {"id": request_id},
        )
        keys = ("id", "reference", "organisation", "kind", "start_date", "end_date",
                "work_types", "contact", "distance_m", "overlap_start", "overlap_end")  # fmt: skip
        links = []
        for row in cur.fetchall():
            doc = dict(zip(keys, row, strict=True))
            for k in ("start_date", "end_date", "overlap_start", "overlap_end"):
                doc[k] = doc[k].isoformat()
            doc["distance_m"] = round(doc["distance_m"], 2)
            links.append(doc)
        return links


def load_conflicts(
    conn: Connection, request_id: str, owner: str | None = None, *, geometry: bool = True
) -> list[Conflict]:
    """The assets the answer discloses (all owners, or one); ``geometry=False`` skips shapes."""
    shape = sql.SQL("ST_AsBinary(geom)" if geometry else "NULL")
    cols = sql.SQL(", ").join(
        sql.Identifier(c) if c != "geom" else shape for c in _CONFLICT_COLUMNS
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM restricted.dig_conflicts WHERE request_id = %s"
                " AND (%s::text IS NULL OR owner = %s) ORDER BY distance_m, layer, asset_fid"
            ).format(cols),
            (request_id, owner, owner),
        )
        conflicts = []
        for row in cur.fetchall():
            doc = dict(zip(_CONFLICT_COLUMNS, row, strict=True))
            wkb = doc.pop("geom")
            doc["geometry"] = shapely.from_wkb(bytes(wkb)) if wkb is not None else EMPTY
            doc["actions"] = [Action(**a) for a in doc.pop("required_actions")]
            conflicts.append(Conflict(**doc))
        return conflicts


def load_answer(conn: Connection, request_id: str, owner: str | None = None) -> Answer:
    """The whole answer, or one owner's package."""
    now = datetime.now(UTC)
    request = load_request(conn, request_id)
    owners = load_owners(conn, request_id, now)
    if owner is not None:
        owners = [o for o in owners if o.owner == owner]
    conflicts = load_conflicts(conn, request_id, owner)
    return Answer(request, conflicts, owners, load_links(conn, request_id), now)


def _geometry(geom: BaseGeometry, epsg: int) -> dict[str, Any]:
    out = reproject(geom, STORAGE_EPSG, epsg)
    return mapping(shapely.set_precision(out, 0.001 if epsg == STORAGE_EPSG else 1e-7))


def to_geojson(answer: Answer, *, epsg: int = 0) -> dict[str, Any]:
    """The answer as a FeatureCollection: one feature per asset, the request alongside.

    ``epsg`` 0 is CRS84 (lon/lat, the GeoJSON default); 25832 keeps the storage CRS.
    """
    request = answer.request
    by_owner: dict[str, int] = {}
    for c in answer.conflicts:
        by_owner[c.owner] = by_owner.get(c.owner, 0) + 1
    features = [
        {
            "type": "Feature",
            "id": f"{c.layer}.{c.asset_fid}",
            "geometry": _geometry(c.geometry, epsg),
            "properties": c.properties(),
        }
        for c in answer.conflicts
    ]
    return {
        "type": "FeatureCollection",
        "crs_uri": CRS84 if epsg == 0 else crs_uri(epsg),
        "request": {
            "id": request.id,
            "reference": request.reference,
            "kind": request.kind,
            "status": request.status,
            "start_date": request.start_date.isoformat(),
            "end_date": request.end_date.isoformat(),
            "work_types": request.work_types,
            "depth_m": request.depth_m,
            "buffer_m": request.buffer_m,
            "valid_until": request.valid_until.isoformat(),
            "geometry": _geometry(request.geometry, epsg),
        },
        "ready_to_dig": answer.ready_to_dig,
        "owners": [
            o.as_json() | {"assets_in_answer": by_owner.get(o.owner, 0)} for o in answer.owners
        ],  # fmt: skip
        "coordination": answer.links,
        "numberReturned": len(features),
        "generated_at": (answer.generated_at or datetime.now(UTC)).isoformat(),
        "features": features,
    }


def dumps(doc: dict[str, Any]) -> str:
    """JSON text of a document with dates."""
    return json.dumps(doc, default=str, separators=(",", ":"))
