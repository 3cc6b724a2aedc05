"""Mapbox vector tiles of a geoby table, built in one PostGIS statement.

The data path of geoby's OGC API - Tiles (:mod:`api.ogc.tiles` holds the
HTTP handlers and the pygeoapi plugin). What :func:`render` does differently
from pygeoapi's ``MVT-postgresql``:

- **The index is used and nothing is transformed by CRS name.** The tile
  plus its buffer, clipped in Python to the layer's padded extent, is
  densified and transformed *once* to the storage CRS (numeric SRID 25832);
  rows are selected with ``geom && area`` on the stored geometry, so the GiST
  index answers, and only the selected rows are transformed (to SRID 3857 or
  4326). A tile away from the data costs no query. The extent is the
  catalog's (kept by ingestion through
  :func:`layers.catalog.refresh_statistics`); a layer without one has only
  empty tiles, as it has no features in any bbox query. No exact
  ``ST_Intersects`` is run on the candidates: ``ST_AsMVTGeom`` clips each to
  the tile and its buffer and drops those that fall outside (the slivers
  between the tile and its bounding box in EPSG:25832), which made a zoom-10
  tile of a million lines 3x faster; those candidates do take places under
  the cap.
- **JIT is off for the read role** (migration 0006): PostgreSQL otherwise
  spends ~380 ms compiling a zoom-10 tile query that runs in ~50 ms.
- **A feature cap** (:data:`MAX_FEATURES`), deterministic: features are taken
  in ascending ``fid`` order, so a tile that would hold more drops the features
  with the highest ids (the most recently loaded); tiles at higher zooms show
  them.
- **Simplification below zoom 14** (:data:`SIMPLIFY_BELOW_ZOOM`): lines and
  polygons are simplified in storage metres with a tolerance of half a display
  pixel (:data:`SIMPLIFY_PIXELS` of a 256th of the tile) before they are
  transformed (``ST_Simplify`` keeping collapsed features). ``ST_AsMVTGeom``
  then snaps to the 4096 grid, removes repeated points and clips to the
  buffer; a feature of which nothing is left (it collapses below one grid
  unit, or only touches the buffer's edge) is left out: ``ST_AsMVT`` skips
  rows whose geometry is NULL.
- Attributes are the table's published columns (or those asked for);
  ``numeric`` is written as a number and ``json`` as text (``ST_AsMVT`` would
  write the one as text and spread the other's keys).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import morecantile
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from api.ogc.tables import Table
from layers.crs import STORAGE_EPSG, transformer
from layers.errors import InvalidInput, NotFound

EXTENT = 4096
BUFFER = 64
MAX_FEATURES = 10_000
SIMPLIFY_BELOW_ZOOM = 14
SIMPLIFY_PIXELS = 0.5
# Slack around the layer extent when tiles are clipped to it, in storage metres.
_PAD_M = 100.0
_POINTS = frozenset({"point", "multipoint"})
_AS_NUMBER = frozenset({"numeric"})
_AS_TEXT = frozenset({"json", "jsonb"})


@dataclass(frozen=True)
class Scheme:
    """A tile matrix set geoby offers: its id, PostGIS SRID and morecantile grid."""

    id: str
    srid: int

    @property
    def grid(self) -> morecantile.TileMatrixSet:
        """The morecantile definition (bounds and matrix sizes)."""
        return _grid(self.id)


@lru_cache(maxsize=8)
def _grid(tms_id: str) -> morecantile.TileMatrixSet:
    return morecantile.tms.get(tms_id)


SCHEMES = {s.id: s for s in (Scheme("WebMercatorQuad", 3857), Scheme("WorldCRS84Quad", 4326))}


def scheme(tms_id: str) -> Scheme:
    """The offered tile matrix set ``tms_id``.

    Raises
    ------
    NotFound
        geoby does not offer it; the message names the ones it does.
    """
    try:
        return SCHEMES[tms_id]
    except KeyError:
        raise NotFound(
            f"tile matrix set {tms_id!r} is not offered; use one of {', '.join(SCHEMES)}"
        ) from None


def tile_address(
    tms: Scheme, z: str, y: str, x: str, zooms: tuple[int, int]
) -> tuple[int, int, int]:
    """Parse and check ``{tileMatrix}/{tileRow}/{tileCol}``; returns ``(z, x, y)``."""
    try:
        zi, yi, xi = int(z), int(y), int(x)
    except ValueError:
        raise InvalidInput(
            f"tile address {z}/{y}/{x} is not tileMatrix/tileRow/tileCol integers",
            field="tileMatrix",
        ) from None
    if not zooms[0] <= zi <= zooms[1]:
        raise NotFound(f"tileMatrix {zi} is outside {zooms[0]}..{zooms[1]} of {tms.id}")
    matrix = tms.grid.matrix(zi)
    if not (0 <= yi < matrix.matrixHeight and 0 <= xi < matrix.matrixWidth):
        raise NotFound(
            f"tile {zi}/{yi}/{xi} is outside {tms.id}: at tileMatrix {zi} tileRow is "
            f"0..{matrix.matrixHeight - 1} and tileCol 0..{matrix.matrixWidth - 1}"
        )
    return zi, xi, yi


def render(
    conn: Connection,
    table: Table,
    tms: Scheme,
    z: int,
    x: int,
    y: int,
    *,
    properties: list[str] | None = None,
    where: tuple[sql.Composable, list] | None = None,
    max_features: int | None = None,
) -> bytes:
    """One vector tile of ``table`` (an empty ``bytes`` when no feature falls in it).

    Parameters
    ----------
    conn
        A connection (the ``read`` role suffices).
    table, tms, z, x, y
        The collection's table and the tile (column ``x``, row ``y``).
    properties
        Attribute columns to include (default: every published column).
    where
        An extra condition on the table (alias ``t``) and its bound parameters.
    max_features
        At most this many features, the lowest ``fid`` first (default
        :data:`MAX_FEATURES`, read at call time).

    Raises
    ------
    NotFound
        The table has no geometry column.
    """
    statement = tile_query(
        table, tms, z, x, y, properties=properties, where=where, max_features=max_features
    )
    if statement is None:
        return b""
    with conn.cursor() as cur:
        cur.execute(*statement)
        row = cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def tile_query(
    table: Table,
    tms: Scheme,
    z: int,
    x: int,
    y: int,
    *,
    properties: list[str] | None = None,
    where: tuple[sql.Composable, list] | None = None,
    max_features: int | None = None,
) -> tuple[sql.Composed, list] | None:
    """The ``ST_AsMVT`` statement of a tile and its parameters (None: the tile misses the data).

    Arguments as for :func:`render`.
    """
    if table.geometry_column is None:
        raise NotFound(f"collection {table.layer.id} has no geometry and no tiles")
    bounds = tms.grid.xy_bounds(x, y, z)
    pad_x = (bounds.right - bounds.left) * BUFFER / EXTENT
    pad_y = (bounds.top - bounds.bottom) * BUFFER / EXTENT
    area = _clip(table, tms, (bounds.left - pad_x, bounds.bottom - pad_y,
                              bounds.right + pad_x, bounds.top + pad_y))  # fmt: skip
    if area is None:
        return None
    columns = [table.columns[n] for n in (table.columns if properties is None else properties)]
    step = max(area[2] - area[0], area[3] - area[1]) / 32
    params: list[Any] = [table.layer.id]
    shape = sql.SQL("c.__g")
    if z < SIMPLIFY_BELOW_ZOOM and (table.geometry_type or "").lower() not in _POINTS:
        shape = sql.SQL("ST_Simplify(c.__g, %s, true)")
        params.append(_tolerance(tms, area, bounds.right - bounds.left))
    if tms.id == "WebMercatorQuad":
        envelope = sql.SQL("ST_TileEnvelope(%s, %s, %s)")
        params += [z, x, y]
    else:
        envelope = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, {})").format(sql.Literal(tms.srid))
        params += [bounds.left, bounds.bottom, bounds.right, bounds.top]
    params += [*area, step]
    area_sql = sql.SQL(
        "ST_Transform(ST_Segmentize(ST_MakeEnvelope(%s, %s, %s, %s, {}), %s), {})"
    ).format(sql.Literal(tms.srid), sql.Literal(STORAGE_EPSG))
    condition = sql.SQL("")
    if where is not None:
        condition = sql.SQL(" AND ({})").format(where[0])
        params += list(where[1])
    params.append(MAX_FEATURES if max_features is None else max_features)
    query = sql.SQL(
        "SELECT ST_AsMVT(m, %s, {extent}, '__geom', 'fid') FROM ("
        "SELECT c.fid, ST_AsMVTGeom(ST_Transform({shape}, {srid}), {envelope}, {extent}, {buffer},"
        " true) AS __geom{outer} FROM ("
        "SELECT t.fid, {geom} AS __g{inner} FROM {table} AS t WHERE t.fid = ANY(ARRAY("
        "SELECT t.fid FROM {table} AS t WHERE {geom} && {area}{condition}"
        " ORDER BY t.fid LIMIT %s))) AS c) AS m"
    ).format(
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        shape=shape,
        srid=sql.Literal(tms.srid),
        envelope=envelope,
        outer=sql.SQL("").join(sql.SQL(", ") + _attribute(c.name, c.pg_type) for c in columns),
        geom=sql.Identifier("t", table.geometry_column),
        inner=sql.SQL("").join(sql.SQL(", t.") + sql.Identifier(c.name) for c in columns),
        table=table.identifier,
        area=area_sql,
        condition=condition,
    )
    return query, params


def _attribute(name: str, pg_type: str) -> sql.Composable:
    """An attribute as ST_AsMVT should see it (it would expand json keys, write numeric as text)."""
    column = sql.Identifier("c", name)
    if pg_type in _AS_NUMBER:
        return sql.SQL("{}::double precision AS {}").format(column, sql.Identifier(name))
    if pg_type in _AS_TEXT:
        return sql.SQL("{}::text AS {}").format(column, sql.Identifier(name))
    return column


def _clip(table: Table, tms: Scheme, box: tuple[float, ...]) -> tuple[float, ...] | None:
    """``box`` (tile CRS) cut to the layer's padded extent, or None where they miss."""
    if table.layer.extent is None:
        return None
    lx1, ly1, lx2, ly2 = extent_in(tms.srid, tuple(table.layer.extent))
    clip = (max(box[0], lx1), max(box[1], ly1), min(box[2], lx2), min(box[3], ly2))
    return clip if clip[0] < clip[2] and clip[1] < clip[3] else None


@lru_cache(maxsize=256)
def extent_in(srid: int, extent: tuple[float, float, float, float]) -> tuple[float, ...]:
    """A storage-CRS extent, padded, as bounds in ``srid`` (0: CRS84)."""
    x1, y1, x2, y2 = extent
    return transformer(STORAGE_EPSG, srid).transform_bounds(
        x1 - _PAD_M, y1 - _PAD_M, x2 + _PAD_M, y2 + _PAD_M, densify_pts=21
    )


def _tolerance(tms: Scheme, area: tuple[float, ...], tile_width: float) -> float:
    """Half a display pixel (a 256th of the tile) in storage metres, at the data."""
    cx, cy = (area[0] + area[2]) / 2, (area[1] + area[3]) / 2
    x1, y1 = transformer(tms.srid, STORAGE_EPSG).transform(cx, cy)
    x2, y2 = transformer(tms.srid, STORAGE_EPSG).transform(cx + tile_width / 256, cy)
    return SIMPLIFY_PIXELS * math.hypot(x2 - x1, y2 - y1)
