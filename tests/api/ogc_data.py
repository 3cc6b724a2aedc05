"""A dense EPSG:25832 line table registered in the catalog, for the OGC API tests."""

from __future__ import annotations

from psycopg2 import sql

from layers import catalog
from layers.database import connect

LAYER_ID = "test_ogc_lines"
ORIGIN = (720000.0, 6170000.0)
SIZE_M = 4000.0


def make_lines(
    conn, rows: int = 20_000, *, layer_id: str = LAYER_ID, seed: float = 0.42
) -> catalog.Layer:
    """Create (or recreate) ``data.<layer_id>``: random short lines with typed attributes.

    Lines of 2-6 vertices, 5-400 m long (some long enough to cross any small
    box), spread over a 4x4 km square at E720000 N6170000, with text, integer,
    float, date and timestamp attributes (some NULL), then register the layer.
    """
    table = sql.Identifier("data", layer_id)
    with conn.cursor() as cur:
        cur.execute("SELECT setseed(%s)", (seed,))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (fid bigserial PRIMARY KEY, kind text, diameter_mm integer,"
                " depth_m double precision, installed date, observed_at timestamptz, name text,"
                " geom geometry(LineString, 25832), _source text, _record text,"
                " _loaded_at timestamptz DEFAULT now())"
            ).format(table)
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (kind, diameter_mm, depth_m, installed, observed_at, name, geom,"
                " _source, _record) "
                "SELECT (ARRAY['gas','water','power','telecom','heat'])[1 + (mod(i, 5))],"
                " CASE WHEN mod(i, 11) = 0 THEN NULL ELSE 50 + mod(i * 37, 800) END,"
                " CASE WHEN mod(i, 7) = 0 THEN NULL ELSE round((0.3 + random() * 2)::numeric, 2) END,"
                " DATE '1960-01-01' + mod(i * 13, 23000),"
                " TIMESTAMPTZ '2020-01-01 00:00Z' + make_interval(hours => mod(i * 17, 40000)),"
                " 'line ' || i,"
                " ST_MakeLine(ARRAY(SELECT ST_MakePoint(x0 + k * dx + (random() - 0.5) * 5,"
                "                                        y0 + k * dy + (random() - 0.5) * 5)"
                "                    FROM generate_series(0, n - 1) k)),"
                " 'synthetic', i::text "
                "FROM (SELECT i, %s + random() * %s AS x0, %s + random() * %s AS y0,"
                "             (random() - 0.5) * len AS dx, (random() - 0.5) * len AS dy,"
                "             2 + (mod(i, 5)) AS n"
                "      FROM (SELECT i, CASE WHEN mod(i, 50) = 0 THEN 400 ELSE 5 + random() * 60 END"
                "            AS len FROM generate_series(1, %s) i) s) g"
            ).format(table),
            (ORIGIN[0], SIZE_M, ORIGIN[1], SIZE_M, rows),
        )
        cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(table))
        cur.execute(sql.SQL("ANALYZE {}").format(table))
        cur.execute("GRANT SELECT ON ALL TABLES IN SCHEMA data TO geoby_read")
    layer = catalog.Layer(
        id=layer_id,
        title="Test utility lines",
        description="Synthetic lines for the OGC API tests.",
        theme="utilities",
        kind="vector",
        table_schema="data",
        table_name=layer_id,
        geometry_type="LineString",
        licence="CC0-1.0",
        keywords=["test"],
    )
    catalog.register(conn, layer)
    return catalog.refresh_statistics(conn, layer_id)


def create_lines(database, rows: int, layer_id: str) -> catalog.Layer:
    """:func:`make_lines` through a superuser connection of its own."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        return make_lines(conn, rows, layer_id=layer_id)
    finally:
        conn.close()


def table_sql(layer_id: str, text: str, where: str = "TRUE") -> sql.Composed:
    """A test query on a layer's table: ``{t}`` is the table, ``{w}`` a literal condition."""
    return sql.SQL(text).format(t=sql.Identifier("data", layer_id), w=sql.SQL(where))
