"""The MQTT subscriber: bin-sensor readings from the broker into PostGIS.

Sensors (or their gateway) publish one JSON reading per message (see
:mod:`waste.readings`) to ``GEOBY_BROKER_TOPIC`` (default
``geoby/waste/readings/#``; the topic's last level may name the bin). The
subscriber runs in the API process (``GEOBY_BROKER_SUBSCRIBE_IN_APP``) or as
``geoby waste subscribe``.

Messages are checked as they arrive and queued; a writer thread stores them in
batches (up to 2,000, or whatever arrived within 0.2 s) in one transaction each,
so a burst of 10,000 readings costs a handful of round trips. The subscription
is QoS 1 with a persistent session (``clean_session=False``): messages sent
while the subscriber was away or the broker restarted are delivered when it is
back, and a message delivered twice is stored once. A refused message is kept in
``geoby.waste_rejects``; a database error puts the batch back and retries, so
nothing accepted is dropped while the database restarts.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from layers.database import Database
from layers.errors import DatabaseError, GeobyError
from layers.settings import Settings
from waste.readings import KnownBins, Reading, parse, reject, store

log = logging.getLogger(__name__)

BATCH = 2000
FLUSH_S = 0.2
RETRY_S = 1.0


def broker_address(settings: Settings) -> tuple[str, int]:
    """Host and port of the configured broker, or of the private one under ``var/mqtt``."""
    broker = settings.broker
    if broker.host:
        return broker.host, broker.port
    from layers.broker import LocalBroker

    port = LocalBroker(broker.directory).port
    if port is None:
        raise GeobyError("no MQTT broker: set GEOBY_BROKER_HOST or run `geoby broker up`")
    return "127.0.0.1", port


@dataclass
class Counters:
    """What the subscriber has seen since it started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    alerts_raised: int = 0
    connected: bool = False
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {k: getattr(self, k) for k in ("received", "stored", "duplicates",
                                                  "rejected", "alerts_raised", "connected",
                                                  "last_error")}  # fmt: skip


class Subscriber:
    """Subscribe to the readings topic and store what arrives (see the module notes)."""

    def __init__(self, database: Database, settings: Settings, *, client_id: str = "geoby-waste"):
        self.database, self.settings = database, settings
        self.counters = Counters()
        self._bins = KnownBins(database)
        self._queue: queue.Queue[Reading] = queue.Queue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="waste-writer", daemon=True)
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   clean_session=False)  # fmt: skip
        broker = settings.broker
        if broker.username:
            password = broker.password.get_secret_value() if broker.password else None
            self._client.username_pw_set(broker.username, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> Subscriber:
        """Connect (retrying in the background while the broker is down) and start."""
        host, port = broker_address(self.settings)
        self._writer.start()
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()
        log.info("waste subscriber: %s:%d topic %s", host, port, self.settings.broker.topic)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, then store what is queued."""
        self._client.disconnect()
        self._client.loop_stop()
        self._stop.set()
        self._writer.join(timeout_s)

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        """Whether the subscription stands (the broker acknowledged it) within ``timeout_s``."""
        pause = threading.Event()
        for _ in range(int(timeout_s / 0.05)):
            if self.counters.connected:
                return True
            pause.wait(0.05)
        return self.counters.connected

    def idle(self) -> bool:
        """Nothing queued (everything received has been stored or refused)."""
        return self._queue.unfinished_tasks == 0

    # -- callbacks (paho's network thread) ---------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.warning("waste subscriber: broker refused the connection: %s", reason_code)
            return
        client.subscribe(self.settings.broker.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        # Connected means subscribed: the broker has confirmed the subscription (SUBACK),
        # so it is part of the persistent session and queues readings while we are away.
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.warning("waste subscriber: the broker refused the subscription: %s", refused[0])
            return
        with self.counters.lock:
            self.counters.connected = True

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        with self.counters.lock:
            self.counters.connected = False
        if not self._stop.is_set():
            log.warning("waste subscriber: disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        # An exception escaping a callback ends paho's network thread: the subscriber
        # would look connected and receive nothing, so none may escape.
        with self.counters.lock:
            self.counters.received += 1
        try:
            reading = parse(message.payload,
                            topic_bin=_topic_bin(message.topic, self.settings.broker.topic))  # fmt: skip
            self._bins.check(reading.bin_id)
        except DatabaseError:  # the bins cannot be read now: the writer checks again
            self._queue.put(reading)
        except GeobyError as exc:
            self._refuse(message.payload, exc, message.topic)
        except Exception as exc:  # noqa: BLE001 - a bug: keep the message, keep receiving
            log.exception("waste subscriber: a message on %s failed", message.topic)
            self._refuse(message.payload, exc, message.topic)
        else:
            self._queue.put(reading)

    def _refuse(self, payload: Any, exc: Exception, topic: str | None = None) -> None:
        with self.counters.lock:
            self.counters.rejected += 1
        log.info("waste subscriber: refused a message on %s: %s", topic, exc)
        reject(self.database, "mqtt", payload, exc, topic)

    # -- the writer ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take()
            if batch:
                self._write(batch)

    def _take(self) -> list[Reading]:
        try:
            batch = [self._queue.get(timeout=FLUSH_S)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _known(self, pending: list[Reading]) -> list[Reading]:
        """The readings of known bins, the others refused; ``pending`` loses the refused ones.

        The reader queues a reading whose bin it could not check while the database
        was down; it is checked here, and a DatabaseError leaves it in ``pending``.
        """
        known: list[Reading] = []
        for i, reading in enumerate(pending):
            try:
                self._bins.check(reading.bin_id)
            except DatabaseError:
                pending[:] = known + pending[i:]
                raise
            except GeobyError as exc:
                self._refuse(_as_json(reading), exc)
                continue
            known.append(reading)
        pending[:] = known
        return known

    def _write(self, batch: list[Reading]) -> None:
        pause = threading.Event()
        pending = list(batch)
        while True:
            try:
                known = self._known(pending)
                result = store(self.database, known, "mqtt", self.settings.waste) if known else None
                break
            except DatabaseError as exc:  # down or restarting: keep the batch, retry
                with self.counters.lock:
                    self.counters.last_error = exc.detail
                log.warning("waste subscriber: storing %d readings failed (%s); retrying",
                            len(pending), exc.detail)  # fmt: skip
                pause.wait(RETRY_S)
            except GeobyError as exc:  # e.g. no readings table: refuse the batch, keep it
                for reading in pending:
                    reject(self.database, "mqtt", _as_json(reading), exc)
                with self.counters.lock:
                    self.counters.rejected += len(pending)
                result = None
                break
        with self.counters.lock:
            if result is not None:
                self.counters.stored += result.stored
                self.counters.duplicates += result.duplicates
                self.counters.alerts_raised += result.raised
                self.counters.last_error = None
        for _ in batch:
            self._queue.task_done()


def _topic_bin(topic: str, pattern: str) -> str | None:
    """The bin id in a topic below the subscription's ``#`` (``.../readings/EGV-B0001``)."""
    prefix = pattern.rstrip("#").rstrip("/")
    rest = topic[len(prefix) :].strip("/") if topic.startswith(prefix) else ""
    return rest.split("/")[-1] if rest else None


def _as_json(reading: Reading) -> dict[str, Any]:
    return {"bin_id": reading.bin_id, "time": reading.time.isoformat(),
            "fill_level": reading.fill_level}  # fmt: skip
