"""Hostile input over HTTP: schemathesis against geoby's own OpenAPI documents, every role.

Both documents geoby serves are fuzzed operation by operation, in-process over
ASGI, on the sample town (terrain, climate, water, buildings, the seven owners'
networks, the waste bins with their readings): FastAPI's ``/api/openapi.json``
and the OGC API's ``/ogc/openapi?f=json`` (landing, collections, items, item,
queryables, schema, tiles, coverage, processes, execution, jobs, the records
catalog). Each role (anonymous, contractor, utility, planner, admin) runs every
operation with its bearer token, with schema-conforming and schema-violating
requests; half the examples of an operation with path parameters use objects
that exist (a filed dig request, real bins, features, tiles).

Every response must pass schemathesis' checks (no 5xx, a documented status
code and content type, a body matching the documented schema) and
:func:`tests.reliability.contract_run.no_leak` (no traceback, SQL or driver
text, DSN or server path). Each role records the requests sent, the failing
ones and the operations fuzzed, and asserts there was no failure.

Left out or narrowed, and why:

* starting a flood run (``POST /api/flood/scenarios``, ``POST
  /ogc/processes/flood-*/execution``) gets schema-violating requests only: a
  valid one starts minutes of terrain computation per example. The validation
  path, which is what hostile input reaches, is fully fuzzed.
* ``POST /api/waste/routes`` runs with its search time capped at 0.2 s and
  ``POST /api/waste/coverage/proposals`` with at most 3 stations on a grid of at
  least 200 m: both are otherwise bounded only by their documented maxima
  (120 s of search; 50 stations on a 10 m grid), which would make one example
  cost minutes. Every other field keeps its generated value. Even so each call
  costs seconds (planning, the street network), so they get fewer examples, and
  a valid routing request (~15 s) is sent by ``make reliability`` only.
* ``/ogc/jobs/{jobId}`` has no real job to name (no flood run is started), so it
  is fuzzed with generated identifiers only.

The run changes state (dig requests, readings, rules, interest areas, routes):
it uses the session database but resets what it touched when the module ends,
as the dig and web fixtures expect to find it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import morecantile
import psycopg2.extras
import pytest
import schemathesis
from psycopg2 import sql
from schemathesis import Case, GenerationMode
from schemathesis.python import asgi
from schemathesis.schemas import APIOperation, BaseSchema
from shapely.geometry import box, mapping

from api.app import create_app
from dig_coordination.users import add_user, ensure_organisation
from ingest.pipelines import IngestOptions, ingest
from layers.crs import reproject
from layers.database import Database, connect
from tests.dig.conftest import reset
from tests.flood.conftest import load_town
from tests.reliability.contract_run import Plan, Tally, operations, run_operations
from tests.reliability.record import record, scale

ROLES = ("anonymous", "contractor", "utility", "planner", "admin")
ORGS = {"contractor": "Graveholdet ApS", "utility": "NordFiber ApS",
        "planner": "Egevig Kommune", "admin": "Egevig Kommune"}  # fmt: skip
# Examples per operation and generation mode. The OGC API reads no token, so each role
# repeats it at a smaller size there; the domain API is where roles differ.
API_EXAMPLES = scale(2, 4)
OGC_EXAMPLES = scale(1, 2)
COSTLY_EXAMPLES = scale(1, 2)  # routing a day, siting stations: seconds per call
WASTE_TABLES = ("waste_readings", "waste_collections", "waste_routes", "waste_route_stops")
CENTRE = box(722_125, 6_172_113, 722_225, 6_172_213)  # town centre, networks of six owners
TOWN_LONLAT = (12.532, 55.6445)


@pytest.fixture(scope="module")
def contract_town(settings, database: Database, town_dir: Path) -> Iterator[Database]:
    """The sample town with the waste bins and readings; reset again when the module ends."""
    _clean(database)
    load_town(database, town_dir)
    waste = town_dir / "waste"
    files = ("bins.gpkg", "fleet.csv", "sensor_readings.csv", "collections.csv")
    ingest(database, "waste", [waste / n for n in files], IngestOptions(show_progress=False))
    rules = _rules(database)
    started = time.time()
    yield database
    _clean(database)
    _restore_rules(database, rules)
    with connect(database.dsn("owner")) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.jobs WHERE created >= to_timestamp(%s)", (started,))
    conn.close()


def _clean(database: Database) -> None:
    """Empty the dig tables, drop the networks and the waste tables this run may write."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=True)
        with conn.cursor() as cur:
            for table in WASTE_TABLES:
                cur.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("data", table))
                )
                cur.execute("DELETE FROM geoby.layers WHERE id = %s", (table,))
            cur.execute("TRUNCATE geoby.waste_alerts, geoby.waste_rejects")
    finally:
        conn.close()


def _rules(database: Database) -> list[Any]:
    """The precaution rules as loaded (an admin's DELETE may remove a default one)."""
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_jsonb(r) FROM geoby.precaution_rules AS r ORDER BY id")
        return [psycopg2.extras.Json(row[0]) for row in cur.fetchall()]


def _restore_rules(database: Database, rules: list[Any]) -> None:
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM geoby.precaution_rules")
            for rule in rules:
                cur.execute(
                    "INSERT INTO geoby.precaution_rules SELECT * FROM"
                    " jsonb_populate_record(NULL::geoby.precaution_rules, %s)",
                    (rule,),
                )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def app(settings, contract_town: Database) -> Iterator[Any]:
    """The whole application; schemathesis runs its lifespan once, stopped at the end."""
    quiet = logging.getLogger("api")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # 4xx by the thousand
    try:
        application = create_app(settings)
        yield application
        asgi.shutdown_lifespans()
    finally:
        quiet.setLevel(level)  # later modules read these logs


@pytest.fixture(scope="module")
def tokens(contract_town: Database) -> dict[str, dict[str, str]]:
    """Bearer headers by role (none for anonymous)."""
    found: dict[str, dict[str, str]] = {"anonymous": {}}
    with contract_town.connection("admin") as conn:
        for role, org in ORGS.items():
            ensure_organisation(conn, org)
            found[role] = {"Authorization": f"Bearer {add_user(conn, org=org, role=role)[1]}"}
    return found


@pytest.fixture(scope="module")
def schemas(app: Any) -> dict[str, BaseSchema]:
    """The two documents as served; a document schemathesis cannot load fails here."""
    return {
        "api": schemathesis.openapi.from_asgi("/api/openapi.json", app),
        "ogc": schemathesis.openapi.from_asgi("/ogc/openapi?f=json", app),
    }


@pytest.fixture(scope="module")
def known(app: Any, contract_town: Database, tokens: dict) -> dict[str, list[Any]]:
    """Path-parameter values naming objects that exist, by parameter (or collection) name."""
    start = date.today() + timedelta(days=1)
    body = {"geometry": mapping(reproject(CENTRE, 25832, 0)), "kind": "normal",
            "start_date": start.isoformat(), "end_date": (start + timedelta(days=10)).isoformat(),
            "work_types": ["machine_excavation"], "depth_m": 1.2,
            "description": "Contract test",
            "contact": {"name": "Site lead", "phone": "+45 12 34 56 78"}}  # fmt: skip
    with asgi.get_client(app) as client:
        filed = client.post("/api/dig-requests", json=body, headers=tokens["contractor"])
        assert filed.status_code == 201, filed.text
        collections = client.get("/ogc/collections?f=json").json()["collections"]
        features = {}
        for collection in collections:
            page = client.get(f"/ogc/collections/{collection['id']}/items?f=json&limit=2")
            if page.status_code == 200:
                features[collection["id"]] = [f["id"] for f in page.json().get("features", [])]
    with contract_town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT bin_id FROM data.waste_bins ORDER BY bin_id LIMIT 3")
        bins = [row[0] for row in cur.fetchall()]
    tile = morecantile.tms.get("WebMercatorQuad").tile(*TOWN_LONLAT, 14)
    return {"request_id": [filed.json()["id"]], "bin_id": bins, "layer_id": ["terrain_dtm"],
            "z": [tile.z], "x": [tile.x], "y": [tile.y], "tileMatrixSetId": ["WebMercatorQuad"],
            "tileMatrix": [str(tile.z)], "tileRow": [tile.y], "tileCol": [tile.x],
            "features": features}  # fmt: skip


def _cap_seconds(case: Case) -> Case:
    if isinstance(case.body, dict) and isinstance(case.body.get("seconds"), int | float):
        case.body["seconds"] = min(case.body["seconds"], 0.2)
    return case


def _cap_proposal(case: Case) -> Case:
    if isinstance(case.body, dict):
        if isinstance(case.body.get("budget"), int):
            case.body["budget"] = min(case.body["budget"], 3)
        if isinstance(case.body.get("spacing_m"), int | float):
            case.body["spacing_m"] = max(case.body["spacing_m"], 200.0)
    return case


def _planner(known: dict[str, Any]):  # noqa: ANN202 - Callable[[APIOperation], Plan]
    """How each operation is fuzzed (see the module docstring for every exception)."""
    negative_only = (GenerationMode.NEGATIVE,)

    def plan(operation: APIOperation) -> Plan:
        path, method = operation.path, operation.method.upper()
        if method == "POST" and (path == "/api/flood/scenarios" or "/processes/flood-" in path):
            return Plan(modes=negative_only)
        if path == "/api/waste/routes" and method == "POST":
            # One valid day costs ~15 s here: make test sends only invalid ones.
            modes = scale(negative_only, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
            return Plan(modes=modes, tame=_cap_seconds, examples=COSTLY_EXAMPLES)
        if path == "/api/waste/coverage/proposals":
            return Plan(tame=_cap_proposal, examples=COSTLY_EXAMPLES)
        values = {k: v for k, v in known.items() if k != "features"}
        if path.endswith("/items/{featureId}"):
            collection = path.split("/")[2]
            values["featureId"] = known["features"].get(collection, [])
        return Plan(known=values)

    return plan


@pytest.mark.parametrize(
    "role",
    [r if r == "anonymous" else pytest.param(r, marks=pytest.mark.reliability_full) for r in ROLES],
)
def test_openapi_contract(
    role: str, schemas: dict[str, BaseSchema], tokens: dict, known: dict
) -> None:
    """Every operation of both documents, fuzzed with ``role``'s token: no 5xx, no
    undocumented status or content type, no schema violation, no leak."""
    tally = Tally()
    plan = _planner(known)
    headers = tokens[role]
    api_ops, ogc_ops = operations(schemas["api"]), operations(schemas["ogc"])
    run_operations(api_ops, headers=headers, max_examples=API_EXAMPLES, plan=plan, tally=tally)
    run_operations(ogc_ops, headers=headers, max_examples=OGC_EXAMPLES, plan=plan, tally=tally)
    record("hostile_input", f"openapi_{role}", cases=tally.cases, failures=tally.failed_cases,
           operations=tally.operations, failed_operations=sorted(tally.failed_operations),
           statuses={str(k): v for k, v in sorted(tally.statuses.items())},
           slowest={k: round(v, 1) for k, v in tally.seconds.most_common(5)})  # fmt: skip
    assert tally.operations == len(api_ops) + len(ogc_ops)
    assert tally.statuses[200] + tally.statuses[201] > 0, "no request succeeded"
    assert tally.failed_cases == 0, (
        f"{tally.failed_cases} of {tally.cases} requests failed on "
        f"{len(tally.failed_operations)} operations:\n\n{tally.report()}"
    )
