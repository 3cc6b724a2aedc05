"""Live sensor readings: checked, stored once, alerts; over a real Mosquitto broker and HTTP.

The broker is the project's private one (``layers.broker.LocalBroker``), started
for this module on a free loopback port; the readings reach PostGIS through the
same subscriber the API process runs.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from dig_coordination.users import add_user, ensure_organisation
from ingest.pipelines import IngestOptions, ingest
from layers.broker import LocalBroker
from layers.database import connect
from layers.errors import InvalidInput
from layers.settings import BrokerSettings
from tests.dig.conftest import bearer
from waste.mqtt import Subscriber
from waste.readings import check_dead_sensors, parse, store

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
BIN = "EGV-B0001"


def wait_for(condition, timeout_s: float = 30.0) -> bool:
    """Poll ``condition`` every 50 ms until it holds or the time is up."""
    pause = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return True
        pause.wait(0.05)
    return bool(condition())


def count(database, sql: str, params: tuple = ()) -> int:
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return int(cur.fetchone()[0])


def live_rows(database) -> int:
    return count(database, "SELECT count(*) FROM data.waste_readings "
                           "WHERE _source IN ('mqtt', 'http')")  # fmt: skip


@pytest.fixture(scope="module")
def bins(database, owner_conn_module, town_dir):
    """The sample town's bins (no readings history), live tables emptied."""
    with owner_conn_module.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS data.waste_readings")
        cur.execute("DELETE FROM geoby.layers WHERE id = 'waste_readings'")
        cur.execute("TRUNCATE geoby.waste_alerts, geoby.waste_rejects")
    ingest(
        database, "waste", [town_dir / "waste" / "bins.gpkg"], IngestOptions(show_progress=False)
    )
    return database


@pytest.fixture(scope="module")
def owner_conn_module(database):
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def clean(bins, owner_conn_module):
    with owner_conn_module.cursor() as cur:
        cur.execute("SELECT to_regclass('data.waste_readings') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("DELETE FROM data.waste_readings WHERE _source IN ('mqtt', 'http')")
        cur.execute("TRUNCATE geoby.waste_alerts, geoby.waste_rejects")
    return bins


# -- parsing ---------------------------------------------------------------------------------


def test_readings_in_the_forms_sensors_send_them():
    plain = parse(b'{"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": 0.5}')
    assert (plain.bin_id, plain.time, plain.fill_level) == ("B1", T0, 0.5)
    pct = parse({"bin_id": "B1", "time": "2026-11-01T09:00:00+01:00", "fill_pct": 73})
    assert pct.fill_level == pytest.approx(0.73) and pct.reported == 73 and pct.time == T0
    fiware = parse({"id": "urn:ngsi-ld:WasteContainer:B7", "dateObserved": "2026-11-01T08:00:00Z",
                    "fillingLevel": {"type": "Property", "value": 0.2},
                    "temperature": {"type": "Property", "value": 21.5}})  # fmt: skip
    assert fiware.bin_id.endswith("B7") and fiware.temperature_c == 21.5
    topic = parse({"time": "2026-11-01T08:00:00Z", "fill_level": 0.1, "fire": True},
                  topic_bin="B9")  # fmt: skip
    assert topic.bin_id == "B9" and topic.fire


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (b"\xff\xfe", "payload"),
        ("{not json", "payload"),
        ("[1, 2]", "payload"),
        ({"time": "2026-11-01T08:00:00Z", "fill_level": 0.5}, "bin_id"),
        ({"bin_id": "B1", "fill_level": 0.5}, "time"),
        ({"bin_id": "B1", "time": "2026-11-01 08:00", "fill_level": 0.5}, "time"),
        ({"bin_id": "B1", "time": "yesterday", "fill_level": 0.5}, "time"),
        ({"bin_id": "B1", "time": "2099-01-01T00:00:00Z", "fill_level": 0.5}, "time"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z"}, "fill_level"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": 45}, "fill_level"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": -0.1}, "fill_level"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": "NaN"}, "fill_level"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": True}, "fill_level"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": 0.4, "fill_pct": 40},
         "fill_level"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": 0.4, "fire": "maybe"},
         "fire"),
        ({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": 0.4, "battery_v": "x"},
         "battery_v"),
    ],
)  # fmt: skip
def test_bad_messages_are_refused_naming_the_field(message, field):
    with pytest.raises(InvalidInput) as info:
        parse(message, topic_bin=None)
    assert info.value.field == field


def test_a_payload_bin_that_contradicts_the_topic_is_refused():
    with pytest.raises(InvalidInput, match="differs"):
        parse({"bin_id": "B1", "time": "2026-11-01T08:00:00Z", "fill_level": 0.1},
              topic_bin="B2")  # fmt: skip


# -- storing and alerts ------------------------------------------------------------------------


def reading(hours: float, fill: float, **extra) -> dict:
    return {"bin_id": BIN, "time": (T0 + timedelta(hours=hours)).isoformat(), "fill_level": fill,
            **extra}  # fmt: skip


def test_a_reading_is_stored_once_and_creates_the_readings_layer(clean, settings):
    first = store(clean, [parse(reading(0, 0.3))], "http", settings.waste)
    again = store(clean, [parse(reading(0, 0.3)), parse(reading(1, 0.35))], "http", settings.waste)
    assert (first.stored, first.duplicates) == (1, 0)
    assert (again.stored, again.duplicates) == (1, 1)
    assert live_rows(clean) == 2
    assert count(clean, "SELECT count(*) FROM geoby.layers WHERE id = 'waste_readings'") == 1


def test_alerts_are_raised_once_and_resolved_by_a_later_reading(clean, settings):
    hot = parse(reading(0, 0.95, temperature_c=75, battery_v=3.1, fire=True))
    result = store(clean, [hot], "mqtt", settings.waste)
    kinds = {"overflow", "fire", "temperature", "low_battery"}
    assert result.raised == 4
    open_alerts = "SELECT count(*) FROM geoby.waste_alerts WHERE resolved_at IS NULL AND kind = %s"
    assert all(count(clean, open_alerts, (k,)) == 1 for k in kinds)
    store(clean, [parse(reading(1, 0.97, temperature_c=70, battery_v=3.1, fire=True))], "mqtt",
          settings.waste)  # fmt: skip
    assert count(clean, "SELECT count(*) FROM geoby.waste_alerts") == 4  # still one each
    emptied = store(clean, [parse(reading(2, 0.05, temperature_c=12, battery_v=3.6))], "mqtt",
                    settings.waste)  # fmt: skip
    assert emptied.resolved == 4
    assert count(clean, "SELECT count(*) FROM geoby.waste_alerts WHERE resolved_at IS NULL") == 0


def test_a_silent_sensor_gets_a_dead_sensor_alert_until_it_reports(clean, settings):
    store(clean, [parse(reading(0, 0.2))], "http", settings.waste)
    raised = check_dead_sensors(clean, settings.waste, now=T0 + timedelta(hours=30))
    assert raised == 1
    assert check_dead_sensors(clean, settings.waste, now=T0 + timedelta(hours=31)) == 0
    back = store(clean, [parse(reading(32, 0.25))], "http", settings.waste)
    assert back.resolved == 1


# -- HTTP -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(settings, bins):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def tokens(bins) -> dict[str, str]:
    out = {}
    with bins.connection("admin") as conn:
        for role, org in (("utility", "Egevig Affald"), ("contractor", "Graveselskabet A/S"),
                          ("admin", "Egevig Kommune")):  # fmt: skip
            ensure_organisation(conn, org)
            out[role] = add_user(conn, org=org, role=role)[1]
    return out


def test_http_readings_store_the_good_and_name_the_bad(clean, client, tokens):
    body = [reading(0, 0.4), reading(0, 0.4), {"bin_id": "NOPE", "time": T0.isoformat(),
            "fill_level": 0.1}, {"bin_id": BIN, "time": "soon", "fill_level": 0.1},
            reading(1, 0.92)]  # fmt: skip
    response = client.post("/api/waste/readings", json=body, headers=bearer(tokens["utility"]))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["received"], doc["stored"], doc["duplicates"]) == (5, 2, 1)
    assert [(r["index"], r["field"]) for r in doc["rejected"]] == [(2, "bin_id"), (3, "time")]
    assert doc["alerts_raised"] == 1
    assert count(clean, "SELECT count(*) FROM geoby.waste_rejects WHERE channel = 'http'") == 2
    shown = client.get(f"/api/waste/bins/{BIN}").json()
    assert shown["fill_level"] == pytest.approx(0.92) and shown["alerts"][0]["kind"] == "overflow"
    assert client.get("/api/waste/alerts").json()["alerts"][0]["bin_id"] == BIN
    rejects = client.get("/api/waste/rejects", headers=bearer(tokens["admin"])).json()
    assert rejects["total"] == 2 and "unknown bin" in rejects["rejects"][-1]["reason"]


def test_only_utilities_and_admins_send_readings(clean, client, tokens):
    body = reading(0, 0.4)
    assert client.post("/api/waste/readings", json=body).status_code == 401
    refused = client.post("/api/waste/readings", json=body, headers=bearer(tokens["contractor"]))
    assert refused.status_code == 403
    assert client.get("/api/waste/rejects", headers=bearer(tokens["utility"])).status_code == 403
    assert live_rows(clean) == 0


# -- MQTT --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    local = LocalBroker(tmp_path_factory.mktemp("mqtt"))
    port = local.up()
    yield local, port
    local.down()


@pytest.fixture
def subscriber(clean, settings, broker):
    _, port = broker
    live = settings.model_copy(update={"broker": BrokerSettings(
        host="127.0.0.1", port=port, topic="test/waste/readings/#")})  # fmt: skip
    sub = Subscriber(clean, live, client_id="geoby-test").start()
    assert sub.wait_connected(), "the subscriber did not connect to the broker"
    yield sub
    sub.stop()


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sensor-gateway")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_a_published_reading_reaches_the_database_and_the_api(subscriber, broker, settings):
    pub = publisher(broker[1])
    try:
        info = pub.publish(f"test/waste/readings/{BIN}",
                           json.dumps({"time": T0.isoformat(), "fill_pct": 55}), qos=1)  # fmt: skip
        info.wait_for_publish(10)
        assert wait_for(lambda: live_rows(subscriber.database) == 1, 15)
    finally:
        pub.disconnect()
        pub.loop_stop()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        shown = client.get(f"/api/waste/bins/{BIN}").json()
    assert shown["fill_level"] == pytest.approx(0.55)
    assert shown["readings"][0]["channel"] == "mqtt"


def test_a_burst_of_10000_readings_loses_none_and_counts_the_malformed(subscriber, broker):
    with subscriber.database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT bin_id FROM data.waste_bins ORDER BY bin_id LIMIT 100")
        ids = [r[0] for r in cur.fetchall()]
    pub = publisher(broker[1])
    try:
        sent = []
        for i in range(10_000):
            body = {"bin_id": ids[i % len(ids)], "fill_level": (i % 97) / 100,
                    "time": (T0 + timedelta(minutes=i // len(ids))).isoformat()}  # fmt: skip
            sent.append(pub.publish("test/waste/readings", json.dumps(body), qos=1))
        for bad in (
            "{",
            json.dumps({"bin_id": "GHOST", "time": T0.isoformat(), "fill_level": 1}),
            json.dumps({"bin_id": ids[0], "time": T0.isoformat(), "fill_level": 9}),
        ):
            sent.append(pub.publish("test/waste/readings", bad, qos=1))
        for info in sent:
            info.wait_for_publish(60)
        # the same 200 again: delivered, stored once
        for i in range(200):
            body = {"bin_id": ids[i % len(ids)], "fill_level": (i % 97) / 100,
                    "time": (T0 + timedelta(minutes=i // len(ids))).isoformat()}  # fmt: skip
            pub.publish("test/waste/readings", json.dumps(body), qos=1).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()
    done = lambda: subscriber.counters.received == 10_203 and subscriber.idle()  # noqa: E731
    assert wait_for(done, 120), subscriber.counters.as_dict()
    counts = subscriber.counters.as_dict()
    assert live_rows(subscriber.database) == 10_000
    assert counts["rejected"] == 3 and counts["duplicates"] == 200 and counts["stored"] == 10_000
    assert count(subscriber.database,
                 "SELECT count(*) FROM geoby.waste_rejects WHERE channel = 'mqtt'") == 3  # fmt: skip


def test_status_reports_the_subscriber_and_the_refused_count(subscriber, broker):
    from api.status import broker_status

    doc = broker_status(subscriber.database, subscriber)
    assert doc["status"] == "ok" and doc["connected"] is True
    assert doc["rejected_total"] == 0
    subscriber.stop()
    assert broker_status(subscriber.database, subscriber)["status"] == "down"
    assert broker_status(subscriber.database, None)["status"] == "not_configured"
