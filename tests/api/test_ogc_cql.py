"""CQL2 text and JSON filters as SQL (api.ogc.cql), run on a real PostGIS table.

``data.test_cql_lines`` holds 50 short lines near E720000 N6170000 with
attributes computed from their fid (some NULL), plus two lines just inside and
just outside a large lon/lat box. Every filter runs as
``SELECT fid FROM data.test_cql_lines t WHERE <filter>`` and must return the
fids worked out here in Python from the same values; spatial filters must
match an independent PostGIS query that transforms the stored geometry to
lon/lat instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from psycopg2 import sql

from api.ogc.cql import Queryable, parse_filter, to_where
from layers.database import connect
from layers.errors import InvalidInput
from tests.db_helpers import rows

TABLE = sql.Identifier("data", "test_cql_lines")
KINDS = ("gas", "water", "power", "telecom", "heat")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
D0 = date(1990, 1, 1)


def _row(fid: int) -> dict:
    return {
        "fid": fid,
        "kind": None if fid % 13 == 0 else KINDS[fid % 5],
        "diameter_mm": None if fid % 7 == 0 else 50 + (fid * 37) % 800,
        "depth": None if fid % 6 == 0 else round(0.3 + (fid % 10) * 0.25, 2),
        "laid": None if fid % 9 == 0 else D0 + timedelta(days=300 * fid),
        "seen": None if fid % 8 == 0 else T0 + timedelta(hours=37 * fid),
        "flag": fid % 3 == 0,
        "name": "O'Brien" if fid == 17 else f"Line {fid}",
        "meta": json.dumps({"n": fid}),
    }


EMPTY = dict.fromkeys(("kind", "diameter_mm", "depth", "laid", "seen", "meta"))
ROWS = [_row(fid) for fid in range(1, 51)] + [
    {**EMPTY, "fid": 51, "flag": False, "name": "north edge"},
    {**EMPTY, "fid": 52, "flag": False, "name": "south edge"},
]
NULL_GEOMETRY = {25, 50}
# Two lines just outside (fid 51) and just inside (fid 52) BBOX(11, 55, 14, 56):
# the box's corners alone, transformed to UTM, would get both wrong.
EDGE_LATITUDES = {51: 56.00001, 52: 55.00001}

SEEN_10 = (T0 + timedelta(hours=370)).strftime("%Y-%m-%dT%H:%M:%SZ")
SEEN_30 = (T0 + timedelta(hours=1110)).strftime("%Y-%m-%dT%H:%M:%SZ")
LAID_10 = (D0 + timedelta(days=3000)).isoformat()
BOX = (12.50, 55.628, 12.52, 55.634)  # lon/lat, across the middle of the lines
POLYGON = "POLYGON((12.5 55.628, 12.52 55.628, 12.52 55.634, 12.5 55.634, 12.5 55.628))"


def has(key: str, test: Callable) -> Callable[[dict], bool]:
    """A row predicate that is false where the value is NULL, as in SQL."""
    return lambda row: row[key] is not None and test(row[key])


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def conn(database):
    """A superuser connection and the test table, dropped afterwards."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    columns = ("fid", "kind", "diameter_mm", "depth", "laid", "seen", "flag", "name", "meta")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(TABLE))
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (fid bigint PRIMARY KEY, kind text, diameter_mm integer,"
                " depth double precision, laid date, seen timestamptz, flag boolean,"
                " name text, meta jsonb, geom geometry(LineString, 25832))"
            ).format(TABLE)
        )
        for row in ROWS:
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    TABLE,
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                ),
                [row[c] for c in columns],
            )
        cur.execute(
            sql.SQL(
                "UPDATE {} SET geom = ST_MakeLine(ST_MakePoint(x, y), ST_MakePoint(x + 150, y + 80))"
                "::geometry(LineString, 25832) FROM (SELECT fid AS id,"
                " 720000 + mod(fid, 10) * 300 AS x, 6170000 + (fid / 10) * 300 AS y FROM {}) g"
                " WHERE fid = g.id AND fid <= 50 AND NOT fid = ANY(%s)"
            ).format(TABLE, TABLE),
            (sorted(NULL_GEOMETRY),),
        )
        for fid, lat in EDGE_LATITUDES.items():
            cur.execute(
                sql.SQL(
                    "UPDATE {} SET geom = ST_Transform(ST_SetSRID(ST_MakeLine("
                    "ST_MakePoint(12.5, %s), ST_MakePoint(12.50001, %s)), 4326), 25832)"
                    " WHERE fid = %s"
                ).format(TABLE),
                (lat, lat, fid),
            )
    yield conn
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(TABLE))
    conn.close()


@pytest.fixture(scope="module")
def queryables(conn) -> dict[str, Queryable]:
    """The table's columns and types as the catalog names them (format_type)."""
    found = rows(
        conn,
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
        " WHERE attrelid = 'data.test_cql_lines'::regclass AND attnum > 0"
        " AND NOT attisdropped AND attname NOT IN ('fid', 'geom')",
    )
    return {name: Queryable(name, pg_type) for name, pg_type in found}


def select(conn, queryables, text, lang=None, **options) -> list[int]:
    where, params = to_where(parse_filter(text, lang), queryables, **options)
    query = sql.SQL("SELECT fid FROM {} AS t WHERE {} ORDER BY fid").format(TABLE, where)
    return [fid for (fid,) in rows(conn, query, *params)]


def expected(predicate: Callable[[dict], bool]) -> list[int]:
    return [row["fid"] for row in ROWS if predicate(row)]


def independent(conn, condition: str, *params) -> list[int]:
    """fids from a hand-written spatial query on the geometry in lon/lat."""
    query = sql.SQL("SELECT fid FROM {} WHERE {} ORDER BY fid").format(TABLE, sql.SQL(condition))
    return [fid for (fid,) in rows(conn, query, *params)]


ATTRIBUTE_CASES = [
    ("kind = 'gas'", has("kind", lambda v: v == "gas")),
    ("kind <> 'gas'", has("kind", lambda v: v != "gas")),
    ("diameter_mm < 161", has("diameter_mm", lambda v: v < 161)),
    ("diameter_mm <= 161", has("diameter_mm", lambda v: v <= 161)),
    ("diameter_mm > 400", has("diameter_mm", lambda v: v > 400)),
    ("diameter_mm >= 457", has("diameter_mm", lambda v: v >= 457)),
    ("diameter_mm = 124", has("diameter_mm", lambda v: v == 124)),
    ("diameter_mm > 160.5", has("diameter_mm", lambda v: v > 160.5)),  # not rounded to 161
    ("diameter_mm = 124.5", lambda r: False),
    ("diameter_mm = '124'", has("diameter_mm", lambda v: v == 124)),
    ("depth >= 1.55", has("depth", lambda v: v >= 1.55)),
    ("depth < 0.8", has("depth", lambda v: v < 0.8)),
    ("flag = TRUE", lambda r: r["flag"]),
    ("flag = false", lambda r: not r["flag"]),
    ("name LIKE 'Line 1%'", has("name", lambda v: v.startswith("Line 1"))),
    ("name LIKE 'Line _'", has("name", lambda v: v.startswith("Line ") and len(v) == 6)),
    ("name NOT LIKE 'Line %'", has("name", lambda v: not v.startswith("Line "))),
    ("CASEI(name) LIKE CASEI('LINE 2%')", has("name", lambda v: v.startswith("Line 2"))),
    ("CASEI(kind) = CASEI('GAS')", has("kind", lambda v: v == "gas")),
    ("name = 'O''Brien'", has("name", lambda v: v == "O'Brien")),
    ("meta = '{\"n\": 3}'", has("meta", lambda v: v == '{"n": 3}')),  # jsonb compares as text
    ("diameter_mm BETWEEN 124 AND 457", has("diameter_mm", lambda v: 124 <= v <= 457)),
    ("diameter_mm NOT BETWEEN 124 AND 457", has("diameter_mm", lambda v: not 124 <= v <= 457)),
    ("kind IN ('gas', 'heat')", has("kind", lambda v: v in ("gas", "heat"))),
    ("kind NOT IN ('gas', 'heat')", has("kind", lambda v: v not in ("gas", "heat"))),
    ("diameter_mm IN (87, 124, 999)", has("diameter_mm", lambda v: v in (87, 124))),
    ("depth IS NULL", lambda r: r["depth"] is None),
    ("kind IS NOT NULL", lambda r: r["kind"] is not None),
    ("geometry IS NULL", lambda r: r["fid"] in NULL_GEOMETRY),
    ("kind = 'gas' AND diameter_mm > 400",
     lambda r: r["kind"] == "gas" and has("diameter_mm", lambda v: v > 400)(r)),
    # AND binds tighter than OR (pygeofilter 0.4's own grammar read this left to right)
    ("kind = 'gas' OR kind = 'water' AND depth > 1.5",
     lambda r: r["kind"] == "gas" or (r["kind"] == "water" and has("depth", lambda v: v > 1.5)(r))),
    ("(kind = 'gas' OR kind = 'water') AND depth > 1.5",
     lambda r: r["kind"] in ("gas", "water") and has("depth", lambda v: v > 1.5)(r)),
    ("NOT kind = 'gas'", has("kind", lambda v: v != "gas")),
    ("NOT (kind = 'gas' OR diameter_mm < 300)",
     lambda r: has("kind", lambda v: v != "gas")(r) and has("diameter_mm", lambda v: v >= 300)(r)),
    ("kind = 'heat' AND NOT (depth IS NULL OR depth < 1) OR diameter_mm = 124",
     lambda r: (r["kind"] == "heat" and has("depth", lambda v: v >= 1)(r))
     or r["diameter_mm"] == 124),
    ("diameter_mm * 2 > 1000", has("diameter_mm", lambda v: v * 2 > 1000)),
    ("diameter_mm / 2 = 43.5", has("diameter_mm", lambda v: v == 87)),  # not integer division
    ("depth + 1 < 2", has("depth", lambda v: v < 1)),
    ("diameter_mm - 100 >= 24", has("diameter_mm", lambda v: v >= 124)),
    ("laid < DATE('2000-01-01')", has("laid", lambda v: v < date(2000, 1, 1))),
    (f"laid = DATE('{LAID_10}')", has("laid", lambda v: v.isoformat() == LAID_10)),
    ("laid BETWEEN DATE('2000-01-01') AND DATE('2010-12-31')",
     has("laid", lambda v: date(2000, 1, 1) <= v <= date(2010, 12, 31))),
    ("seen > TIMESTAMP('2024-02-01T00:00:00Z')", has("seen", lambda v: v > _at("2024-02-01T00:00Z"))),
    (f"seen <= TIMESTAMP('{SEEN_10}')", has("seen", lambda v: v <= _at(SEEN_10))),
    (f"T_AFTER(seen, TIMESTAMP('{SEEN_10}'))", has("seen", lambda v: v > _at(SEEN_10))),
    (f"seen T_BEFORE TIMESTAMP('{SEEN_10}')", has("seen", lambda v: v < _at(SEEN_10))),
    (f"T_EQUALS(seen, TIMESTAMP('{SEEN_10}'))", has("seen", lambda v: v == _at(SEEN_10))),
    (f"T_DURING(seen, INTERVAL('{SEEN_10}', '{SEEN_30}'))",
     has("seen", lambda v: _at(SEEN_10) < v < _at(SEEN_30))),
    (f"T_INTERSECTS(seen, INTERVAL('{SEEN_10}', '{SEEN_30}'))",
     has("seen", lambda v: _at(SEEN_10) <= v <= _at(SEEN_30))),
    (f"T_DISJOINT(seen, INTERVAL('{SEEN_10}', '{SEEN_30}'))",
     has("seen", lambda v: not _at(SEEN_10) <= v <= _at(SEEN_30))),
    (f"T_DURING(seen, INTERVAL('{SEEN_30}', '..'))", has("seen", lambda v: v > _at(SEEN_30))),
    ("T_AFTER(seen, DATE('2024-02-01'))", has("seen", lambda v: v > _at("2024-02-01T00:00Z"))),
    (f"T_BEFORE(laid, DATE('{LAID_10}'))", has("laid", lambda v: v.isoformat() < LAID_10)),
    ("T_INTERSECTS(laid, INTERVAL('2000-01-01', '2005-12-31'))",
     has("laid", lambda v: date(2000, 1, 1) <= v <= date(2005, 12, 31))),
]  # fmt: skip

JSON_CASES = [
    ({"op": "and", "args": [{"op": "=", "args": [{"property": "kind"}, "gas"]},
                            {"op": ">", "args": [{"property": "diameter_mm"}, 400]}]},
     lambda r: r["kind"] == "gas" and has("diameter_mm", lambda v: v > 400)(r)),
    ({"op": "between", "args": [{"property": "diameter_mm"}, 124, 457]},
     has("diameter_mm", lambda v: 124 <= v <= 457)),
    ({"op": "like", "args": [{"op": "casei", "args": [{"property": "name"}]},
                             {"op": "casei", "args": ["LINE 1%"]}]},
     has("name", lambda v: v.startswith("Line 1"))),
    ({"op": "not", "args": [{"op": "or", "args": [
        {"op": "=", "args": [{"property": "kind"}, "gas"]},
        {"op": "<", "args": [{"property": "diameter_mm"}, 300]}]}]},
     lambda r: has("kind", lambda v: v != "gas")(r) and has("diameter_mm", lambda v: v >= 300)(r)),
    ({"op": "=", "args": [{"property": "name"}, "O'Brien"]}, has("name", lambda v: v == "O'Brien")),
    ({"op": "isNull", "args": [{"property": "depth"}]}, lambda r: r["depth"] is None),
    ({"op": "in", "args": [{"property": "kind"}, ["gas", "heat"]]},
     has("kind", lambda v: v in ("gas", "heat"))),
    ({"op": "=", "args": [{"property": "flag"}, True]}, lambda r: r["flag"]),
    ({"op": ">", "args": [{"op": "*", "args": [{"property": "diameter_mm"}, 2]}, 1000]},
     has("diameter_mm", lambda v: v * 2 > 1000)),
    ({"op": "t_after", "args": [{"property": "seen"}, {"timestamp": SEEN_10}]},
     has("seen", lambda v: v > _at(SEEN_10))),
    ({"op": "t_during", "args": [{"property": "seen"}, {"interval": [SEEN_30, ".."]}]},
     has("seen", lambda v: v > _at(SEEN_30))),
    ({"op": "t_intersects", "args": [{"property": "laid"},
                                     {"interval": ["2000-01-01", "2005-12-31"]}]},
     has("laid", lambda v: date(2000, 1, 1) <= v <= date(2005, 12, 31))),
    ({"op": "t_disjoint", "args": [{"property": "seen"}, {"interval": [SEEN_10, SEEN_30]}]},
     has("seen", lambda v: not _at(SEEN_10) <= v <= _at(SEEN_30))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "predicate"), ATTRIBUTE_CASES)
def test_cql2_text_selects_the_expected_rows(conn, queryables, text, predicate):
    assert select(conn, queryables, text) == expected(predicate)


def test_the_attribute_cases_are_not_trivial():
    """Each case keeps some rows and drops others (bar one that must match none)."""
    found = {text: expected(predicate) for text, predicate in ATTRIBUTE_CASES}
    assert {text for text, fids in found.items() if not fids} == {"diameter_mm = 124.5"}
    assert all(len(fids) < len(ROWS) for fids in found.values())
    # the two readings of AND and OR precedence select different rows
    assert (
        found["kind = 'gas' OR kind = 'water' AND depth > 1.5"]
        != found["(kind = 'gas' OR kind = 'water') AND depth > 1.5"]
    )


@pytest.mark.parametrize(("document", "predicate"), JSON_CASES)
def test_cql2_json_selects_the_expected_rows(conn, queryables, document, predicate):
    want = expected(predicate)
    assert want
    assert select(conn, queryables, document) == want  # a parsed document
    assert select(conn, queryables, json.dumps(document).encode()) == want  # a request body
    assert select(conn, queryables, json.dumps(document), "cql2-json") == want


# -- spatial ---------------------------------------------------------------------

ENVELOPE_SQL = "ST_Intersects(ST_Transform(geom, 4326), ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
BOX_TEXT = ", ".join(map(str, BOX))


@pytest.mark.parametrize(
    "text",
    [f"S_INTERSECTS(geometry, BBOX({BOX_TEXT}))", f"BBOX(geometry, {BOX_TEXT})",
     f"S_INTERSECTS(geom, {POLYGON})", f"S_INTERSECTS({POLYGON}, geometry)"],
)  # fmt: skip
def test_intersects_a_lon_lat_box(conn, queryables, text):
    want = independent(conn, ENVELOPE_SQL, *BOX)
    assert 0 < len(want) < 48
    assert select(conn, queryables, text) == want


def test_json_bbox_and_polygon_literals(conn, queryables):
    want = independent(conn, ENVELOPE_SQL, *BOX)
    bbox = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(BOX)}]}
    assert select(conn, queryables, bbox) == want
    x1, y1, x2, y2 = BOX
    ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    document = {"op": "s_intersects", "args": [{"property": "geometry"}, polygon]}
    assert select(conn, queryables, document) == want
    collection = {"type": "GeometryCollection", "geometries": [polygon]}
    document = {"op": "s_intersects", "args": [{"property": "geometry"}, collection]}
    assert select(conn, queryables, document) == want
    six = {
        "op": "s_intersects",
        "args": [{"property": "geometry"}, {"bbox": [x1, y1, 0, x2, y2, 9]}],
    }
    assert select(conn, queryables, six) == want


@pytest.mark.parametrize(
    ("operator", "function"),
    [("S_INTERSECTS", "ST_Intersects"), ("S_DISJOINT", "ST_Disjoint"), ("S_WITHIN", "ST_Within"),
     ("S_CROSSES", "ST_Crosses"), ("S_TOUCHES", "ST_Touches"), ("S_OVERLAPS", "ST_Overlaps"),
     ("S_EQUALS", "ST_Equals"), ("S_CONTAINS", "ST_Contains")],
)  # fmt: skip
def test_spatial_operators_match_postgis_in_lon_lat(conn, queryables, operator, function):
    want = independent(
        conn, f"{function}(ST_Transform(geom, 4326), ST_GeomFromText(%s, 4326))", POLYGON
    )
    if operator in ("S_INTERSECTS", "S_DISJOINT", "S_WITHIN", "S_CROSSES"):
        assert want
    assert select(conn, queryables, f"{operator}(geometry, {POLYGON})") == want


def test_contains_with_the_literal_first(conn, queryables):
    want = independent(
        conn, "ST_Within(ST_Transform(geom, 4326), ST_GeomFromText(%s, 4326))", POLYGON
    )
    assert want
    assert select(conn, queryables, f"S_CONTAINS({POLYGON}, geometry)") == want


def test_a_bbox_literal_is_densified_along_its_parallels(conn, queryables):
    """A 3 degree wide box: its top and bottom edges are parallels, not straight in UTM."""
    box = (11.0, 55.0, 14.0, 56.0)
    want = independent(conn, ENVELOPE_SQL, *box)
    assert 52 in want and 51 not in want
    assert select(conn, queryables, "S_INTERSECTS(geometry, BBOX(11, 55, 14, 56))") == want
    corners_only = independent(
        conn,
        "ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), 25832))",
        *box,
    )
    assert corners_only != want  # the two edge lines tell the methods apart


def test_filter_crs_in_storage_crs_and_lat_lon_order(conn, queryables):
    utm = (720500, 6170300, 721500, 6170900)
    want = independent(conn, "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 25832))", *utm)
    assert want
    text = "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*utm)
    assert select(conn, queryables, text, filter_srid=25832) == want
    lat_lon = "S_INTERSECTS(geometry, BBOX({1}, {0}, {3}, {2}))".format(*BOX)
    assert select(conn, queryables, lat_lon, lat_lon=True) == independent(conn, ENVELOPE_SQL, *BOX)
    ewkt = (
        "S_INTERSECTS(geometry, SRID=25832;POLYGON(({0} {1}, {2} {1}, {2} {3}, {0} {3}, {0} {1})))"
    )
    assert select(conn, queryables, ewkt.format(*utm)) == want  # in a CRS84 filter


def test_spatial_and_attribute_filters_combine(conn, queryables):
    want = [fid for fid in independent(conn, ENVELOPE_SQL, *BOX) if ROWS[fid - 1]["kind"] == "gas"]
    assert want
    assert (
        select(conn, queryables, f"S_INTERSECTS(geometry, BBOX({BOX_TEXT})) AND kind = 'gas'")
        == want
    )


def test_relate_and_no_alias(conn, queryables):
    want = independent(
        conn, "ST_Relate(ST_Transform(geom, 4326), ST_GeomFromText(%s, 4326), 'T********')", POLYGON
    )
    assert want
    where, params = to_where(parse_filter(f"RELATE(geometry, {POLYGON}, 'T********')", None),
                             queryables, alias=None)  # fmt: skip
    query = sql.SQL("SELECT fid FROM {} WHERE {} ORDER BY fid").format(TABLE, where)
    assert [fid for (fid,) in rows(conn, query, *params)] == want


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "says"),
    [
        ("kind = ", None, "filter is not valid cql2-text: Unexpected token"),
        ("kind = 'gas' AND", None, "column"),
        ('{"op": "=", ', None, "filter is not valid cql2-json"),
        ({"op": "foo", "args": []}, None, "not valid cql2-json"),
        ({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [1, 2]}]}, None,
         "a bbox is 4 or 6 numbers"),
        ("kind = 'gas'", "cql2-json", "not valid cql2-json"),
        ("DWITHIN(geometry, POINT(12.5 55.6), 10, meters)", None, "not valid cql2-text"),
    ],
)  # fmt: skip
def test_syntax_errors_say_what_is_wrong(text, lang, says):
    with pytest.raises(InvalidInput) as caught:
        parse_filter(text, lang)
    assert says in caught.value.detail
    assert caught.value.field == "filter"
    assert "Traceback" not in caught.value.detail and len(caught.value.detail) < 300


@pytest.mark.parametrize("lang", ["ecql", "cql-text", "json"])
def test_other_filter_languages_are_refused(lang):
    with pytest.raises(InvalidInput) as caught:
        parse_filter("kind = 'gas'", lang)
    assert "cql2-text or cql2-json" in caught.value.detail
    assert caught.value.field == "filter-lang"


@pytest.mark.parametrize(
    "text",
    ["colour = 'red'", "S_INTERSECTS(colour, BBOX(12, 55, 13, 56))", "colour IS NULL",
     {"op": "=", "args": [{"property": "colour"}, "red"]}],
)  # fmt: skip
def test_unknown_properties_name_the_queryables(queryables, text):
    with pytest.raises(InvalidInput) as caught:
        to_where(parse_filter(text, None), queryables)
    assert caught.value.detail == (
        "unknown property 'colour' in filter; queryables are: "
        "depth, diameter_mm, flag, kind, laid, meta, name, seen"
    )
    assert caught.value.field == "filter"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("upper(kind) = 'GAS'", "upper() is not offered"),
        ("ACCENTI(kind) = ACCENTI('gas')", "accenti() is not offered"),
        ({"op": "a_equals", "args": [{"property": "kind"}, ["gas"]]}, "A_EQUALS"),
        ({"op": "t_during", "args": [{"property": "seen"}, {"interval": ["2024-01-01", "P1D"]}]},
         "durations"),
        ("diameter_mm = 'abc'", "'abc' in the filter is not a valid integer"),
        ("laid = 'yesterday'", "not a valid date"),
        ("kind = diameter_mm", "filter compares text with integer"),
        ("kind + 1 > 2", "arithmetic needs numbers"),
        ("diameter_mm / 0 > 1", "divides by zero"),
        (f"T_AFTER(kind, TIMESTAMP('{SEEN_10}'))", "T_AFTER compares dates and times"),
        ("S_INTERSECTS(kind, POINT(12.5 55.6))", "'kind' is not the geometry"),
        ("geometry = 'x'", "'geometry' is the geometry"),
        ("S_INTERSECTS(geometry, POINT(12.5 95))", "latitude in the filter is out of range"),
        ("S_INTERSECTS(geometry, BBOX(13, 56, 12, 55))", "lower corner"),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "Self-intersection"),
        ("RELATE(geometry, POINT(12.5 55.6), 'XYZ')", "DE-9IM"),
        ("BBOX(geometry, 12, 55, 13, 56, 'EPSG:2154')", "2154"),
    ],
)  # fmt: skip
def test_constructs_geoby_does_not_offer_are_named(queryables, text, says):
    with pytest.raises(InvalidInput) as caught:
        to_where(parse_filter(text, None), queryables)
    assert says in caught.value.detail
    assert caught.value.field == "filter"


def test_a_table_without_geometry_refuses_spatial_filters(queryables):
    with pytest.raises(InvalidInput, match="no geometry"):
        to_where(parse_filter("S_INTERSECTS(geometry, POINT(12.5 55.6))", None), queryables,
                 geometry_column=None)  # fmt: skip


# -- injection -------------------------------------------------------------------

DROP = "DROP TABLE data.test_cql_lines"


@pytest.mark.parametrize(
    "attack",
    [
        f"\"kind; {DROP}; --\" = 'gas'",
        f"kind = 'gas''; {DROP}; --'",
        f"kind = 'gas'; {DROP}",
        f"S_INTERSECTS(geometry, POINT(12.5 55.6)); {DROP}",
        {"op": "=", "args": [{"property": "kind"}, f"gas'); {DROP}; --"]},
        {"op": "like", "args": [{"property": "name"}, "%' OR '1'='1"]},
        {"op": "=", "args": [{"property": f"kind\" = 'gas'; {DROP}; --"}, "gas"]},
        {"op": "s_intersects", "args": [{"property": "geometry"},
                                        {"type": "Point", "coordinates": [f"1); {DROP}; --", 2]}]},
    ],
)  # fmt: skip
def test_injection_attempts_are_harmless(conn, queryables, attack):
    try:
        where, params = to_where(parse_filter(attack, None), queryables)
    except InvalidInput:
        pass
    else:
        assert DROP not in where.as_string(conn)  # values travel only as parameters
        query = sql.SQL("SELECT fid FROM {} AS t WHERE {}").format(TABLE, where)
        assert rows(conn, query, *params) == []
    assert rows(conn, sql.SQL("SELECT count(*) FROM {}").format(TABLE)) == [(len(ROWS),)]


def test_values_are_bound_and_casts_come_from_the_allow_list(conn, queryables):
    where, params = to_where(parse_filter("kind = 'gas' AND diameter_mm > 400", None), queryables)
    text = where.as_string(conn)
    assert "gas" not in text and "400" not in text
    assert params == ["gas", 400]
    assert '"t"."diameter_mm" > %s::integer' in text
    # a type name that is not on the allow-list is never written into SQL
    hostile = {"diameter_mm": Queryable("diameter_mm", f"integer; {DROP}")}
    where, params = to_where(parse_filter("diameter_mm = 124", None), hostile)
    assert DROP not in where.as_string(conn)
    query = sql.SQL("SELECT fid FROM {} AS t WHERE {}").format(TABLE, where)
    assert rows(conn, query, *params) == [(2,)]
