"""Owners who answer by hand, notifications to real receivers, and coordination of digs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from shapely.geometry import box, mapping

from dig_coordination.notify import deliver_due, due_reminders, verify_signature
from dig_coordination.workdays import WorkingCalendar
from layers.crs import reproject
from tests.dig.conftest import bearer
from tests.dig.receivers import SmtpCatcher, WebhookReceiver

GAS_OWNER = "Østkyst Gasdistribution A/S"
SECRET = "gas-webhook-secret-0123456789"


def _gas_area(owner_conn) -> box:
    """A 40 x 40 m square centred on one of the gas owner's pipes."""
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(ST_GeometryN(geom, 1),"
            " 0.5) p FROM restricted.utilities_lines WHERE owner = %s ORDER BY fid LIMIT 1) s",
            (GAS_OWNER,),
        )
        x, y = cur.fetchone()
    return box(x - 20, y - 20, x + 20, y + 20)


def _body(area, start: date | None = None, **fields) -> dict:
    start = start or date.today() + timedelta(days=1)
    return {
        "geometry": mapping(reproject(area, 25832, 0)),
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=7)).isoformat(),
        "work_types": ["machine_excavation"],
        "contact": {"name": "Works manager", "phone": "+45 40 00 00 00"},
    } | fields


@pytest.fixture(scope="module")
def receivers(settings):
    with WebhookReceiver(secret=SECRET) as hooks, SmtpCatcher() as mail:
        yield hooks, mail


@pytest.fixture(scope="module")
def notify_settings(settings, receivers):
    hooks, mail = receivers
    notify = settings.notify.model_copy(update={"smtp_port": mail.port, "backoff_base_s": 1.0})
    return settings.model_copy(update={"notify": notify})


def _deliver_all(town, notify_settings, now=None) -> None:
    while deliver_due(town, notify_settings, now=now).total:
        pass


def test_manual_owner_gets_a_deadline_a_signed_webhook_and_answers(
    client, town, make_user, owner_conn, receivers, notify_settings
):
    hooks, mail = receivers
    _, owner_token = make_user(GAS_OWNER, "utility", webhook_url=hooks.url,
                               webhook_secret=SECRET, email="ler@gas.example",
                               answers_manually=True)  # fmt: skip
    _, contractor = make_user("Rørlæggerne I/S", "contractor", email="kontor@ror.example")
    filed_at = datetime.now(UTC)
    response = client.post("/api/dig-requests", json=_body(_gas_area(owner_conn)),
                           headers=bearer(contractor))  # fmt: skip
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["status"] == "pending" and doc["ready_to_dig"] is False
    gas = next(o for o in doc["owners"] if o["owner"] == GAS_OWNER)
    assert gas["mode"] == "manual" and gas["status"] == "pending"
    expected = WorkingCalendar(town_settings(client).dig).answer_due(filed_at)
    assert abs(datetime.fromisoformat(gas["due_at"]) - expected) < timedelta(seconds=5)

    _deliver_all(town, notify_settings)
    assert hooks.wait_for(1, timeout=10)
    received = [r for r in hooks.requests if r.json()["payload"]["reference"] == doc["reference"]]
    assert [r.json()["event"] for r in received] == ["dig_request.received"]
    hook = received[0]
    assert verify_signature(SECRET, hook.headers["X-Geoby-Timestamp"], hook.body,
                            hook.headers["X-Geoby-Signature"])  # fmt: skip
    assert hook.json()["payload"]["answer"] == "manual"
    assert any(doc["reference"] in m["Subject"] for m in mail.messages)

    # The owner answers, demands on-site marking and books it; the contractor is told.
    base = f"/api/dig-requests/{doc['id']}"
    answered = client.post(base + "/owner-response", headers=bearer(owner_token),
                           json={"remarks": "Pipe at 1.0 m", "marking_required": True})  # fmt: skip
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered"
    state = client.get(base, headers=bearer(contractor)).json()
    assert state["status"] == "answered" and state["ready_to_dig"] is False
    booked = client.post(base + "/marking", headers=bearer(owner_token),
                         json={"booked_for": "2026-12-02T08:00:00"})  # fmt: skip
    assert booked.status_code == 200
    assert client.get(base, headers=bearer(contractor)).json()["ready_to_dig"] is False
    client.post(base + "/marking", headers=bearer(owner_token), json={"done": True})
    client.post(base + "/owner-response", headers=bearer(owner_token),
                json={"precautions_agreed": True})  # fmt: skip
    final = client.get(base, headers=bearer(contractor)).json()
    blocking_elsewhere = any(
        f["properties"]["blocks_ready_to_dig"] and f["properties"]["owner"] != GAS_OWNER
        for f in client.get(base + "/answer", headers=bearer(contractor)).json()["features"]
    )
    assert final["ready_to_dig"] is (not blocking_elsewhere)
    _deliver_all(town, notify_settings)
    events = {m["X-Geoby-Event"] for m in mail.messages if m["To"] == "kontor@ror.example"}
    assert {"dig_request.owner_answered", "dig_request.answered",
            "dig_request.marking_booked", "dig_request.marking_done"} <= events  # fmt: skip
    assert hooks.duplicates() == 0 and mail.duplicates() == 0


def town_settings(client):
    return client.app.state.settings


def test_overdue_owner_is_reminded_once_per_interval(
    client, town, make_user, owner_conn, receivers, notify_settings
):
    hooks, _ = receivers
    _, contractor = make_user("Rørlæggerne I/S", "contractor")
    doc = client.post("/api/dig-requests", json=_body(_gas_area(owner_conn)),
                      headers=bearer(contractor)).json()  # fmt: skip
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE geoby.dig_owner_responses SET due_at = now() - interval '1 minute'"
                    " WHERE request_id = %s", (doc["id"],))  # fmt: skip
    state = client.get(f"/api/dig-requests/{doc['id']}", headers=bearer(contractor)).json()
    assert next(o for o in state["owners"] if o["owner"] == GAS_OWNER)["status"] == "overdue"
    now = datetime.now(UTC)
    assert due_reminders(town, notify_settings, now) >= 1
    assert due_reminders(town, notify_settings, now + timedelta(minutes=10)) == 0
    _deliver_all(town, notify_settings)
    overdue = [r for r in hooks.requests if r.json()["event"] == "dig_request.overdue"
               and r.json()["payload"]["reference"] == doc["reference"]]  # fmt: skip
    assert len(overdue) == 1


def test_overlapping_digs_are_linked_told_and_published_without_assets(
    client, town, make_user, owner_conn, receivers, notify_settings
):
    _, first = make_user("Fiberbyg A/S", "contractor", email="plan@fiberbyg.example")
    _, second = make_user("Vejservice ApS", "contractor", email="drift@vejservice.example")
    area = box(722_600, 6_172_000, 722_660, 6_172_030)
    near = box(722_690, 6_172_000, 722_720, 6_172_030)  # 30 m east
    start = date.today() + timedelta(days=3)
    a = client.post("/api/dig-requests", json=_body(area, start), headers=bearer(first)).json()
    b = client.post("/api/dig-requests", json=_body(near, start + timedelta(days=5)),
                    headers=bearer(second)).json()  # fmt: skip
    assert [link["reference"] for link in b["coordination"]] == [a["reference"]]
    assert b["coordination"][0]["distance_m"] == pytest.approx(30.0)
    again = client.get(f"/api/dig-requests/{a['id']}", headers=bearer(first)).json()
    assert [link["reference"] for link in again["coordination"]] == [b["reference"]]
    later = client.post("/api/dig-requests", json=_body(near, start + timedelta(days=9)),
                        headers=bearer(second)).json()  # after a's period: no link  # fmt: skip
    assert later["coordination"] == []

    _, mail = receivers
    _deliver_all(town, notify_settings)
    told = {m["To"] for m in mail.messages if m["X-Geoby-Event"] == "dig_request.coordination"}
    assert {"plan@fiberbyg.example", "drift@vejservice.example"} <= told

    items = client.get("/ogc/collections/planned_works/items", params={"limit": 1000})
    assert items.status_code == 200, items.text
    published = {f["properties"]["reference"]: f for f in items.json()["features"]}
    assert {a["reference"], b["reference"]} <= set(published)
    props = published[a["reference"]]["properties"]
    assert props["organisation"] == "Fiberbyg A/S" and props["start_date"] == start.isoformat()
    text = json.dumps(items.json())
    for secret in ("owner", "asset", "hazard", "depth", "utility_type"):
        assert secret not in text
    client.post(f"/api/dig-requests/{a['id']}/cancel", headers=bearer(first))
    items = client.get("/ogc/collections/planned_works/items", params={"limit": 1000}).json()
    assert a["reference"] not in {f["properties"]["reference"] for f in items["features"]}


def test_status_reports_the_outbox(client, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE geoby.outbox SET status = 'sent' WHERE status <> 'sent'")
    fine = client.get("/status").json()["components"]["notifications"]
    assert fine["status"] == "ok" and fine["pending"] == 0 and fine["dead"] == 0
    with owner_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO geoby.outbox (idempotency_key, channel, target, event, payload, status,"
            " last_error) VALUES ('status-test', 'email', 'x@example.dk', 'dig_request.received',"
            " '{}', 'dead', '550 no such mailbox') RETURNING id"
        )
        dead_id = cur.fetchone()[0]
    try:
        body = client.get("/status").json()
        assert body["components"]["notifications"]["status"] == "degraded"
        assert body["components"]["notifications"]["dead"] == 1
        assert body["status"] == "degraded"
        assert "550" not in json.dumps(body)  # counts only, no addresses or errors
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM geoby.outbox WHERE id = %s", (dead_id,))


def test_emergency_may_have_started_and_alerts_owners_at_once(
    client, town, make_user, owner_conn, receivers, notify_settings
):
    hooks, _ = receivers
    make_user(GAS_OWNER, "utility", webhook_url=hooks.url, webhook_secret=SECRET,
              answers_manually=True)  # fmt: skip
    _, contractor = make_user("Akutservice A/S", "contractor")
    yesterday = date.today() - timedelta(days=1)
    normal = client.post("/api/dig-requests", json=_body(_gas_area(owner_conn), yesterday),
                         headers=bearer(contractor))  # fmt: skip
    assert normal.status_code == 400 and "past" in normal.json()["detail"]
    doc = client.post("/api/dig-requests", json=_body(_gas_area(owner_conn), yesterday,
                                                       kind="emergency"),
                      headers=bearer(contractor)).json()  # fmt: skip
    assert doc["kind"] == "emergency"
    _deliver_all(town, notify_settings)
    alerts = [r.json() for r in hooks.requests
              if r.json()["payload"].get("reference") == doc["reference"]]  # fmt: skip
    assert [a["event"] for a in alerts] == ["dig_request.emergency"]


def test_owner_replaces_its_interest_areas_and_is_then_concerned_there(
    client, make_user, owner_conn
):
    owner = "Telekabel Øst A/S"
    _, token = make_user(owner, "utility")
    before = client.get("/api/interest-areas", headers=bearer(token)).json()
    assert before["features"] and all(f["properties"]["origin"] == "derived"
                                      for f in before["features"])  # fmt: skip
    planned = box(723_300, 6_171_500, 723_400, 6_171_600)  # a planned route, no assets yet
    upload = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"utility_type": "telecom"},
         "geometry": mapping(reproject(planned, 25832, 0))},
        *({"type": "Feature", "properties": {"utility_type": "telecom"},
           "geometry": f["geometry"]} for f in before["features"])]}  # fmt: skip
    replaced = client.put("/api/interest-areas", json=upload, headers=bearer(token))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"owner": owner, "uploaded": len(before["features"]) + 1,
                               "removed": len(before["features"])}  # fmt: skip
    after = client.get("/api/interest-areas", headers=bearer(token)).json()
    assert {f["properties"]["origin"] for f in after["features"]} == {"uploaded"}
    _, contractor = make_user("Graveholdet ApS", "contractor")
    dig = box(723_330, 6_171_530, 723_360, 6_171_560)
    filed = client.post("/api/dig-requests", json=_body(dig), headers=bearer(contractor))
    assert filed.status_code == 201, filed.text
    concerned = {o["owner"]: o for o in filed.json()["owners"]}
    assert owner in concerned and concerned[owner]["asset_count"] == 0
    bad = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point",
                                                           "coordinates": [12.5, 55.6]}}]}  # fmt: skip
    refused = client.put("/api/interest-areas", json=bad, headers=bearer(token))
    assert refused.status_code == 400 and "feature 0" in refused.json()["detail"]
    assert len(client.get("/api/interest-areas", headers=bearer(token)).json()["features"]) == len(
        after["features"]
    )
