"""Flood results as catalog layers: polygon and line tables, depth rasters.

Results of a scenario are ordinary layers, so the OGC APIs serve them like
any ingested layer: vector results as features and vector tiles (table in
schema ``data``), rasters (water depth, flow accumulation) as coverages from
their COG under the data directory. Writing a layer replaces an earlier one of
the same id in one transaction: a rerun never leaves half a result.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from psycopg2 import sql
from psycopg2.extras import execute_values

from flood.io import write_cog
from layers import catalog
from layers.crs import STORAGE_EPSG
from layers.database import Database
from layers.errors import CRSMismatch, NotFound

log = logging.getLogger(__name__)

_PG_TYPES = {"i": "bigint", "u": "bigint", "f": "double precision", "b": "boolean"}
_MULTI = {"Polygon": "MultiPolygon", "LineString": "MultiLineString", "Point": "MultiPoint"}


def store_frame(database: Database, frame: gpd.GeoDataFrame, layer: catalog.Layer) -> catalog.Layer:
    """Replace the open analysis layer ``layer`` with the rows of ``frame``.

    Parameters
    ----------
    database
        Written as the ``ingest`` role, in one transaction.
    frame
        Geometries in EPSG:25832 (polygons or lines; single parts are stored as
        multi-parts of ``layer.geometry_type``); other columns become typed columns
        (integers, floats, booleans, else text; lists and dicts as JSON text).
    layer
        The catalog entry; its table is ``layer.table_schema.layer.table_name``.

    Returns
    -------
    catalog.Layer
        The registered layer with its row count and extent.

    Raises
    ------
    CRSMismatch
        When ``frame`` has a CRS other than EPSG:25832.
    """
    if frame.crs is not None and frame.crs.to_epsg() != STORAGE_EPSG:
        raise CRSMismatch(f"layer {layer.id}: results must be in EPSG:{STORAGE_EPSG}, "
                          f"got {frame.crs}")  # fmt: skip
    geometry_type = layer.geometry_type or "MultiPolygon"
    columns = {
        str(c): _PG_TYPES.get(frame[c].dtype.kind, "text")
        for c in frame.columns
        if c != frame.geometry.name and c not in ("fid", "geom")
    }
    geoms = [_multi(g, geometry_type) for g in frame.geometry.to_numpy()]
    rows = [
        (*(_cell(v, t) for v, t in zip(record, columns.values(), strict=True)),
         shapely.to_wkb(g), "flood", str(i))
        for i, (record, g) in enumerate(
            zip(frame[list(columns)].itertuples(index=False, name=None), geoms, strict=True))
    ]  # fmt: skip
    table = sql.Identifier(layer.table_schema or "data", layer.table_name or layer.id)
    defs = [sql.SQL("fid bigserial PRIMARY KEY")]
    defs += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items()]
    defs += [
        sql.SQL("geom geometry({}, {})").format(sql.SQL(geometry_type), sql.Literal(STORAGE_EPSG)),
        sql.SQL("_source text NOT NULL"),
        sql.SQL("_record text NOT NULL"),
        sql.SQL("_loaded_at timestamptz NOT NULL DEFAULT now()"),
    ]
    names = sql.SQL(", ").join(map(sql.Identifier, [*columns, "geom", "_source", "_record"]))
    template = sql.SQL("({}, ST_GeomFromWKB(%s, {}), %s, %s)").format(
        sql.SQL(", ").join(sql.Placeholder() * len(columns)), sql.Literal(STORAGE_EPSG)
    )
    if not columns:
        template = sql.SQL("(ST_GeomFromWKB(%s, {}), %s, %s)").format(sql.Literal(STORAGE_EPSG))
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(defs)))
        if rows:
            insert = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(table, names)
            execute_values(cur, insert.as_string(conn), rows,
                           template=template.as_string(conn), page_size=1000)  # fmt: skip
        cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(table))
        catalog.register(conn, layer)
        return catalog.refresh_statistics(conn, layer.id)


def store_raster(
    database: Database,
    array: np.ndarray,
    transform: Affine,
    crs: object,
    layer: catalog.Layer,
) -> catalog.Layer:
    """Write ``array`` as the COG ``layer.raster_path`` (under the data directory) and register it.

    The file is written next to its final name and moved into place, so a reader
    never sees half a file; the catalog entry follows in its own transaction.
    """
    relative = Path(layer.raster_path or f"flood/{layer.id}.tif")
    write_cog(database.settings.data_dir / relative, array, transform, crs)
    with database.connection("ingest") as conn:
        return catalog.register(conn, layer)


def drop_layers(database: Database, layer_ids: list[str]) -> None:
    """Remove analysis layers of a scenario: catalog entries, tables and rasters.

    Also what a run cut off halfway may have left without a catalog entry: the
    table ``data.<id>`` or ``restricted.<id>``, the COG ``flood/<id>.tif`` and the
    hidden files :func:`flood.io.write_cog` writes next to it before moving it
    into place. Ids are flood layer ids (``flood_...``), never ingested layers.
    """
    flood_dir = database.settings.data_dir / "flood"
    with database.connection("ingest") as conn, conn.cursor() as cur:
        for layer_id in layer_ids:
            if not layer_id.startswith("flood_"):
                raise ValueError(f"{layer_id!r} is not a flood result layer")
            try:
                layer = catalog.get(conn, layer_id)
            except NotFound:
                layer = None
            rasters = [flood_dir / f"{layer_id}.tif"]
            if layer is not None and layer.kind == "raster" and layer.raster_path:
                path = Path(layer.raster_path)
                rasters.append(path if path.is_absolute() else database.settings.data_dir / path)
            for path in rasters:
                path.unlink(missing_ok=True)
                for stray in path.parent.glob(f".{path.name}.*"):
                    stray.unlink(missing_ok=True)
            tables = {("data", layer_id), ("restricted", layer_id)}
            if layer is not None and layer.table_name:
                tables.add((layer.table_schema or "data", layer.table_name))
            for schema, name in sorted(tables):
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name)))
            if layer is not None:
                catalog.delete(conn, layer_id)


def _multi(geom, geometry_type: str):  # noqa: ANN001, ANN202 - shapely
    if geom.geom_type == geometry_type:
        return geom
    if _MULTI.get(geom.geom_type) == geometry_type:
        return getattr(shapely, geometry_type)([geom])
    return getattr(shapely, geometry_type)(list(shapely.get_parts(geom)))


def _cell(value: Any, pg_type: str) -> Any:
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if pg_type == "bigint":
        return int(value)
    if pg_type == "double precision":
        return float(value)
    if pg_type == "boolean":
        return bool(value)
    if isinstance(value, list | dict | tuple | np.ndarray):
        return json.dumps(value, default=plain)
    return str(value)


def plain(value: Any) -> Any:
    """JSON for numpy scalars (and anything else as text)."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
