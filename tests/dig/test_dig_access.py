"""Access: every role tries every endpoint and record it should not reach, and gets nothing."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg2.errors
import pytest
from shapely.geometry import box, mapping

from layers.crs import reproject
from layers.errors import DatabaseError
from tests.dig.conftest import bearer

AREA_A = box(722_125, 6_172_113, 722_225, 6_172_213)  # the centre: six owners
AREA_B = box(721_300, 6_171_300, 721_340, 6_171_340)  # elsewhere in town
CONCERNED = "NordFiber ApS"
NOT_CONCERNED = "Enexis B.V."  # a KLIC owner in the Netherlands


def _body(area) -> dict:
    start = date.today() + timedelta(days=2)
    return {
        "geometry": mapping(reproject(area, 25832, 0)),
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=5)).isoformat(),
        "work_types": ["machine_excavation", "directional_drilling"],
        "contact": {"name": "Foreman", "email": "foreman@example.dk"},
    }


@pytest.fixture(scope="module")
def world(client, make_user):
    """Two contractors' requests and a token per role."""
    tokens = {
        "contractor_a": make_user("Entreprenør A A/S", "contractor")[1],
        "contractor_b": make_user("Entreprenør B A/S", "contractor")[1],
        "owner_concerned": make_user(CONCERNED, "utility")[1],
        "owner_other": make_user(NOT_CONCERNED, "utility")[1],
        "planner": make_user("Egevig Kommune, Plan", "planner")[1],
        "admin": make_user("Egevig Kommune, IT", "admin")[1],
    }
    a = client.post("/api/dig-requests", json=_body(AREA_A),
                    headers=bearer(tokens["contractor_a"]))  # fmt: skip
    b = client.post("/api/dig-requests", json=_body(AREA_B),
                    headers=bearer(tokens["contractor_b"]))  # fmt: skip
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    assert CONCERNED in {o["owner"] for o in a.json()["owners"]}
    answer = client.get(f"/api/dig-requests/{a.json()['id']}/answer",
                        headers=bearer(tokens["admin"])).json()  # fmt: skip
    secrets = {f["properties"]["asset_id"] for f in answer["features"]}
    assert len(secrets) > 10
    return {"tokens": tokens, "a": a.json(), "b": b.json(), "secrets": secrets, "answer": answer}


def _call(client, method: str, path: str, token: str | None, body: dict | None = None):
    headers = bearer(token) if token else {}
    return client.request(method, path, headers=headers, json=body)


# (who, method, path template, body, expected status); {a} is contractor A's request.
MATRIX = [
    (None, "GET", "/api/dig-requests/{a}", None, 401),
    (None, "GET", "/api/dig-requests/{a}/answer", None, 401),
    (None, "GET", "/api/dig-requests", None, 401),
    (None, "GET", "/api/audit", None, 401),
    (None, "GET", "/api/interest-areas", None, 401),
    ("contractor_b", "GET", "/api/dig-requests/{a}", None, 404),
    ("contractor_b", "GET", "/api/dig-requests/{a}/answer", None, 404),
    ("contractor_b", "GET", "/api/dig-requests/{a}/answer?f=gml", None, 404),
    ("contractor_b", "GET", "/api/dig-requests/{a}/answer?f=pdf", None, 404),
    ("contractor_b", "POST", "/api/dig-requests/{a}/cancel", None, 404),
    ("contractor_b", "POST", "/api/dig-requests/{a}/renew", {}, 404),
    (
        "contractor_b",
        "POST",
        "/api/dig-requests/{a}/damages",
        {"description": "x", "occurred_at": "2026-12-01T10:00:00"},
        404,
    ),
    ("contractor_a", "POST", "/api/dig-requests/{a}/owner-response", {"remarks": "x"}, 403),
    ("contractor_a", "POST", "/api/dig-requests/{a}/marking", {"done": True}, 403),
    ("contractor_a", "GET", "/api/interest-areas", None, 403),
    (
        "contractor_a",
        "PUT",
        "/api/interest-areas",
        {"type": "FeatureCollection", "features": []},
        403,
    ),
    ("contractor_a", "GET", "/api/audit", None, 403),
    (
        "contractor_a",
        "POST",
        "/api/precaution-rules",
        {"action": "stop", "text": "x", "max_distance_m": 1},
        403,
    ),
    ("owner_other", "GET", "/api/dig-requests/{a}", None, 404),
    ("owner_other", "GET", "/api/dig-requests/{a}/answer", None, 404),
    ("owner_other", "POST", "/api/dig-requests/{a}/owner-response", {"remarks": "x"}, 404),
    ("owner_concerned", "GET", "/api/dig-requests/{a}/answer?owner=Kystnet El A/S", None, 403),
    ("owner_concerned", "POST", "/api/dig-requests/{a}/cancel", None, 403),
    ("owner_concerned", "POST", "/api/dig-requests/{a}/renew", {}, 403),
    ("owner_concerned", "GET", "/api/interest-areas?owner=Kystnet El A/S", None, 403),
    ("owner_concerned", "GET", "/api/audit", None, 403),
    ("planner", "GET", "/api/dig-requests/{a}/answer", None, 403),
    ("planner", "GET", "/api/dig-requests/{a}/answer?f=pdf", None, 403),
    ("planner", "POST", "/api/dig-requests/{a}/cancel", None, 403),
    (
        "planner",
        "POST",
        "/api/dig-requests/{a}/damages",
        {"description": "x", "occurred_at": "2026-12-01T10:00:00"},
        403,
    ),
    ("planner", "GET", "/api/interest-areas", None, 403),
    ("planner", "GET", "/api/audit", None, 403),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "expected"), MATRIX)
def test_forbidden_paths_disclose_nothing(client, world, who, method, path, body, expected):
    token = world["tokens"][who] if who else None
    response = _call(client, method, path.format(a=world["a"]["id"]), token, body)
    assert response.status_code == expected, response.text
    assert not any(secret in response.text for secret in world["secrets"])
    assert world["a"]["reference"] not in response.text


def test_lists_show_each_role_only_its_requests(client, world):
    a, b = world["a"]["reference"], world["b"]["reference"]

    def refs(who):
        listing = client.get("/api/dig-requests", headers=bearer(world["tokens"][who]))
        assert listing.status_code == 200
        return {r["reference"] for r in listing.json()["requests"]}

    assert a in refs("contractor_a") and b not in refs("contractor_a")
    assert b in refs("contractor_b") and a not in refs("contractor_b")
    assert a in refs("owner_concerned") and b not in refs("owner_concerned")
    assert a not in refs("owner_other")
    assert {a, b} <= refs("planner") and {a, b} <= refs("admin")


def test_owner_sees_only_its_own_assets_and_state(client, world):
    token = world["tokens"]["owner_concerned"]
    detail = client.get(f"/api/dig-requests/{world['a']['id']}", headers=bearer(token)).json()
    assert [o["owner"] for o in detail["owners"]] == [CONCERNED]
    answer = client.get(f"/api/dig-requests/{world['a']['id']}/answer", headers=bearer(token))
    assert answer.status_code == 200
    owners = {f["properties"]["owner"] for f in answer.json()["features"]}
    assert owners == {CONCERNED}
    others = {f["properties"]["asset_id"] for f in world["answer"]["features"]
              if f["properties"]["owner"] != CONCERNED}  # fmt: skip
    assert others and not any(secret in answer.text for secret in others)
    areas = client.get("/api/interest-areas", headers=bearer(token)).json()
    assert areas["features"] and {f["properties"]["owner"] for f in areas["features"]} == {
        CONCERNED
    }


def test_planner_sees_requests_but_no_asset_detail(client, world):
    detail = client.get(f"/api/dig-requests/{world['a']['id']}",
                        headers=bearer(world["tokens"]["planner"]))  # fmt: skip
    assert detail.status_code == 200
    assert "links" not in detail.json() and "ready_to_dig" not in detail.json()
    assert not any(secret in detail.text for secret in world["secrets"])


def test_expired_answer_is_gone_for_the_contractor_only(client, world, owner_conn):
    request_id = world["a"]["id"]
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE geoby.dig_requests SET valid_until = now() - interval '1 minute'"
                    " WHERE id = %s", (request_id,))  # fmt: skip
    try:
        expired = client.get(f"/api/dig-requests/{request_id}/answer",
                             headers=bearer(world["tokens"]["contractor_a"]))  # fmt: skip
        assert expired.status_code == 410 and "expired" in expired.json()["detail"]
        assert not any(secret in expired.text for secret in world["secrets"])
        detail = client.get(f"/api/dig-requests/{request_id}",
                            headers=bearer(world["tokens"]["contractor_a"]))  # fmt: skip
        assert detail.json()["status"] == "expired"
        admin = client.get(f"/api/dig-requests/{request_id}/answer",
                           headers=bearer(world["tokens"]["admin"]))  # fmt: skip
        assert admin.status_code == 200
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("UPDATE geoby.dig_requests SET valid_until = now() + interval '10 days'"
                        " WHERE id = %s", (request_id,))  # fmt: skip


def _denied(raised: pytest.ExceptionInfo) -> bool:
    return isinstance(raised.value.__cause__, psycopg2.errors.InsufficientPrivilege)


def test_audit_log_cannot_be_edited_by_the_application_role(town):
    for statement in ("UPDATE geoby.audit_log SET action = 'nothing happened'",
                      "DELETE FROM geoby.audit_log", "TRUNCATE geoby.audit_log"):  # fmt: skip
        with pytest.raises(DatabaseError) as raised, town.connection("admin") as conn:
            with conn.cursor() as cur:
                cur.execute(statement)
        assert _denied(raised), statement


def test_public_role_cannot_read_dig_tables_or_restricted_data(town):
    with town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM data.planned_works")
        assert cur.fetchone()[0] >= 2
    for table in ("geoby.dig_requests", "geoby.tokens", "geoby.audit_log", "geoby.outbox",
                  "restricted.dig_conflicts", "restricted.utilities_lines"):  # fmt: skip
        with pytest.raises(DatabaseError) as raised, town.connection("read") as conn:
            with conn.cursor() as cur:
                cur.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - fixed names
        assert _denied(raised), table
