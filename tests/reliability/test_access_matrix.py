"""Access matrix: every role x every endpoint that can disclose a restricted record x every record.

tests/dig/test_dig_access.py checks chosen forbidden paths (status codes) and the
lists; this module instead enumerates, for seven callers (anonymous, two
contractors, two utilities, a planner, an admin), every endpoint of the REST API,
the OGC API, the catalog, the tiles and the jobs that could carry a restricted
record, and for every restricted record the platform holds (dig requests, asset
detail per request and owner, whole networks, flood exposure of buried assets,
interest areas, owners' remarks, audit entries, users, token prefixes, waste
rejects) compares what the response actually discloses with what the rule table
(:func:`entitled`, written from DESIGN.md and dig_coordination.service) says the
caller is entitled to. Visible means a 200 carrying the record; not entitled
means 401/403/404/410 or the record absent.

Every dig answer served is checked against the audit log: one ``answer.disclosed``
row per 200 (caller, format, and the owners whose assets it carried), none for a
refusal.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import morecantile
import numpy as np
import pytest
import shapely
from affine import Affine
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from api import account
from api.app import create_app
from flood.exposure import assets_layer_id, exposure, store_exposure
from layers.crs import reproject
from layers.database import Database, connect
from tests.db_helpers import drop_layers
from tests.dig.conftest import bearer, make_user, town  # noqa: F401 - fixtures
from tests.reliability.record import record, scale

# make test runs the quick subset; this file runs in make reliability.
pytestmark = pytest.mark.reliability_full

AREA_A = box(722_125, 6_172_113, 722_225, 6_172_213)  # the town centre: six owners
U1, U2 = "NordFiber ApS", "Kystnet El A/S"
ROLES = ("anonymous", "contractor_a", "contractor_b", "utility_1", "utility_2", "planner", "admin")
FILER = {"A": "contractor_a", "B": "contractor_b"}
OWNER_ROLE = {"U1": "utility_1", "U2": "utility_2"}
ORG = {"U1": U1, "U2": U2}
EXPOSURE = "flood_exposure_h4matrix"
BINARY = ("pdf", "png")
TMS = morecantile.tms.get("WebMercatorQuad")


# -- the rule table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One call: ``kind`` says which rule applies; ``request``/``owner``/``fmt`` refine it."""

    name: str
    path: str
    kind: str  # list, get, answer, interest, audit, rejects, me, open
    request: str | None = None
    owner: str | None = None  # U1/U2 for ?owner=
    fmt: str | None = None


def _may_answer(role: str, ep: Endpoint) -> bool:
    """Who gets the answer of ``ep.request`` (with ``?owner=`` as given)."""
    if role == "admin" or role == FILER[ep.request]:
        return True
    own = next((u for u, r in OWNER_ROLE.items() if r == role), None)
    return own is not None and ep.owner in (None, own)  # both utilities are concerned


def _sees_request(role: str, request: str) -> bool:
    return role in ("planner", "admin", *OWNER_ROLE.values()) or role == FILER[request]


def entitled(role: str, ep: Endpoint, rec: tuple[str, ...]) -> bool:
    """The rule table: may ``role`` see record ``rec`` through endpoint ``ep``?

    ==================  ==================================================================
    record              entitled
    ==================  ==================================================================
    request R           filer of R, owners concerned, planner, admin: list, get R, answer
                        of R (where the answer is allowed); admin: audit log
    assets of R, U      answer of R: R's filer, utility U, admin (``?owner=`` narrows it)
    network U, exposure nobody, by any API (restricted layers are never published)
    interest areas U    utility U and admin: /api/interest-areas (``?owner=`` narrows)
    remarks of U on R   whoever sees U's state on R: filer, U, planner, admin (list, get,
                        text answers); admin: audit log
    audit entry         admin: /api/audit
    user X              X: /api/me; admin: /api/audit (X acted)
    token prefix of X   X: /api/me
    waste reject        admin: /api/waste/rejects
    ==================  ==================================================================
    """
    if role == "anonymous":
        return False
    kind = rec[0]
    if kind == "request":
        r = rec[1]
        if ep.kind == "list":
            return _sees_request(role, r)
        if ep.kind == "get":
            return ep.request == r and _sees_request(role, r)
        if ep.kind == "answer":
            return ep.request == r and _may_answer(role, ep)
        return ep.kind == "audit" and role == "admin"
    if kind == "assets":
        r, u = rec[1], rec[2]
        if ep.kind != "answer" or ep.request != r or not _may_answer(role, ep):
            return False
        if role in OWNER_ROLE.values():
            return role == OWNER_ROLE[u]
        return ep.owner in (None, u)
    if kind in ("network", "exposure"):
        return False
    if kind == "interest":
        u = rec[1]
        if ep.kind != "interest" or ep.owner not in (None, u):
            return False
        return role == "admin" or (role == OWNER_ROLE[u] and ep.owner in (None, u))
    if kind == "remarks":
        r, u = rec[1], rec[2]
        shown = role not in OWNER_ROLE.values() or role == OWNER_ROLE[u]
        if ep.kind in ("list", "get"):
            return (ep.kind == "list" or ep.request == r) and _sees_request(role, r) and shown
        if ep.kind == "answer":
            return ep.request == r and _may_answer(role, ep) and ep.owner in (None, u) and shown
        return ep.kind == "audit" and role == "admin"
    if kind == "audit":
        return ep.kind == "audit" and role == "admin"
    if kind == "user":
        return (ep.kind == "me" and role == rec[1]) or (ep.kind == "audit" and role == "admin")
    if kind == "token":
        return ep.kind == "me" and role == rec[1]
    if kind == "reject":
        return ep.kind == "rejects" and role == "admin"
    raise AssertionError(f"no rule for record {rec}")


# -- the world ---------------------------------------------------------------------------


def _body(area, start_in_days: int) -> dict:
    start = date.today() + timedelta(days=start_in_days)
    return {
        "geometry": mapping(reproject(area, 25832, 0)),
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=4)).isoformat(),
        "work_types": ["machine_excavation", "directional_drilling"],
        "contact": {"name": "Foreman", "email": "foreman@example.dk"},
    }


def _spot(cur, away_from: list, distance: float) -> shapely.Point:
    """A point where U1's and U2's lines run within 10 m, ``distance`` from the given areas."""
    cur.execute(
        "SELECT ST_AsBinary(ST_ClosestPoint(a.geom, b.geom)) FROM restricted.utilities_lines a"
        " JOIN restricted.utilities_lines b ON ST_DWithin(a.geom, b.geom, 10)"
        " WHERE a.owner = %s AND b.owner = %s AND NOT ST_DWithin(a.geom,"
        " ST_GeomFromText(%s, 25832), %s) ORDER BY a.fid, b.fid LIMIT 1",
        (U1, U2, shapely.union_all(away_from).wkt, distance),
    )
    row = cur.fetchone()
    assert row is not None, "the sample town has no spot where both utilities' lines meet"
    return shapely.from_wkb(bytes(row[0]))


def _asset_ids(cur, area, owner: str) -> set[str]:
    cur.execute(
        "SELECT asset_id FROM (SELECT asset_id, owner, geom FROM restricted.utilities_lines"
        " UNION ALL SELECT asset_id, owner, geom FROM restricted.utilities_points"
        " UNION ALL SELECT asset_id, owner, geom FROM restricted.utilities_areas) a"
        " WHERE owner = %s AND asset_id IS NOT NULL"
        " AND (%s::text IS NULL OR ST_Intersects(geom, ST_GeomFromText(%s, 25832)))",
        (owner, area.wkt if area is not None else None, area.wkt if area is not None else None),
    )
    return {row[0] for row in cur.fetchall()}


def _store_exposure(database: Database, centre: shapely.Point) -> tuple[str, set[str]]:
    """A flood exposure of buried assets over 80 x 80 m around ``centre`` (restricted layer)."""
    depth = np.full((80, 80), 0.6)
    transform = Affine(1.0, 0, centre.x - 40, 0, -1.0, centre.y + 40)
    result = exposure(database, depth, transform, classes=("assets",))
    assert len(result.assets), "no buried asset under the synthetic flood"
    store_exposure(database, result, EXPOSURE, "H4 access matrix exposure")
    return assets_layer_id(EXPOSURE), {str(i) for i in result.assets["id"] if i}


@pytest.fixture(scope="module")
def app(settings, town):  # noqa: F811 - town is the imported fixture
    """The whole application, with the account routes (added here if api.app lacks them)."""
    application = create_app(settings)
    if not any(getattr(r, "path", "") == "/api/me" for r in application.routes):
        application.include_router(account.router)
    return application


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def world(client, make_user, town, settings):  # noqa: F811
    """Orgs, users, two requests hitting both utilities, an exposure, an owner's remark."""
    tag = uuid.uuid4().hex[:6]
    people = {
        "contractor_a": make_user("Graveservice A ApS", "contractor", name=f"h4-ctr-a-{tag}"),
        "contractor_b": make_user("Kabelgrav B A/S", "contractor", name=f"h4-ctr-b-{tag}"),
        "utility_1": make_user(U1, "utility", name=f"h4-util-1-{tag}"),
        "utility_2": make_user(U2, "utility", name=f"h4-util-2-{tag}"),
        "planner": make_user("Egevig Kommune, Plan", "planner", name=f"h4-plan-{tag}"),
        "admin": make_user("Egevig Kommune, IT", "admin", name=f"h4-admin-{tag}"),
    }
    tokens = {role: token for role, (_, token) in people.items()}
    owner = connect(town.dsn("owner"))
    owner.autocommit = True
    try:
        with owner.cursor() as cur:
            spot_b = _spot(cur, [AREA_A], 400)
            area_b = spot_b.buffer(25, cap_style="square")
            spot_c = _spot(cur, [AREA_A, area_b], 400)
            network = {u: _asset_ids(cur, None, ORG[u]) for u in ORG}
            reject = f"h4-reject-{tag}"
            cur.execute(
                "INSERT INTO geoby.waste_rejects (channel, topic, payload, reason)"
                " VALUES ('http', 'h4', %s, 'access matrix marker')",
                (reject,),
            )
        # B starts after A ends, so the two are not coordinated (no cross-links).
        filed = {}
        for r, area, start in (("A", AREA_A, 2), ("B", area_b, 10)):
            response = client.post("/api/dig-requests", json=_body(area, start),
                                   headers=bearer(tokens[FILER[r]]))  # fmt: skip
            assert response.status_code == 201, response.text
            filed[r] = response.json()
        assets: dict[tuple[str, str], set[str]] = {}
        for r in filed:
            answer = client.get(f"/api/dig-requests/{filed[r]['id']}/answer",
                                headers=bearer(tokens["admin"]))  # fmt: skip
            assert answer.status_code == 200
            for u in ORG:
                assets[r, u] = {f["properties"]["asset_id"] for f in answer.json()["features"]
                                if f["properties"]["owner"] == ORG[u]
                                and f["properties"]["asset_id"]}  # fmt: skip
                assert assets[r, u], f"request {r} hits no asset of {ORG[u]}"
        remark = f"h4-remark-{tag}"
        response = client.post(f"/api/dig-requests/{filed['A']['id']}/owner-response",
                               json={"remarks": remark}, headers=bearer(tokens["utility_1"]))  # fmt: skip
        assert response.status_code == 200, response.text
        exposure_id, exposed = _store_exposure(town, spot_c)
        answered = set().union(*assets.values())
        exposed -= answered
        network = {u: ids - answered - exposed for u, ids in network.items()}
        with owner.cursor() as cur:
            cur.execute(
                "SELECT a.id, a.action, a.object_id FROM geoby.audit_log a"
                " WHERE a.action = 'dig_request.filed' AND a.object_id = ANY(%s)",
                ([filed["A"]["id"], filed["B"]["id"]],),
            )
            filed_entries = {
                ("A" if oid == filed["A"]["id"] else "B"): aid for aid, _, oid in cur.fetchall()
            }
            cur.execute(
                "SELECT area_id, owner FROM restricted.utilities_interest_areas"
                " WHERE owner = ANY(%s) AND area_id IS NOT NULL",
                ([U1, U2],),
            )
            interest: dict[str, set[str]] = {"U1": set(), "U2": set()}
            for area_id, org in cur.fetchall():
                interest["U1" if org == U1 else "U2"].add(str(area_id))
        assert interest["U1"] and interest["U2"] and exposed and all(network.values())
        job = _dig_check_job(client, AREA_A)
        yield {"tokens": tokens, "people": people, "filed": filed, "assets": assets,
               "network": network, "exposed": exposed, "exposure_id": exposure_id,
               "remark": remark, "reject": reject, "audit": filed_entries,
               "interest": interest, "job": job, "area_b": area_b}  # fmt: skip
    finally:
        # leave the shared test database as other modules expect it (no extra layers)
        drop_layers(owner, [EXPOSURE])
        drop_layers(owner, [assets_layer_id(EXPOSURE)], schema="restricted")
        with owner.cursor() as cur:
            cur.execute("DELETE FROM geoby.waste_rejects WHERE topic = 'h4'")
        owner.close()


def _dig_check_job(client: TestClient, area) -> str:
    """An asynchronous dig-check job (anonymous), run to completion; returns its id."""
    response = client.post(
        "/ogc/processes/dig-check/execution",
        json={"inputs": {"geometry": mapping(reproject(area, 25832, 0))}},
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code in (200, 201), response.text
    job_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/ogc/jobs/{job_id}?f=json").json().get("status")
        if status in ("successful", "failed"):
            assert status == "successful"
            return job_id
        threading.Event().wait(0.2)
    raise AssertionError(f"dig-check job {job_id} did not finish")


# -- endpoints and records ---------------------------------------------------------------


def _tile(area, z: int) -> tuple[int, int, int]:
    centre = reproject(area.centroid, 25832, 0)
    t = TMS.tile(centre.x, centre.y, z)
    return t.z, t.x, t.y


def endpoints(world: dict) -> list[Endpoint]:
    """Every endpoint that could disclose a restricted record."""
    ids = {r: world["filed"][r]["id"] for r in world["filed"]}
    eps = [Endpoint("list", "/api/dig-requests?limit=1000", "list")]
    formats = scale(("geojson", "gml", "pdf"), ("geojson", "gml", "pdf", "png"))
    for r, rid in ids.items():
        eps.append(Endpoint(f"get {r}", f"/api/dig-requests/{rid}", "get", request=r))
        for f in formats if r == "A" else scale(("geojson", "gml"), formats):
            eps.append(Endpoint(f"answer {r} {f}", f"/api/dig-requests/{rid}/answer?f={f}",
                                "answer", request=r, fmt=f))  # fmt: skip
    for u in ORG:
        eps.append(Endpoint(f"answer A owner={u}", f"/api/dig-requests/{ids['A']}/answer"
                            f"?owner={ORG[u]}", "answer", request="A", owner=u, fmt="geojson"))  # fmt: skip
    eps += [
        Endpoint("interest", "/api/interest-areas", "interest"),
        Endpoint("interest owner=U2", f"/api/interest-areas?owner={U2}", "interest", owner="U2"),
        Endpoint("audit", "/api/audit?limit=10000", "audit"),
        Endpoint("waste rejects", "/api/waste/rejects?limit=1000", "rejects"),
        Endpoint("me", "/api/me", "me"),
        Endpoint("layers", "/api/layers", "open"),
        Endpoint("ogc collections", "/ogc/collections?f=json", "open"),
        Endpoint("records", "/ogc/collections/catalog/items?f=json&limit=1000", "open"),
        Endpoint("records q", "/ogc/collections/catalog/items?f=json&q=utilities", "open"),
        Endpoint("jobs", "/ogc/jobs?f=json", "open"),
        Endpoint("dig-check result", f"/ogc/jobs/{world['job']}/results?f=json", "open"),
        Endpoint("flood scenarios", "/api/flood/scenarios", "open"),
        Endpoint(
            "exposure open items", f"/ogc/collections/{EXPOSURE}/items?f=json&limit=1000", "open"
        ),  # fmt: skip
    ]
    z, x, y = _tile(AREA_A, 16)
    for layer in ("utilities_lines", "utilities_points", "utilities_interest_areas",
                  world["exposure_id"]):  # fmt: skip
        eps += [
            Endpoint(f"ogc {layer} collection", f"/ogc/collections/{layer}?f=json", "open"),
            Endpoint(
                f"ogc {layer} items", f"/ogc/collections/{layer}/items?f=json&limit=1000", "open"
            ),  # fmt: skip
            Endpoint(f"ogc {layer} item 1", f"/ogc/collections/{layer}/items/1?f=json", "open"),
            Endpoint(
                f"ogc {layer} tile",
                f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}",
                "open",
            ),  # fmt: skip
            Endpoint(f"raster tile {layer}", f"/api/raster-tiles/{layer}/{z}/{x}/{y}.png", "open"),
        ]
    return eps


def records(world: dict) -> dict[tuple[str, ...], list[str]]:
    """Each restricted record and the strings that betray it (empty: judged structurally)."""
    recs: dict[tuple[str, ...], list[str]] = {}
    for r, doc in world["filed"].items():
        recs["request", r] = [doc["reference"]]
        for u in ORG:
            recs["assets", r, u] = sorted(world["assets"][r, u])
    for u in ORG:
        recs["network", u] = sorted(world["network"][u])[:200]
        recs["interest", u] = sorted(world["interest"][u])
    recs["exposure",] = sorted(world["exposed"])
    recs["remarks", "A", "U1"] = [world["remark"]]
    for r in world["audit"]:
        recs["audit", f"filed {r}"] = []
    for role in ("contractor_a", "contractor_b", "utility_1"):  # users who acted (audited)
        recs["user", role] = [world["people"][role][0].user_name]
    for role in ROLES[1:]:
        recs["token", role] = [world["tokens"][role][:12]]
    recs["reject",] = [world["reject"]]
    return recs


def _betrays(text: str, markers: list[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(m)}(?![\w-])", text) for m in markers)


# -- the test ----------------------------------------------------------------------------


def _audit_rows_after(db: Database, last: int) -> list[tuple]:
    conn = connect(db.dsn("owner"))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT a.id, a.action, a.object_id, a.detail, u.name FROM geoby.audit_log a"
                " LEFT JOIN geoby.users u ON u.id = a.user_id WHERE a.id > %s ORDER BY a.id",
                (last,),
            )
            return cur.fetchall()
    finally:
        conn.close()


def _last_audit_id(db: Database) -> int:
    conn = connect(db.dsn("owner"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM geoby.audit_log")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_every_role_sees_exactly_what_it_is_entitled_to(client, world, town):  # noqa: F811
    eps, recs = endpoints(world), records(world)
    ids = {r: world["filed"][r]["id"] for r in world["filed"]}
    audit_ids = {("audit", f"filed {r}"): aid for r, aid in world["audit"].items()}
    mismatches: list[str] = []
    cells = audited = 0
    last = _last_audit_id(town)
    for role in ROLES:
        token = world["tokens"].get(role)
        headers = bearer(token) if token else {}
        for ep in eps:
            response = client.get(ep.path, headers=headers)
            status = response.status_code
            if status not in (200, 401, 403, 404, 410):
                mismatches.append(f"{role} {ep.name}: unexpected status {status}")
            rows = _audit_rows_after(town, last) if ep.kind == "answer" else []
            if rows:
                last = rows[-1][0]
            binary = ep.fmt in BINARY
            text = "" if binary or status != 200 else response.text
            doc: Any = response.json() if text and "json" in response.headers.get(
                "content-type", "") else None  # fmt: skip
            disclosed_owners: set[str] = set()
            if ep.kind == "answer":
                audited += 1
                mismatches += _check_audit(role, ep, status, rows, world, ids, disclosed_owners)
            for rec, markers in recs.items():
                if binary and rec[0] not in ("request", "assets"):
                    continue  # a PDF/PNG is judged by its status and its audit entry
                cells += 1
                if rec[0] == "audit":
                    seen = isinstance(doc, dict) and audit_ids[rec] in {
                        e.get("id") for e in doc.get("entries", [])}  # fmt: skip
                elif binary and rec[0] == "request":
                    seen = status == 200 and ep.request == rec[1]
                elif binary:
                    seen = ep.request == rec[1] and ORG[rec[2]] in disclosed_owners
                else:
                    seen = _betrays(text, markers)
                if seen and status != 200:
                    mismatches.append(f"{role} {ep.name}: {rec} in a {status} answer")
                want = entitled(role, ep, rec)
                if seen != want:
                    mismatches.append(f"{role} {ep.name} {rec}: visible={seen}, entitled={want}"
                                      f" (status {status})")  # fmt: skip
    figures = {"roles": len(ROLES), "endpoints": len(eps), "records": len(recs),
               "answers_audit_checked": audited}  # fmt: skip
    record("access", "matrix", cases=cells, failures=len(mismatches), **figures)
    assert not mismatches, "\n".join(mismatches[:40])
    assert cells > 1000


def _check_audit(
    role: str,
    ep: Endpoint,
    status: int,
    rows: list[tuple],
    world: dict,
    ids: dict[str, str],
    disclosed_owners: set[str],
) -> list[str]:
    """One ``answer.disclosed`` row per 200 (caller, request, format), none for a refusal."""
    disclosed = [r for r in rows if r[1] == "answer.disclosed"]
    if status != 200:
        return [f"{role} {ep.name}: refused ({status}) but audited"] if disclosed else []
    if len(disclosed) != 1:
        return [f"{role} {ep.name}: {len(disclosed)} audit rows for one disclosure"]
    _, _, object_id, detail, user = disclosed[0]
    problems = []
    if object_id != ids[ep.request] or detail.get("format") != ep.fmt:
        problems.append(f"{role} {ep.name}: audited as {object_id} {detail.get('format')}")
    if user != world["people"][role][0].user_name:
        problems.append(f"{role} {ep.name}: audited as user {user}")
    disclosed_owners.update(o for o, n in (detail.get("per_owner") or {}).items() if n)
    return problems


def test_audited_owners_match_what_the_text_answers_carry(client, world, town):  # noqa: F811
    """For each caller allowed an answer, the audit row's owners are those whose assets came."""
    rid = world["filed"]["A"]["id"]
    checked = 0
    for role in ("contractor_a", "utility_1", "utility_2", "admin"):
        last = _last_audit_id(town)
        response = client.get(f"/api/dig-requests/{rid}/answer?f=geojson",
                              headers=bearer(world["tokens"][role]))  # fmt: skip
        assert response.status_code == 200
        carried = {f["properties"]["owner"] for f in response.json()["features"]}
        rows = [r for r in _audit_rows_after(town, last) if r[1] == "answer.disclosed"]
        assert len(rows) == 1
        per_owner = rows[0][3]["per_owner"]
        assert set(per_owner) == carried
        assert sum(per_owner.values()) == len(response.json()["features"])
        checked += 1
    record("access", "answer_audit", cases=checked, failures=0)


def test_dig_check_results_carry_no_asset_detail(client, world):
    """The anonymous OGC job's stored result names owners and counts, never an asset."""
    result = client.get(f"/ogc/jobs/{world['job']}/results?f=json")
    assert result.status_code == 200
    text = json.dumps(result.json())
    assert {U1, U2} <= {o["owner"] for o in result.json()["owners"]}
    secrets = sorted(world["assets"]["A", "U1"] | world["assets"]["A", "U2"])
    assert not _betrays(text, secrets)
    assert "coordinates" not in text


# -- the audit log cannot be edited --------------------------------------------------------


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the app: included routers and the OGC API too."""

    def walk(routes, prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            if included is not None:
                context = getattr(route, "include_context", None)
                yield from walk(included.routes, prefix + (getattr(context, "prefix", "") or ""))
                continue
            inner = getattr(getattr(route, "app", None), "router", None)
            if inner is not None and hasattr(inner, "routes"):  # a mount (the OGC API)
                yield from walk(inner.routes, prefix + route.path)
                continue
            for method in getattr(route, "methods", None) or ():
                yield method, prefix + route.path

    return list(walk(app.routes, ""))


def _fingerprint(db: Database) -> tuple:
    conn = connect(db.dsn("owner"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), md5(coalesce(string_agg(a::text, '|' ORDER BY id), ''))"
                        " FROM geoby.audit_log a")  # fmt: skip
            return cur.fetchone()
    finally:
        conn.close()


def test_the_audit_log_cannot_be_edited_through_any_api(app, client, world, town):  # noqa: F811
    import psycopg2.errors

    from layers.errors import DatabaseError

    routes = _routes(app)
    documented = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops
                  if m.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")}  # fmt: skip
    assert documented <= set(routes), documented - set(routes)  # the walk misses nothing
    writes = [(m, p) for m, p in routes if m not in ("GET", "HEAD", "OPTIONS")]
    assert any("/ogc/" in p for _, p in routes) and len(writes) > 10
    audit_writes = [(m, p) for m, p in writes if "audit" in p.lower()]
    before = _fingerprint(town)
    admin = bearer(world["tokens"]["admin"])
    entry = world["audit"]["A"]
    tried = wrong = 0
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/audit", f"/api/audit/{entry}", f"/api/dig/audit/{entry}"):
            response = client.request(method, path, headers=admin, json={"action": "nothing"})
            tried += 1
            wrong += response.status_code not in (404, 405)
    after = _fingerprint(town)
    denied = 0
    for role in ("admin", "ingest", "read"):
        for statement in ("UPDATE geoby.audit_log SET action = 'nothing happened'",
                          "DELETE FROM geoby.audit_log", "TRUNCATE geoby.audit_log"):  # fmt: skip
            with pytest.raises(DatabaseError) as raised, town.connection(role) as conn:
                with conn.cursor() as cur:
                    cur.execute(statement)
            cause = raised.value.__cause__
            denied += isinstance(cause, psycopg2.errors.InsufficientPrivilege)
            tried += 1
    record("access", "audit_immutable", cases=tried, failures=wrong + (9 - denied)
           + len(audit_writes) + (before != after), routes=len(routes), write_routes=len(writes),
           sql_denied=denied)  # fmt: skip
    assert not audit_writes, audit_writes
    assert wrong == 0 and denied == 9
    assert before == after
