"""Faults: the MQTT broker restarts while sensors publish; readings resume, none lost or doubled.

A private Mosquitto (``layers.broker.LocalBroker``) and the platform's own
subscriber (``waste.mqtt.Subscriber``, QoS 1, persistent session) run against
the test database, as in ``tests/waste/test_live.py``. A sensor gateway
publishes readings continuously with QoS 1 and its own persistent session, and
does what geoby asks of a gateway for "nothing lost":

* keep every reading until the broker PUBACKs it, and resend what was not
  PUBACKed after a reconnect (or after ``RESEND_S`` without an answer);
* keep a PUBACKed reading ``REPLAY_S`` longer and resend those after a
  reconnect: a PUBACK means the broker holds the reading in memory, and a
  broker that crashes (``kill -9``) loses what it had not yet passed on or
  saved (measured here: without the replay about a dozen readings PUBACKed just
  before the kill never reached the subscriber);
* resending is harmless: a reading is stored once per (bin, time), a second
  copy counts as a duplicate.

The broker is killed (``kill -9``) and later stopped cleanly in the middle of
the stream and started again on the same port each time; a batch of readings
already sent is sent again. The subscriber is never restarted by the test: it
reconnects by itself, and the ``/status`` broker component is back to
``connected``. A second test proves the broker's persistence: readings
published while the subscriber was away survive a broker restart and are
delivered when the subscriber's session comes back.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from api.status import broker_status
from ingest.pipelines import IngestOptions, ingest
from layers.broker import LocalBroker
from layers.database import Database, connect
from layers.settings import BrokerSettings, Settings
from tests.reliability.polling import wait_for
from tests.reliability.record import record, scale
from waste.mqtt import Subscriber

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
TOPIC = "h6/waste/readings"
RESEND_S = 2.0
REPLAY_S = 10.0  # > the broker's autosave interval (layers.broker.AUTOSAVE_S) + detection
_PAUSE = threading.Event()  # never set: pauses between polls


@pytest.fixture(scope="module")
def bins(database: Database, town_dir) -> list[str]:
    """The sample town's bins, with no readings: the ids the gateway reports for."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS data.waste_readings")
        cur.execute("DELETE FROM geoby.layers WHERE id = 'waste_readings'")
        cur.execute("TRUNCATE geoby.waste_alerts, geoby.waste_rejects")
    conn.close()
    ingest(
        database, "waste", [town_dir / "waste" / "bins.gpkg"], IngestOptions(show_progress=False)
    )
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT bin_id FROM data.waste_bins ORDER BY bin_id LIMIT 20")
        return [r[0] for r in cur.fetchall()]


@pytest.fixture
def broker(tmp_path):
    local = LocalBroker(tmp_path / "mqtt")
    local.up()
    yield local
    local.down()


def live_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"broker": BrokerSettings(
        host="127.0.0.1", port=port, topic=f"{TOPIC}/#")})  # fmt: skip


def stored(database: Database, since: datetime, until: datetime) -> dict[tuple[str, str], int]:
    """Rows of live readings per (bin, time) in a time window."""
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.waste_readings') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            "SELECT bin_id, time, count(*) FROM data.waste_readings"
            " WHERE _source = 'mqtt' AND time >= %s AND time < %s GROUP BY 1, 2",
            (since, until),
        )
        return {(b, t.astimezone(UTC).isoformat()): n for b, t, n in cur.fetchall()}


def kill_broker(broker: LocalBroker) -> None:
    """``kill -9`` the broker and wait until its port is closed."""
    pid = int(broker.pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not broker.running(), 10), "mosquitto survived kill -9"


class Gateway:
    """A sensor gateway: QoS 1, persistent session, keeps each reading until its PUBACK.

    ``publish`` hands a reading to the MQTT client and keeps it in ``pending``;
    ``check`` moves PUBACKed readings to ``acked`` and resends, as a new
    message, every reading that has waited ``RESEND_S`` (or was handed over
    while the broker was down) once the client is connected again.
    """

    def __init__(self, port: int, client_id: str) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)  # fmt: skip
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.connected = threading.Event()
        self.connects = 0
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        self.pending: dict[str, tuple[bytes, mqtt.MQTTMessageInfo, float]] = {}
        self.acked: set[str] = set()
        self.recent: list[tuple[float, str, bytes]] = []  # PUBACKed in the last REPLAY_S
        self.replay_due = False
        self.sent = self.resent = self.replayed = 0
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert self.connected.wait(10), "the gateway did not connect"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self.connects += 1
        self.replay_due = self.connects > 1  # a reconnect: the broker may have lost some
        self.connected.set()

    def publish(self, key: str, payload: bytes) -> None:
        info = self.client.publish(TOPIC, payload, qos=1)
        self.pending[key] = (payload, info, time.monotonic())
        self.sent += 1

    def check(self) -> None:
        now = time.monotonic()
        for key, (payload, info, at) in list(self.pending.items()):
            if _acked(info):
                self.acked.add(key)
                self.recent.append((now, key, payload))
                del self.pending[key]
            elif self.connected.is_set() and (info.rc != 0 or now - at > RESEND_S):
                self.pending[key] = (payload, self.client.publish(TOPIC, payload, qos=1), now)
                self.resent += 1
        self.recent = [r for r in self.recent if now - r[0] <= REPLAY_S]
        if self.replay_due and self.connected.is_set():
            self.replay_due = False
            for _, key, payload in self.recent:
                self.publish(f"replay{self.replayed}:{key}", payload)
                self.replayed += 1

    def drain(self, timeout_s: float) -> bool:
        """Resend until every reading is PUBACKed."""
        return wait_for(lambda: (self.check(), not self.pending)[1], timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _acked(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether the broker PUBACKed a message (one handed over while down never is)."""
    try:
        return info.is_published()
    except RuntimeError:  # paho: "the client is not currently connected" at publish time
        return False
    except ValueError:  # paho: not queued (ERR_QUEUE_SIZE) while the broker was away
        return False


def body(bin_id: str, at: datetime, i: int) -> bytes:
    return json.dumps({"bin_id": bin_id, "time": at.isoformat(),
                       "fill_level": (i % 97) / 100}).encode()  # fmt: skip


def test_broker_kill_and_restart_lose_and_double_no_reading(settings, database, bins, broker):
    n = scale(3000, 6000)
    rate = 400  # readings per second, continuously
    sub = Subscriber(database, live_settings(settings, broker.port), client_id="h6-subscriber")
    sub.start()
    assert sub.wait_connected(), "the subscriber did not connect"
    gateway = Gateway(broker.port, "h6-gateway")
    readings = [(bins[i % len(bins)], T0 + timedelta(minutes=i // len(bins))) for i in range(n)]
    keys = [f"{b}|{t.isoformat()}" for b, t in readings]
    faults = {n // 4: "kill -9", n // 2: "clean stop"}
    downs: list[str] = []
    reconnects = 0
    try:
        started = time.monotonic()
        for i, ((bin_id, at), key) in enumerate(zip(readings, keys, strict=True)):
            if i in faults:
                downs.append(faults[i])
                was_connected = sub.counters.connected
                kill_broker(broker) if faults[i] == "kill -9" else broker.down()
                assert wait_for(lambda: not sub.counters.connected, 10)
                # a few readings while the broker is down: kept by the gateway
                for j in range(i, min(i + 20, n)):
                    gateway.publish(keys[j], body(*readings[j], j))
                _PAUSE.wait(0.5)
                broker.up()
                assert wait_for(lambda: sub.counters.connected, 20), "no reconnect"
                reconnects += was_connected
            if key not in gateway.pending and key not in gateway.acked:
                gateway.publish(key, body(bin_id, at, i))
            if i % 50 == 0:
                gateway.check()
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    _PAUSE.wait(ahead)
        # a batch the gateway already sent (and had PUBACKed) sent again
        again = scale(200, 500)
        for i in range(again):
            gateway.publish(f"again:{keys[i]}", body(*readings[i], i))
        assert gateway.drain(60), f"{len(gateway.pending)} readings never PUBACKed"
        window = (T0, T0 + timedelta(days=30))
        wait_for(lambda: sub.idle() and len(stored(database, *window)) >= n, 30)
        wait_for(lambda: sub.counters.received >= gateway.sent and sub.idle(), 5)
        rows = stored(database, T0, T0 + timedelta(days=30))
        counts = sub.counters.as_dict()
        status = broker_status(database, sub)
    finally:
        gateway.close()
        sub.stop()
    missing = [i for i, (b, t) in enumerate(readings) if (b, t.isoformat()) not in rows]
    lost = len(missing)
    duplicated = sum(n_rows - 1 for n_rows in rows.values())
    record("faults", "broker_restart", cases=n, failures=lost + duplicated,
           faults_injected=len(downs), data_lost=lost, duplicated=duplicated,
           resent_by_gateway=gateway.resent, replayed_by_gateway=gateway.replayed,
           resent_batch=again,
           duplicates_counted=counts["duplicates"], received=counts["received"],
           reconnects=reconnects, faults_at=sorted(faults))  # fmt: skip
    assert (lost, duplicated) == (0, 0), f"lost {missing[:20]}..., stored twice {duplicated}"
    assert len(rows) == n
    assert counts["stored"] == n and counts["rejected"] == 0, counts
    # every copy beyond the first is counted as a duplicate, none stored
    assert counts["duplicates"] >= again and counts["duplicates"] == counts["received"] - n
    assert reconnects == len(faults) and downs == ["kill -9", "clean stop"]
    assert status["status"] == "ok" and status["connected"] is True, status


@pytest.mark.reliability_full
def test_readings_queued_for_an_absent_subscriber_survive_a_broker_restart(
    settings, database, bins, broker
):
    n = scale(300, 2000)
    since = T0 - timedelta(days=30)  # before the first test's readings, not in the future
    live = live_settings(settings, broker.port)
    first = Subscriber(database, live, client_id="h6-away").start()
    assert first.wait_connected()
    first.stop()  # a clean disconnect: the persistent session stays on the broker
    gateway = Gateway(broker.port, "h6-gateway-2")
    readings = [(bins[i % len(bins)], since + timedelta(minutes=i // len(bins))) for i in range(n)]
    try:
        for i, (bin_id, at) in enumerate(readings):
            gateway.publish(f"{bin_id}|{at.isoformat()}", body(bin_id, at, i))
        assert gateway.drain(30), "the broker did not PUBACK the readings"
    finally:
        gateway.close()
    assert stored(database, since, since + timedelta(days=30)) == {}  # nobody took them yet
    broker.down()  # a clean stop saves the queued readings
    broker.up()
    back = Subscriber(database, live, client_id="h6-away").start()
    try:
        assert back.wait_connected()
        wait_for(lambda: len(stored(database, since, since + timedelta(days=30))) >= n, 30)
        wait_for(back.idle, 5)
        rows = stored(database, since, since + timedelta(days=30))
        counts = back.counters.as_dict()
    finally:
        back.stop()
    lost = sum(1 for b, t in readings if (b, t.isoformat()) not in rows)
    record("faults", "broker_restart_queued", cases=n, failures=lost, faults_injected=1,
           data_lost=lost)  # fmt: skip
    assert lost == 0, f"{lost} of {n} readings queued for the subscriber were lost: {counts}"
    assert counts["received"] >= n and counts["rejected"] == 0, counts
