"""SQL injection through the query parameters of OGC API Features items: refused or harmless.

Over the loaded sample town, every hostile value of ``filter`` (CQL2 text and
JSON), ``sortby``, ``properties``, ``bbox``/``bbox-crs``, ``crs`` and ``datetime``
must give either a 400 problem naming the parameter, or a 200 whose features
equal those of the same request without the hostile parameter. Never a 500, never
server SQL text in the body; afterwards every table is still there with its rows,
and the restricted collections still ask for credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from psycopg2 import sql

from api.app import create_app
from layers.database import Database, connect
from tests.flood.conftest import load_town
from tests.reliability.record import record, scale

RESTRICTED = "utilities_lines"
#: text that only the server's own SQL or driver would put in a body
SQL_MARKERS = ("psycopg2", "syntax error at or near", "LINE 1:", 'FROM "', "SELECT ",
               "Traceback", "ProgrammingError", "pg_catalog")  # fmt: skip
#: httpx refuses URLs over 64 KiB; the long values go as close to that as it allows
LONG = scale(50_000, 50_000)
#: how a problem names a parameter: pygeoapi's adapter keeps only the description
MENTIONS = {"sortby": ("sortby", "sort by"), "crs": ("crs", "CRS"), "bbox-crs": ("bbox-crs", "CRS")}
DEPTH = 1000
PARAMETERS = ("filter", "sortby", "properties", "bbox", "bbox-crs", "crs", "datetime", "limit",
              "offset")  # fmt: skip


@pytest.fixture(scope="module")
def client(settings, database: Database, town_dir) -> Iterator[TestClient]:
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        from tests.dig.conftest import reset

        reset(conn, drop_utilities=True)
    finally:
        conn.close()
    load_town(database, town_dir)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def target(client) -> dict:
    """A public collection with features, one text and one numeric property."""
    collections = client.get("/ogc/collections", params={"f": "json"}).json()["collections"]
    for c in collections:
        r = client.get(f"/ogc/collections/{c['id']}/items", params={"limit": 5, "f": "json"})
        if r.status_code != 200 or not r.json().get("features"):
            continue
        props = r.json()["features"][0]["properties"]
        text = next((k for k, v in props.items() if isinstance(v, str)), None)
        number = next((k for k, v in props.items() if isinstance(v, int | float)
                       and not isinstance(v, bool)), None)  # fmt: skip
        if text and number:
            return {"id": c["id"], "text": text, "number": number, "value": props[text]}
    pytest.fail("no public collection with text and numeric properties in the sample town")


def _attacks(t: dict) -> list[tuple[str, str, dict]]:
    """(name, hostile parameter, params) for the target collection."""
    text, number, value = t["text"], t["number"], t["value"].replace("'", "''")
    nested_text = "(" * DEPTH + f"{number} > 0" + ")" * DEPTH
    chain = " AND ".join([f"{number} > {i}" for i in range(DEPTH)])
    inner = json.dumps({"op": ">", "args": [{"property": number}, 0]})
    nested_json = '{"op":"not","args":[' * DEPTH + inner + "]}" * DEPTH
    drop = f"DROP TABLE data.{t['id']}"
    cases = [
        ("filter", f"{text} = '{value}'; {drop}; --'"),
        ("filter", f"{text} = 'x' OR '1'='1'"),
        ("filter", f"{text} = 'x'' OR ''1''=''1'"),
        ("filter", "1=1; " + drop),
        ("filter", f'"{text}; {drop}" = \'x\''),
        ("filter", f"\"{text}\"\"; {drop}; --\" = 'x'"),
        ("filter", f"{text} = 'ÆØÅ \u202e\u0000 ✓ 𝔘'"),
        ("filter", f"{text} = '" + "x" * LONG + "'"),
        ("filter", nested_text),
        ("filter", chain),
        ("filter", f"pg_sleep(10) = {number}"),
        ("filter", f"lower({text}) = 'x'"),
        ("filter", f"pg_read_file('/etc/passwd') = {text}"),
        ("filter", "_source = 'x'"),
        ("filter", "_loaded_at IS NOT NULL"),
        ("filter", "fid > 0 OR geom IS NULL"),
        ("filter", "owner = 'x'"),
        ("filter", "password_hash IS NOT NULL"),
        ("filter", f"{text} IN (SELECT name FROM geoby.users)"),  # noqa: S608 (the attack)
        ("filter", f"{number} > 1e400"),
        ("filter", "S_INTERSECTS(geometry, POINT(NaN NaN))"),
        ("filter", "S_INTERSECTS(geometry, BBOX(1e300, 1e300, 1e301, 1e301))"),
        ("filter-json", json.dumps({"op": "=", "args": [{"property": f"{text}; {drop}"}, "x"]})),
        ("filter-json", json.dumps({"op": "=", "args": [{"property": text}, "x' OR '1'='1"]})),
        ("filter-json", json.dumps({"op": "pg_sleep", "args": [10]})),
        ("filter-json", json.dumps({"op": "=", "args": [{"function": {
            "name": "pg_read_file", "args": ["/etc/passwd"]}}, "x"]})),
        ("filter-json", json.dumps({"op": "=", "args": [{"property": "_source"}, "x"]})),
        ("filter-json", nested_json),
        ("filter-json", "{" * DEPTH + "}" * DEPTH),
        ("filter-json", json.dumps({"op": "=", "args": [{"property": text}, "x" * LONG]})),
        ("sortby", f'-"{text}"; DROP TABLE x'),
        ("sortby", f"{text}; {drop}"),
        ("sortby", "geometry"),
        ("sortby", "geom"),
        ("sortby", "_source"),
        ("sortby", "no_such_property"),
        ("sortby", f"{text} DESC NULLS FIRST, (SELECT 1)"),
        ("sortby", "1"),
        ("sortby", "x" * LONG),
        ("properties", f"{text}, (SELECT password_hash FROM geoby.users)"),  # noqa: S608
        ("properties", f'{text}"; {drop}; --'),
        ("properties", "_source,_record,fid,geom"),
        ("properties", ",".join([text] * (LONG // (len(text) + 3)))),
        ("bbox", "1,2,3,4); DROP TABLE x; --"),
        ("bbox", "NaN,NaN,NaN,NaN"),
        ("bbox", "-1e308,-1e308,1e308,1e308"),
        ("bbox-crs", "http://www.opengis.net/def/crs/EPSG/0/4326'; DROP TABLE x; --"),
        ("crs", "EPSG:4326; DROP TABLE x"),
        ("crs", "http://www.opengis.net/def/crs/EPSG/0/" + "9" * 400),
        ("datetime", "2020-01-01'; DROP TABLE x; --"),
        ("datetime", "../.."),
        ("datetime", "99999-01-01T00:00:00Z"),
        ("datetime", "2020-01-01T00:00:00Z/" + "9" * LONG),
        ("limit", "1; DROP TABLE x"),
        ("offset", "-1 OR 1=1"),
        (text, "x' OR '1'='1"),
    ]  # fmt: skip
    out = []
    for name, value in cases:
        params: dict = {"limit": 50, "f": "json"}
        if name == "filter-json":
            params.update({"filter": value, "filter-lang": "cql2-json"})
            name = "filter"
        elif name == "bbox-crs":
            params.update({"bbox": "720000,6170000,724000,6174000", "bbox-crs": value})
        else:
            params[name] = value
        out.append((name, value[:80], params))
    return out


def _matched(client, items: str, params: dict) -> int:
    r = client.get(items, params=params)
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


def _tables(database: Database) -> dict[str, int]:
    conn = connect(database.dsn("owner"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n"
                        " ON n.oid = c.relnamespace WHERE n.nspname IN ('geoby', 'data',"
                        " 'restricted') AND c.relkind = 'r' ORDER BY 1")  # fmt: skip
            names = [r[0] for r in cur.fetchall()]
            counts = {}
            for name in names:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(*name.split(".", 1))))  # fmt: skip
                counts[name] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


def _judge(client, items: str, name: str, params: dict, total: int, legit: set) -> str | None:
    """Why a response to a hostile request is wrong, or ``None``."""
    r = client.get(items, params=params)
    body = r.text
    if r.status_code >= 500:
        return f"{r.status_code}: {body[:300]}"
    echoed = json.dumps(params)  # the caller's own text may be quoted back; the server's not
    if any(marker in body and marker not in echoed for marker in SQL_MARKERS):
        return f"server SQL text in the body: {body[:300]}"
    if r.status_code == 400:
        said = json.dumps(r.json())
        names = MENTIONS.get(name, (name,))
        return None if any(n in said for n in names) else f"400 does not name {name}: {said[:300]}"
    if r.status_code != 200:
        return f"unexpected {r.status_code}: {body[:300]}"
    doc = r.json()
    matched = doc.get("numberMatched")
    hidden = {"_source", "_record", "_loaded_at", "geom", "password_hash"}
    if any(hidden & set(f["properties"]) for f in doc["features"]):
        return "a hidden column was returned"
    if name == "filter":  # a literal compared, never SQL run: no tautology widens the result
        if params["filter"] not in legit and total > 1 and matched == total:
            return f"the filter matched all {total} features"
        return None
    if name not in PARAMETERS:  # a property equal to a hostile string: a literal, no match
        return None if matched == 0 else f"{matched} features equal a hostile {name}"
    clean = {k: v for k, v in params.items() if k != name}
    if name not in ("bbox", "datetime", "limit", "offset") and matched != _matched(
        client, items, clean
    ):
        return f"200 with {matched} features, {total} without {name}"
    return None


def test_injection_attempts_are_refused_or_harmless(client, target, database):
    items = f"/ogc/collections/{target['id']}/items"
    before = _tables(database)
    attacks = _attacks(target)
    total = _matched(client, items, {"f": "json", "limit": 1})
    n = target["number"]
    # '1'='1' compares two CQL2 literals: a tautology the caller may write, not an injection
    legit = {"(" * DEPTH + f"{n} > 0" + ")" * DEPTH, f"{target['text']} = 'x' OR '1'='1'",
             " AND ".join([f"{n} > {i}" for i in range(DEPTH)])}  # fmt: skip
    legit.add(
        next(p["filter"] for k, _, p in attacks if p.get("filter", "").startswith('{"op":"not"'))
    )
    failures = []
    for name, shown, params in attacks:
        problem = _judge(client, items, name, params, total, legit)
        if problem:
            failures.append(f"{name}={shown!r}: {problem}")
    after = _tables(database)
    restricted = client.get(f"/ogc/collections/{RESTRICTED}/items", params={"f": "json"})
    if restricted.status_code not in (401, 403, 404):
        failures.append(f"{RESTRICTED} answered {restricted.status_code} without credentials")
    hostile = client.get(f"/ogc/collections/{RESTRICTED}/items",
                         params={"filter": "1=1 OR owner IS NOT NULL", "f": "json"})  # fmt: skip
    if hostile.status_code not in (401, 403, 404):
        failures.append(f"{RESTRICTED} with a filter answered {hostile.status_code}")
    record("hostile_input", "cql2_sortby_injection", cases=len(attacks) + 2,
           failures=len(failures) + (after != before))  # fmt: skip
    assert after == before, "tables or rows changed"
    assert not failures, f"{len(failures)} of {len(attacks)}:\n" + "\n".join(failures)
