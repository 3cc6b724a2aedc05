"""Conflict detection in PostGIS: the assets within the dig area plus a buffer.

One statement over the three asset layers (lines, points, areas of schema
``restricted``): every asset whose geometry lies within ``buffer_m`` of the
dig area (``ST_DWithin``, served by the GiST indexes), with its horizontal
distance to the area (0 inside) and its geometry clipped to the area plus
buffer, so an answer never discloses more of a network than the request
covers. The clip uses a buffer polygon 5 cm wider than the answer buffer:
a polygonal buffer is inscribed in the true one, and an asset 4.99 m away
must not clip to nothing.

The owners concerned are those whose interest area the dig area touches,
and those with assets in the answer (an owner whose derived interest area
was replaced by a narrower upload is still told when its assets are near).
"""

from __future__ import annotations

from typing import Any

import shapely
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from shapely.geometry.base import BaseGeometry

from ingest.utilities import model as utilities

ASSET_LAYERS = (utilities.LINES.id, utilities.POINTS.id, utilities.AREAS.id)
FIELDS = ("asset_id", "owner", "utility_type", "subtype", "asset_kind", "hazard_class", "status",
          "depth_m", "depth_reference", "accuracy_class", "diameter_mm", "voltage_kv",
          "pressure_bar")  # fmt: skip
CLIP_MARGIN_M = 0.05


def _layers(conn: Connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass('restricted.' || t) IS NOT NULL",
            (list(ASSET_LAYERS),),
        )
        return [row[0] for row in cur.fetchall()]


def find(conn: Connection, area: BaseGeometry, buffer_m: float) -> list[dict[str, Any]]:
    """Every asset within ``buffer_m`` of ``area`` (EPSG:25832), nearest first."""
    layers = _layers(conn)
    if not layers:
        return []
    columns = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(f)) for f in FIELDS)
    parts = [
        sql.SQL(
            "SELECT {name} AS layer, t.fid, {columns}, ST_Distance(t.geom, q.g) AS distance_m,"
            " ST_AsBinary(ST_Intersection(t.geom, q.clip)) AS clipped"
            " FROM {table} t, q WHERE ST_DWithin(t.geom, q.g, %(buffer)s)"
        ).format(
            name=sql.Literal(layer),
            columns=columns,
            table=sql.Identifier(utilities.SCHEMA, layer),
        )
        for layer in layers
    ]
    statement = sql.SQL(
        "WITH q AS (SELECT g, ST_Buffer(g, %(clip)s, 'quad_segs=16') AS clip"
        " FROM (SELECT ST_GeomFromWKB(%(wkb)s, 25832) AS g) s) "
        "SELECT * FROM ({union}) a ORDER BY distance_m, layer, fid"
    ).format(union=sql.SQL(" UNION ALL ").join(parts))
    params = {"wkb": shapely.to_wkb(area), "buffer": buffer_m, "clip": buffer_m + CLIP_MARGIN_M}
    with conn.cursor() as cur:
        cur.execute(statement, params)
        names = [d.name for d in cur.description]
        rows = []
        for row in cur.fetchall():
            doc = dict(zip(names, row, strict=True))
            doc["geometry"] = shapely.from_wkb(bytes(doc.pop("clipped")))
            rows.append(doc)
        return rows


def interested_owners(conn: Connection, area: BaseGeometry) -> set[str]:
    """Owners whose interest areas the dig area touches."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('restricted.utilities_interest_areas') IS NOT NULL")
        if not cur.fetchone()[0]:
            return set()
        cur.execute(
            "SELECT DISTINCT owner FROM restricted.utilities_interest_areas"
            " WHERE ST_Intersects(geom, ST_GeomFromWKB(%s, 25832))",
            (shapely.to_wkb(area),),
        )
        return {row[0] for row in cur.fetchall()}


def near_networks(conn: Connection, area: BaseGeometry, margin_m: float) -> bool:
    """Whether any network geoby holds lies within ``margin_m`` of the area."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('restricted.utilities_interest_areas') IS NOT NULL")
        if not cur.fetchone()[0]:
            return False
        cur.execute(
            "SELECT EXISTS (SELECT FROM restricted.utilities_interest_areas"
            " WHERE ST_DWithin(geom, ST_GeomFromWKB(%s, 25832), %s))",
            (shapely.to_wkb(area), margin_m),
        )
        return cur.fetchone()[0]
