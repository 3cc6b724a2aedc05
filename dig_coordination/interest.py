"""Owners list and replace their interest areas over HTTP.

The areas are those of :mod:`ingest.utilities.interest` (derived from the
assets at every load, or uploaded). An owner's upload through
``PUT /api/interest-areas`` replaces every area it had, derived or uploaded,
in one transaction of the ingest role (the role that owns the table), and
marks them ``uploaded`` so later loads of its assets do not derive new ones.
The replacement is audited (by the admin role, right after it commits).
Polygons are GeoJSON in CRS84; each feature may carry ``utility_type``
(default ``other``). A delete is not offered: an owner always has areas, and replacing them is one call.
"""

from __future__ import annotations

from typing import Any

import shapely
from psycopg2.extras import Json
from shapely.geometry import mapping, shape

from dig_coordination.users import Principal
from ingest.utilities import interest
from ingest.utilities.model import UTILITY_TYPES
from layers.crs import STORAGE_EPSG, reproject
from layers.database import Database
from layers.errors import Forbidden, InvalidInput

MAX_FEATURES = 10_000


def _owner(principal: Principal, owner: str | None) -> str | None:
    if principal.role == "admin":
        return owner
    if principal.role != "utility":
        raise Forbidden("interest areas are for their owners (utilities) and admins")
    if owner not in (None, principal.org_name):
        raise Forbidden("a utility sees its own interest areas only")
    return principal.org_name


def list_areas(database: Database, principal: Principal, owner: str | None) -> dict[str, Any]:
    """The interest areas of the caller (admins: of ``owner``, or all) as GeoJSON, CRS84."""
    owner = _owner(principal, owner)
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('restricted.utilities_interest_areas') IS NOT NULL")
        rows = []
        if cur.fetchone()[0]:
            cur.execute(
                "SELECT fid, area_id, owner, utility_type, origin, buffer_rule, asset_count,"
                " area_m2, ST_AsBinary(geom) FROM restricted.utilities_interest_areas"
                " WHERE %(owner)s::text IS NULL OR owner = %(owner)s ORDER BY owner, area_id",
                {"owner": owner},
            )
            rows = cur.fetchall()
    keys = ("area_id", "owner", "utility_type", "origin", "buffer_rule", "asset_count", "area_m2")
    features = [
        {
            "type": "Feature",
            "id": row[0],
            "geometry": mapping(
                shapely.set_precision(
                    reproject(shapely.from_wkb(bytes(row[-1])), STORAGE_EPSG, 0), 1e-7
                )
            ),
            "properties": dict(zip(keys, row[1:-1], strict=True)),
        }  # fmt: skip
        for row in rows
    ]
    return {"type": "FeatureCollection", "numberReturned": len(features), "features": features}


def replace_areas(
    database: Database, principal: Principal, doc: dict[str, Any], owner: str | None = None
) -> dict[str, Any]:
    """Replace the owner's interest areas with the uploaded polygons."""
    owner = _owner(principal, owner)
    if owner is None:
        raise InvalidInput("an admin must name the owner (?owner=)", field="owner")
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise InvalidInput("send a GeoJSON FeatureCollection of polygons", field="body")
    features = doc["features"]
    if not features:
        raise InvalidInput("the FeatureCollection is empty; an owner needs an interest area",
                           field="features")  # fmt: skip
    if len(features) > MAX_FEATURES:
        raise InvalidInput(f"at most {MAX_FEATURES:,} areas", field="features")
    rows = []
    for i, feature in enumerate(features):
        try:
            geom = shape(feature["geometry"])
        except Exception as exc:  # noqa: BLE001 - any unreadable geometry is the caller's
            raise InvalidInput(f"feature {i}: geometry is not GeoJSON",
                               record=f"feature {i}") from exc  # fmt: skip
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            raise InvalidInput(f"feature {i}: an interest area is a polygon, not "
                               f"{geom.geom_type}", record=f"feature {i}")  # fmt: skip
        xs, ys = shapely.get_coordinates(geom).T
        if not ((abs(xs) <= 180).all() and (abs(ys) <= 90).all()):
            raise InvalidInput(f"feature {i}: coordinates are not lon/lat (CRS84)",
                               record=f"feature {i}")  # fmt: skip
        if not geom.is_valid:
            raise InvalidInput(f"feature {i}: {shapely.is_valid_reason(geom)}",
                               record=f"feature {i}")  # fmt: skip
        props = feature.get("properties") or {}
        kind = props.get("utility_type", "other")
        if kind not in UTILITY_TYPES:
            raise InvalidInput(f"feature {i}: utility_type {kind!r} is not one of "
                               + ", ".join(UTILITY_TYPES), record=f"feature {i}")  # fmt: skip
        stored = shapely.multipolygons(shapely.get_parts(reproject(geom, 0, STORAGE_EPSG)))
        rows.append((f"uploaded:{i + 1}", kind, shapely.to_wkb(stored), props))
    label = f"api:{owner}"
    with database.connection("ingest") as conn:
        interest.ensure_table(conn)
        with conn.cursor() as cur:
            cur.execute("DELETE FROM restricted.utilities_interest_areas WHERE owner = %s",
                        (owner,))  # fmt: skip
            removed = cur.rowcount
            for area_id, kind, wkb, props in rows:
                cur.execute(
                    "INSERT INTO restricted.utilities_interest_areas (area_id, owner,"
                    " utility_type, origin, buffer_rule, asset_count, area_m2, attributes, geom,"
                    " _source, _record) VALUES (%s, %s, %s, 'uploaded', NULL, NULL,"
                    " ST_Area(ST_GeomFromWKB(%s, 25832)), %s, ST_GeomFromWKB(%s, 25832), %s, %s)",
                    (area_id, owner, kind, wkb, Json(props), wkb, label, area_id),
                )
        interest.register(conn)
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO geoby.audit_log (user_id, org_id, action, object_type, object_id,"
            " detail) VALUES (%s, %s, 'interest_areas.replaced', 'owner', %s, %s)",
            (
                principal.user_id,
                principal.org_id,
                owner,
                Json({"uploaded": len(rows), "removed": removed}),
            ),  # fmt: skip
        )
    return {"owner": owner, "uploaded": len(rows), "removed": removed}
