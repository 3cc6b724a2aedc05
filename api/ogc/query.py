"""Feature queries built in PostGIS: exact bbox in any CRS, GeoJSON assembled in SQL.

The data path of geoby's OGC API Features. One statement per page returns the
features already serialised as GeoJSON text, the number returned and the
number matched, so Python never builds a feature dict:

- **bbox in any CRS, exact.** A box in CRS84, EPSG:4326 (lat/lon axis order),
  EPSG:3857 or the storage CRS selects exactly the features whose geometry,
  expressed in the box's CRS, intersects the box. The index is used through a
  storage-CRS envelope of the densified, transformed box (padded by a metre);
  the exact test is ``ST_Intersects(ST_Transform(geom, box_srid), box)`` on
  those candidates. pygeoapi's stock provider transforms two corners only and
  misses features near the edges.
- **Deep offsets are cheap.** The page is chosen on feature ids first (an
  index-only scan for the default order) and the JSON is built for the page's
  rows only.
- **numberMatched** is the catalog's row count when nothing filters (kept exact
  by ingestion), else a ``count(*)`` with the same conditions.

Coordinates are written with 7 decimals in degrees (about 1 cm) and 3 in
metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from api.ogc.tables import Column, Table
from layers.crs import STORAGE_EPSG, transformer
from layers.errors import InvalidInput

CRS84 = 0
SUPPORTED_EPSG = (CRS84, 4326, STORAGE_EPSG, 3857)
# Longest edge of the densified box before it is transformed.
_DENSIFY = {CRS84: 0.0005, 4326: 0.0005, 3857: 50.0, STORAGE_EPSG: 50.0}
# Slack around the transformed box for the index prefilter, in storage metres.
_PAD_M = 1.0
# PostgreSQL types a bound value may be cast to (never taken from a request).
_CASTS = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "numeric",
        "real",
        "double precision",
        "boolean",
        "date",
        "text",
        "timestamp with time zone",
        "timestamp without time zone",
    }
)


def srid_of(epsg: int) -> int:
    """The PostGIS SRID of an output or bbox CRS code (CRS84 is 4326 in lon/lat)."""
    return 4326 if epsg == CRS84 else epsg


def digits_of(epsg: int) -> int:
    """Decimals written for coordinates in a CRS."""
    return 7 if epsg in (CRS84, 4326) else 3


@dataclass
class FeatureQuery:
    """What a client asked of a collection's items."""

    table: Table
    limit: int = 10
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_epsg: int = CRS84
    interval: tuple[datetime | None, datetime | None] | None = None
    equals: list[tuple[str, str]] = field(default_factory=list)
    cql: tuple[sql.Composable, list] | None = None
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    properties: list[str] | None = None
    skip_geometry: bool = False
    out_epsg: int = CRS84
    hits_only: bool = False


@dataclass
class Page:
    """One page of features, serialised."""

    features: str
    returned: int
    matched: int


def cast(column: Column) -> sql.Composable:
    """``::type`` for a bound value compared with ``column``."""
    kind = column.pg_type if column.pg_type in _CASTS else "text"
    return sql.SQL("::" + kind)


def column_expr(column: Column) -> sql.Composable:
    """The column as a comparable value (text for types without a cast)."""
    ident = sql.SQL("t.") + sql.Identifier(column.name)
    return ident if column.pg_type in _CASTS else ident + sql.SQL("::text")


def where(query: FeatureQuery) -> tuple[sql.Composable | None, list]:
    """The WHERE conditions of a query and their bound parameters (None: no condition)."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    table = query.table
    if query.bbox is not None:
        clause, values = bbox_clause(table, query.bbox, query.bbox_epsg)
        parts.append(clause)
        params += values
    if query.interval is not None and table.time_start:
        clause, values = interval_clause(table, query.interval)
        parts.append(clause)
        params += values
    for name, value in query.equals:
        column = table.columns[name]
        parts.append(sql.SQL("{} = %s{}").format(column_expr(column), cast(column)))
        params.append(value)
    if query.cql is not None:
        parts.append(sql.SQL("({})").format(query.cql[0]))
        params += list(query.cql[1])
    if not parts:
        return None, []
    return sql.SQL(" AND ").join(parts), params


def bbox_clause(
    table: Table, bbox: tuple[float, float, float, float], epsg: int
) -> tuple[sql.Composable, list]:
    """Exact intersection with a box given in ``epsg`` (axis order of that CRS)."""
    if table.geometry_column is None:
        raise InvalidInput(
            f"collection {table.layer.id} has no geometry; bbox does not apply", field="bbox"
        )
    x1, y1, x2, y2 = (bbox[1], bbox[0], bbox[3], bbox[2]) if epsg == 4326 else bbox
    geom = sql.SQL("t.") + sql.Identifier(table.geometry_column)
    srid = srid_of(epsg)
    boxes = [(x1, y1, x2, y2)] if x1 <= x2 else [(x1, y1, 180.0, y2), (-180.0, y1, x2, y2)]
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for box in boxes:
        prefilter = _storage_envelope(table, box, epsg)
        if prefilter is None:
            continue
        if srid == STORAGE_EPSG:
            clauses.append(
                sql.SQL(
                    "({g} && ST_MakeEnvelope(%s, %s, %s, %s, 25832)"
                    " AND ST_Intersects({g}, ST_MakeEnvelope(%s, %s, %s, %s, 25832)))"
                ).format(g=geom)
            )
            params += [*prefilter, *box]
        else:
            clauses.append(
                sql.SQL(
                    "({g} && ST_MakeEnvelope(%s, %s, %s, %s, 25832)"
                    " AND ST_Intersects(ST_Transform({g}, %s), ST_MakeEnvelope(%s, %s, %s, %s, %s)))"
                ).format(g=geom)
            )
            params += [*prefilter, srid, *box, srid]
    if not clauses:
        return sql.SQL("FALSE"), []
    return sql.SQL("({})").format(sql.SQL(" OR ").join(clauses)), params


def _storage_envelope(
    table: Table, box: tuple[float, float, float, float], epsg: int
) -> tuple[float, float, float, float] | None:
    """Storage-CRS envelope (padded) of the part of ``box`` near the layer, or None."""
    extent = table.layer.extent
    if extent is None:
        return None
    if epsg == STORAGE_EPSG:
        clip = (
            max(box[0], extent[0] - _PAD_M),
            max(box[1], extent[1] - _PAD_M),
            min(box[2], extent[2] + _PAD_M),
            min(box[3], extent[3] + _PAD_M),
        )
        return clip if clip[0] <= clip[2] and clip[1] <= clip[3] else None
    to_box = transformer(STORAGE_EPSG, srid_of(epsg))
    lx1, ly1, lx2, ly2 = to_box.transform_bounds(
        extent[0] - 100, extent[1] - 100, extent[2] + 100, extent[3] + 100, densify_pts=21
    )
    clip = (max(box[0], lx1), max(box[1], ly1), min(box[2], lx2), min(box[3], ly2))
    if clip[0] > clip[2] or clip[1] > clip[3]:
        return None
    step = _DENSIFY[epsg]
    points = max(2, min(2000, math.ceil(max(clip[2] - clip[0], clip[3] - clip[1]) / step)))
    to_storage = transformer(srid_of(epsg), STORAGE_EPSG)
    x1, y1, x2, y2 = to_storage.transform_bounds(*clip, densify_pts=points)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise InvalidInput("bbox cannot be transformed to the storage CRS", field="bbox")
    return (x1 - _PAD_M, y1 - _PAD_M, x2 + _PAD_M, y2 + _PAD_M)


def interval_clause(
    table: Table, interval: tuple[datetime | None, datetime | None]
) -> tuple[sql.Composable, list]:
    """Features whose time (instant or start/end interval) meets ``interval``."""
    start, end = interval
    first = sql.SQL("t.") + sql.Identifier(table.time_start)
    last = sql.SQL("t.") + sql.Identifier(table.time_end or table.time_start)
    parts, params = [], []
    if end is not None:
        parts.append(sql.SQL("{} <= %s").format(first))
        params.append(end)
    if start is not None:
        parts.append(sql.SQL("{} >= %s").format(last))
        params.append(start)
    if not parts:
        return sql.SQL("{} IS NOT NULL").format(first), []
    return sql.SQL(" AND ").join(parts), params


def parse_datetime(value: str) -> tuple[datetime | None, datetime | None]:
    """An RFC 3339 instant or interval (``a/b``, ``../b``, ``a/..``) as UTC bounds."""
    if "/" in value:
        first, _, last = value.partition("/")
        start = None if first in ("", "..") else _instant(first, value)[0]
        end = None if last in ("", "..") else _instant(last, value)[1]
        if start is None and end is None:
            raise InvalidInput("datetime interval is open at both ends", field="datetime")
        if start is not None and end is not None and start > end:
            raise InvalidInput(
                f"datetime interval {value!r} ends before it starts", field="datetime"
            )
        return start, end
    return _instant(value, value)


def _instant(text: str, whole: str) -> tuple[datetime, datetime]:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, start + timedelta(days=1) - timedelta(microseconds=1)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"datetime {whole!r} is not an RFC 3339 date-time, date or interval",
            field="datetime",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, moment


def _order(query: FeatureQuery) -> sql.Composable:
    keys = [
        sql.SQL("t.{} {}").format(sql.Identifier(name), sql.SQL("ASC" if asc else "DESC"))
        for name, asc in query.sortby
    ]
    keys.append(sql.SQL("t.fid"))
    return sql.SQL(", ").join(keys)


def geometry_expr(table: Table, epsg: int, alias: str = "t") -> sql.Composable:
    """GeoJSON geometry of the row in ``epsg`` (lat/lon for EPSG:4326), as json."""
    if table.geometry_column is None:
        return sql.SQL("NULL::json")
    geom = sql.Identifier(alias, table.geometry_column)
    if epsg != STORAGE_EPSG:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(srid_of(epsg)))
    if epsg == 4326:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return sql.SQL("ST_AsGeoJSON({}, {})::json").format(geom, sql.Literal(digits_of(epsg)))


def properties_expr(table: Table, names: list[str], alias: str = "t") -> sql.Composable:
    """A json object of the named columns of the row."""
    if not names:
        return sql.SQL("'{}'::json")
    if len(names) <= 50:
        pairs = [sql.SQL("{}, {}").format(sql.Literal(n), sql.Identifier(alias, n)) for n in names]
        return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(pairs))
    cols = sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)
    return sql.SQL("(SELECT row_to_json(r) FROM (SELECT {}) r)").format(cols)


def feature_expr(query: FeatureQuery, alias: str = "t") -> sql.Composable:
    """One row as a GeoJSON Feature, as text."""
    names = query.properties if query.properties is not None else list(query.table.columns)
    geometry = (
        sql.SQL("NULL::json")
        if query.skip_geometry
        else geometry_expr(query.table, query.out_epsg, alias)
    )
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', {a}.fid, 'geometry', {g}, 'properties', {p})::text"
    ).format(a=sql.Identifier(alias), g=geometry, p=properties_expr(query.table, names, alias))


def run_page(conn: Connection, query: FeatureQuery) -> Page:
    """Run a query: the page of features as GeoJSON text, returned and matched counts."""
    table = query.table
    condition, params = where(query)
    if condition is not None or table.layer.row_count is None:
        # Live views (planned works) carry no row count in the catalog: count them.
        matched = sql.SQL("(SELECT count(*) FROM {tb} t WHERE {w})").format(
            tb=table.identifier, w=condition if condition is not None else sql.SQL("TRUE")
        )
        matched_params = list(params)
    else:
        matched = sql.SQL("(SELECT row_count FROM geoby.layers WHERE id = %s)")
        matched_params = [table.layer.id]
    if query.hits_only:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {}").format(matched), matched_params)
            return Page("", 0, int(cur.fetchone()[0] or 0))
    statement = sql.SQL(
        "WITH page AS (SELECT t.fid, row_number() OVER () AS n FROM "
        "(SELECT t.fid FROM {tb} t WHERE {w} ORDER BY {order} LIMIT %s OFFSET %s) t) "
        "SELECT (SELECT coalesce(string_agg({feature}, ',' ORDER BY p.n), '') "
        "FROM page p JOIN {tb} t ON t.fid = p.fid), (SELECT count(*) FROM page), {matched}"
    ).format(
        tb=table.identifier,
        w=condition if condition is not None else sql.SQL("TRUE"),
        order=_order(query),
        feature=feature_expr(query),
        matched=matched,
    )
    _refuse_nul([*params, *matched_params])
    with conn.cursor() as cur:
        cur.execute(statement, [*params, query.limit, query.offset, *matched_params])
        body, returned, count = cur.fetchone()
    return Page(body, int(returned), int(count or 0))


def _refuse_nul(params: list) -> None:
    """Refuse a bound text holding NUL: PostgreSQL text cannot, and the driver would raise."""
    if any(isinstance(p, str) and "\x00" in p for p in params):
        raise InvalidInput("a query value holds a NUL character, which text cannot hold",
                           field="query")  # fmt: skip


def run_item(conn: Connection, table: Table, fid: int, out_epsg: int) -> str | None:
    """One feature as GeoJSON text, or None."""
    query = FeatureQuery(table=table, out_epsg=out_epsg)
    statement = sql.SQL("SELECT {} FROM {} t WHERE t.fid = %s").format(
        feature_expr(query), table.identifier
    )
    with conn.cursor() as cur:
        cur.execute(statement, (fid,))
        row = cur.fetchone()
    return row[0] if row else None
