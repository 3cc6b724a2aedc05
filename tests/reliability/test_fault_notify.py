"""Faults: the notification worker is killed mid-send; no notice is lost or delivered twice.

The worker runs as its own process (``geoby dig worker``) against the test
database, delivering to a real webhook receiver (``tests/dig/receivers.py``)
that holds each request ``HOLD_S`` seconds, like a slow owner system, so a
``kill -9`` lands while a notice is on the wire. The worker is killed several
times and started again each time. At the end:

* every notice queued has been delivered (the receiver has its delivery id,
  the outbox row is ``sent``): nothing lost;
* after deduping by ``X-Geoby-Delivery`` every notice was accepted once; a
  raw redelivery carries the same delivery id (the documented contract of
  :mod:`dig_coordination.notify`: a crash between the send and the commit
  sends that one notice again, with the same id), and there is at most one per
  kill, since a worker sends one notice at a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from uuid import uuid4

import pytest

from dig_coordination.notify import delivery_id, enqueue
from layers.database import Database
from tests.dig.receivers import WebhookReceiver
from tests.reliability.polling import wait_for
from tests.reliability.record import record, scale

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-h6-0123456789"
HOLD_S = 1.0
_PAUSE = threading.Event()  # never set: pauses between polls


class SlowReceiver(WebhookReceiver):
    """A webhook receiver that holds every request ``HOLD_S`` before answering 200."""

    def __init__(self) -> None:
        super().__init__(secret=SECRET)
        self.holding = 0
        self._lock = threading.Lock()
        self.on_request = self._slow

    def _slow(self, request) -> None:  # noqa: ANN001 - RecordedRequest
        with self._lock:
            self.holding += 1
        try:
            threading.Event().wait(HOLD_S)
        finally:
            with self._lock:
                self.holding -= 1


@pytest.fixture
def receiver():
    with SlowReceiver() as hooks:
        yield hooks


@pytest.fixture
def org(owner_conn, receiver) -> int:
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.outbox_attempts")
        cur.execute("DELETE FROM geoby.outbox")
        cur.execute(
            "INSERT INTO geoby.organisations (name, webhook_url, webhook_secret)"
            " VALUES (%s, %s, %s) RETURNING id",
            (f"h6-owner-{uuid4().hex[:8]}", receiver.url, SECRET),
        )
        return cur.fetchone()[0]


def queue(database: Database, org_id: int, target: str, n: int) -> list[str]:
    """Queue ``n`` notices in one transaction, as service code does; their keys."""
    keys = [f"h6:{uuid4()}:Østkyst Gas A/S" for _ in range(n)]  # non-ASCII: percent-encoded
    with database.connection("admin") as conn, conn.cursor() as cur:
        for i, key in enumerate(keys):
            assert enqueue(cur, channel="webhook", target=target, event="dig_request.received",
                           payload={"request_id": str(uuid4()), "reference": f"DR-H6-{i}"},
                           idempotency_key=key, org_id=org_id)  # fmt: skip
    return keys


def start_worker(settings) -> subprocess.Popen:  # noqa: ANN001
    """``geoby dig worker`` on the test database, as an operator would run it."""
    env = {**os.environ, "GEOBY_DATABASE_NAME": settings.database.name,
           "GEOBY_DATABASE_CLUSTER_DIR": str(settings.database.cluster_dir.resolve()),
           "GEOBY_NOTIFY_TIMEOUT_S": "10", "GEOBY_NOTIFY_WORKER_IN_APP": "false"}  # fmt: skip
    if settings.database.url is not None:
        env["GEOBY_DATABASE_URL"] = settings.database.url
    return subprocess.Popen([str(ROOT / ".venv" / "bin" / "geoby"), "dig", "worker",
                             "--interval", "0.2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def outbox_states(owner_conn) -> dict[str, int]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM geoby.outbox GROUP BY status")
        return dict(cur.fetchall())


def test_killing_the_worker_mid_send_loses_and_doubles_no_notice(
    settings, database, owner_conn, receiver, org
):
    n, kills = scale(20, 60), scale(3, 8)
    keys = queue(database, org, receiver.url, n)
    expected = {delivery_id(k) for k in keys}
    worker = start_worker(settings)
    mid_send = 0
    try:
        for k in range(kills):
            # let a few go through, then kill while the receiver holds a request
            target = min(n - 1, (k + 1) * n // (kills + 2))
            assert wait_for(
                lambda t=target: len(receiver.received) >= t and receiver.holding, 60
            ), f"the worker delivers nothing: {worker.poll()=}"
            _PAUSE.wait(HOLD_S * (0.2 + 0.6 * k / kills))  # at varying points of the send
            mid_send += receiver.holding > 0
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            worker = start_worker(settings)
        done = lambda: expected <= set(receiver.unique) and outbox_states(owner_conn) == {"sent": n}  # noqa: E731
        wait_for(done, n * HOLD_S + 60)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
    accepted = [r for r in receiver.received if 200 <= r.status < 300]
    ids = [r.delivery_id for r in accepted]
    lost = len(expected - set(ids))
    unknown = set(ids) - expected
    redeliveries = len(ids) - len(set(ids))
    # after dedupe by delivery id every notice counts once: a double would need a new id
    double_after_dedupe = len(unknown)
    bad_signatures = sum(1 for r in accepted if not r.signature_ok)
    record("faults", "notify_worker_killed", cases=n,
           failures=lost + double_after_dedupe + bad_signatures, faults_injected=kills,
           kills_mid_send=mid_send, redeliveries=redeliveries, data_lost=lost)  # fmt: skip
    assert lost == 0, f"{lost} of {n} notices never arrived; outbox {outbox_states(owner_conn)}"
    assert double_after_dedupe == 0 and bad_signatures == 0
    assert outbox_states(owner_conn) == {"sent": n}
    # each kill mid-send costs exactly that notice one redelivery, never more
    assert mid_send >= 1, "no kill landed mid-send: the fault was not injected"
    assert mid_send <= redeliveries <= kills, (mid_send, redeliveries, kills)
