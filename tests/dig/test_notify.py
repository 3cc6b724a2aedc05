"""The notification outbox and its worker, against the real database, SMTP and HTTP.

The receivers are real local servers (``tests/dig/receivers.py``); the
worker's clock is advanced by passing ``now`` instead of waiting for backoff.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from dig_coordination.notify import (
    EVENTS,
    SUBJECTS,
    backoff_delay,
    deliver_due,
    delivery_id,
    due_reminders,
    email_subject,
    enqueue,
    message_id,
    notify_org,
    run_worker,
    signature,
    verify_signature,
)
from layers.database import Database
from layers.errors import GeobyError, InvalidInput, NotFound
from layers.settings import NotifySettings, Settings
from tests.db_helpers import rows
from tests.dig.receivers import SmtpCatcher, WebhookReceiver, free_port

SECRET = "whsec-test-0123456789"


def with_notify(settings: Settings, **changes) -> Settings:
    return settings.model_copy(update={"notify": settings.notify.model_copy(update=changes)})


@pytest.fixture
def notify_settings(settings: Settings) -> Settings:
    return with_notify(settings, timeout_s=5.0, max_attempts=12, backoff_base_s=10.0)


@pytest.fixture(autouse=True)
def empty_outbox(owner_conn) -> None:
    """Each test starts with an empty outbox, so a pass delivers only what the test queued."""
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.outbox_attempts")
        cur.execute("DELETE FROM geoby.outbox")


@pytest.fixture
def hooks():
    with WebhookReceiver(secret=SECRET) as receiver:
        yield receiver


@pytest.fixture
def make_org(owner_conn):
    def make(*, webhook_url=None, email=None, secret=SECRET, name=None) -> int:
        return rows(
            owner_conn,
            "INSERT INTO geoby.organisations (name, email, webhook_url, webhook_secret)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            name or f"org-{uuid4().hex[:10]}", email, webhook_url, secret,
        )[0][0]  # fmt: skip

    return make


def put(database: Database, org_id: int | None, target: str, n: int = 1, *, channel="webhook",
        event="dig_request.received", payload=None) -> list[str]:  # fmt: skip
    """Queue ``n`` notices in one admin transaction; their idempotency keys."""
    keys = [f"test:{uuid4()}" for _ in range(n)]
    with database.connection("admin") as conn, conn.cursor() as cur:
        for i, key in enumerate(keys):
            body = payload if payload is not None else {"reference": f"DR-TEST-{i}", "i": i}
            assert enqueue(cur, channel=channel, target=target, event=event, payload=body,
                           idempotency_key=key, org_id=org_id)  # fmt: skip
    return keys


def outbox(owner_conn) -> dict[str, tuple]:
    """key -> (status, attempts, next_attempt_at, last_error, sent_at)."""
    found = rows(
        owner_conn,
        "SELECT idempotency_key, status, attempts, next_attempt_at, last_error, sent_at"
        " FROM geoby.outbox",
    )
    return {r[0]: r[1:] for r in found}


def attempts(owner_conn, key: str) -> list[tuple]:
    """(ok, status_code, error, attempted_at) of each attempt of one notice, in order."""
    return rows(
        owner_conn,
        "SELECT a.ok, a.status_code, a.error, a.attempted_at FROM geoby.outbox_attempts a"
        " JOIN geoby.outbox o ON o.id = a.outbox_id WHERE o.idempotency_key = %s ORDER BY a.id",
        key,
    )


def clock() -> datetime:
    """The worker's clock for a test: now, after the rows were queued."""
    return datetime.now(UTC) + timedelta(seconds=1)


def test_webhook_is_delivered_once_with_a_valid_signature(
    database, notify_settings, owner_conn, hooks, make_org
):
    org = make_org(webhook_url=hooks.url)
    due = datetime(2026, 4, 7, 10, 0, tzinfo=UTC)
    payload = {"request_id": str(uuid4()), "reference": "DR-2026-000012", "due_at": due}
    (key,) = put(database, org, hooks.url, payload=payload)
    now = clock()

    report = deliver_due(database, notify_settings, now=now)

    assert (report.sent, report.retried, report.dead) == (1, 0, 0)
    assert hooks.wait_for(1, timeout=10)
    (request,) = hooks.requests
    assert request.signature_ok is True
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-geoby-event"] == "dig_request.received"
    assert request.headers["x-geoby-delivery"] == key
    assert request.headers["x-geoby-signature"] == signature(
        SECRET, request.headers["x-geoby-timestamp"], request.body
    )
    doc = request.json()
    assert doc["event"] == "dig_request.received"
    assert doc["delivery_id"] == key
    assert datetime.fromisoformat(doc["created_at"]) <= now
    assert doc["payload"] == {**payload, "due_at": "2026-04-07T10:00:00+00:00"}
    status, tries, _, last_error, sent_at = outbox(owner_conn)[key]
    assert (status, tries, last_error, sent_at) == ("sent", 1, None, now)
    ((ok, code, error, attempted_at),) = attempts(owner_conn, key)
    assert (ok, code, error, attempted_at) == (True, 200, None, now)

    # Nothing is due any more, now or a day later.
    assert deliver_due(database, notify_settings, now=now + timedelta(days=1)).total == 0
    assert len(hooks.requests) == 1


def test_keys_that_are_not_ascii_travel_percent_encoded(
    database, notify_settings, owner_conn, hooks, make_org
):
    key = f"{uuid4()}:received:Østkyst Gasdistribution A/S"
    org = make_org(webhook_url=hooks.url, email="ler@gas.example")
    with database.connection("admin") as conn, conn.cursor() as cur:
        assert notify_org(cur, org, "dig_request.received", {"reference": "DR-Ø"}, key) == 2
    with SmtpCatcher() as mail:
        smtp = with_notify(notify_settings, smtp_port=mail.port)
        assert deliver_due(database, smtp, now=clock()).sent == 2
        assert mail.wait_for(1, timeout=10)
    assert hooks.wait_for(1, timeout=10)
    expected = delivery_id(f"{key}:webhook")
    assert expected.isascii() and "%C3%98stkyst%20Gasdistribution%20A/S:webhook" in expected
    (request,) = hooks.requests
    assert request.headers["x-geoby-delivery"] == request.json()["delivery_id"] == expected
    assert request.signature_ok
    (msg,) = mail.messages
    assert msg["X-Geoby-Delivery"] == delivery_id(f"{key}:email")
    assert msg["Message-ID"] == message_id(f"{key}:email", smtp.notify.mail_from)
    assert delivery_id("test:plain-key_1.2~x") == "test:plain-key_1.2~x"


def test_verify_signature_refuses_a_changed_body_timestamp_or_secret():
    header = signature(SECRET, 1_700_000_000, b'{"a":1}')
    assert verify_signature(SECRET, "1700000000", b'{"a":1}', header)
    assert verify_signature(SECRET, 1_700_000_000, '{"a":1}', header)
    assert not verify_signature(SECRET, 1_700_000_000, b'{"a":2}', header)
    assert not verify_signature(SECRET, 1_700_000_001, b'{"a":1}', header)
    assert not verify_signature("other-secret", 1_700_000_000, b'{"a":1}', header)
    assert not verify_signature(SECRET, 1_700_000_000, b'{"a":1}', "")


def test_enqueue_is_idempotent_and_transactional(database, owner_conn, make_org):
    org = make_org(webhook_url="http://127.0.0.1:9/hook")
    args = dict(channel="webhook", target="http://127.0.0.1:9/hook", event="dig_request.answered",
                payload={"reference": "DR-1"}, idempotency_key="test:once", org_id=org)  # fmt: skip
    with database.connection("admin") as conn, conn.cursor() as cur:
        assert enqueue(cur, **args) is True
        assert enqueue(cur, **args) is False
    with database.connection("admin") as conn, conn.cursor() as cur:
        assert enqueue(cur, **{**args, "payload": {"reference": "changed"}}) is False
    assert list(outbox(owner_conn)) == ["test:once"]
    assert rows(owner_conn, "SELECT payload FROM geoby.outbox")[0][0] == {"reference": "DR-1"}

    # Rolled back with the caller's transaction: the notice never existed.
    with pytest.raises(RuntimeError), database.connection("admin") as conn, conn.cursor() as cur:
        enqueue(cur, **{**args, "idempotency_key": "test:rolled-back"})
        raise RuntimeError("the caller's change failed")
    assert list(outbox(owner_conn)) == ["test:once"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "sms"}, "channel"),
        ({"event": "dig_request.unknown"}, "event"),
        ({"target": "ftp://example.org/"}, "target"),
        ({"org_id": None}, "org_id"),
        ({"channel": "email", "target": "not-an-address"}, "target"),
    ],
)
def test_enqueue_refuses_what_cannot_be_delivered(database, make_org, changes, field):
    args = dict(channel="webhook", target="https://example.org/hook", event="dig_request.answered",
                payload={}, idempotency_key=f"test:{uuid4()}", org_id=make_org())  # fmt: skip
    with database.connection("admin") as conn, conn.cursor() as cur:
        with pytest.raises(InvalidInput) as info:
            enqueue(cur, **{**args, **changes})
    assert info.value.field == field


def test_notify_org_queues_one_notice_per_channel(database, owner_conn, make_org):
    both = make_org(webhook_url="https://example.org/hook", email="owner@example.org")
    mail_only = make_org(email="contractor@example.org")
    neither = make_org()
    with database.connection("admin") as conn, conn.cursor() as cur:
        assert notify_org(cur, both, "dig_request.emergency", {"reference": "DR-9"}, "k:both") == 2
        assert notify_org(cur, both, "dig_request.emergency", {"reference": "DR-9"}, "k:both") == 0
        assert notify_org(cur, mail_only, "dig_request.answered", {}, "k:mail") == 1
        assert notify_org(cur, neither, "dig_request.answered", {}, "k:none") == 0
        with pytest.raises(NotFound):
            notify_org(cur, -1, "dig_request.answered", {}, "k:missing")
    found = rows(owner_conn, "SELECT idempotency_key, channel, target, org_id FROM geoby.outbox")
    assert sorted(found) == [
        ("k:both:email", "email", "owner@example.org", both),
        ("k:both:webhook", "webhook", "https://example.org/hook", both),
        ("k:mail:email", "email", "contractor@example.org", mail_only),
    ]


def test_notices_survive_a_receiver_that_is_down_for_a_while(
    database, notify_settings, owner_conn, hooks, make_org
):
    org = make_org(webhook_url=hooks.url)
    keys = put(database, org, hooks.url, n=5)
    t0 = clock()
    hooks.stop()  # connection refused

    first = deliver_due(database, notify_settings, now=t0)
    assert (first.sent, first.retried, first.dead) == (0, 5, 0)
    assert {outbox(owner_conn)[k][2] for k in keys} == {t0 + timedelta(seconds=10)}
    # Not due again before its backoff has passed.
    assert deliver_due(database, notify_settings, now=t0 + timedelta(seconds=9)).total == 0

    t1 = t0 + timedelta(seconds=11)
    assert deliver_due(database, notify_settings, now=t1).retried == 5
    assert {outbox(owner_conn)[k][2] for k in keys} == {t1 + timedelta(seconds=20)}

    hooks.status = 500  # up, but failing
    hooks.start()
    t2 = t1 + timedelta(seconds=21)
    assert deliver_due(database, notify_settings, now=t2).retried == 5
    assert {outbox(owner_conn)[k][2] for k in keys} == {t2 + timedelta(seconds=40)}

    hooks.status = 200
    t3 = t2 + timedelta(seconds=41)
    assert deliver_due(database, notify_settings, now=t3).sent == 5

    assert hooks.wait_for(10, timeout=10)
    accepted = [r for r in hooks.requests if r.status == 200]
    assert len(accepted) == 5
    assert {r.delivery_id for r in accepted} == set(keys) == set(hooks.unique)
    assert hooks.duplicates() == 0
    assert all(r.signature_ok for r in hooks.requests)
    for key in keys:
        assert outbox(owner_conn)[key][:2] == ("sent", 4)
        tried = attempts(owner_conn, key)
        assert [(ok, code) for ok, code, _, _ in tried] == [
            (False, None), (False, None), (False, 500), (True, 200)
        ]  # fmt: skip
        assert "Connect" in tried[0][2]
        assert tried[2][2].startswith("HTTP 500")
        assert [t for *_, t in tried] == [t0, t1, t2, t3]
    assert deliver_due(database, notify_settings, now=t3 + timedelta(days=1)).total == 0


def test_a_crash_between_send_and_commit_redelivers_with_the_same_delivery_id(
    database, notify_settings, owner_conn, hooks, make_org, settings
):
    org = make_org(webhook_url=hooks.url)
    (key,) = put(database, org, hooks.url)
    killed = []

    def crash_the_worker(request) -> None:
        # The worker holds its row lock in an open transaction while it waits for us.
        conn = psycopg2.connect(Database(settings).dsn("owner"))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND usename = 'geoby_admin'"
                    " AND state = 'idle in transaction'"
                )
                killed.extend(r[0] for r in cur.fetchall())
        finally:
            conn.close()

    hooks.on_request = crash_the_worker
    with pytest.raises(GeobyError):
        deliver_due(database, notify_settings, now=clock())
    assert killed == [True]
    assert outbox(owner_conn)[key][:2] == ("pending", 0)  # the outcome was never committed
    assert attempts(owner_conn, key) == []

    hooks.on_request = None
    assert deliver_due(database, notify_settings, now=clock()).sent == 1
    first, second = hooks.requests
    assert first.delivery_id == second.delivery_id == key
    assert list(hooks.unique) == [key]  # the receiver processed it once
    assert hooks.duplicates() == 1
    assert outbox(owner_conn)[key][:2] == ("sent", 1)


@pytest.mark.parametrize(
    ("code", "status"),
    [(400, "dead"), (404, "dead"), (410, "dead"), (301, "dead"),
     (408, "pending"), (429, "pending"), (500, "pending"), (503, "pending")],
)  # fmt: skip
def test_http_status_decides_between_retry_and_dead(
    database, notify_settings, owner_conn, hooks, make_org, code, status
):
    org = make_org(webhook_url=hooks.url)
    (key,) = put(database, org, hooks.url)
    hooks.status = code
    now = clock()
    report = deliver_due(database, notify_settings, now=now)
    assert (report.dead, report.retried) == ((1, 0) if status == "dead" else (0, 1))
    state, tries, _, last_error, sent_at = outbox(owner_conn)[key]
    assert (state, tries, sent_at) == (status, 1, None)
    assert last_error.startswith(f"HTTP {code}")
    assert attempts(owner_conn, key)[0][:2] == (False, code)
    # A dead notice is never tried again.
    again = deliver_due(database, notify_settings, now=now + timedelta(days=1)).total
    assert again == (0 if status == "dead" else 1)


def test_a_notice_is_dead_after_max_attempts(
    database, notify_settings, owner_conn, hooks, make_org
):
    limited = with_notify(notify_settings, max_attempts=3, backoff_base_s=10.0)
    org = make_org(webhook_url=hooks.url)
    (key,) = put(database, org, hooks.url)
    hooks.status = 503
    now = clock()
    states = []
    for _ in range(4):
        report = deliver_due(database, limited, now=now)
        states.append((report.retried, report.dead))
        now += timedelta(hours=1)
    assert states == [(1, 0), (1, 0), (0, 1), (0, 0)]
    state, tries, _, last_error, _ = outbox(owner_conn)[key]
    assert (state, tries) == ("dead", 3)
    assert last_error.startswith("HTTP 503")
    assert len(attempts(owner_conn, key)) == 3
    assert len(hooks.requests) == 3


def test_backoff_doubles_up_to_its_cap():
    s = NotifySettings(backoff_base_s=10.0, backoff_max_s=60.0)
    delays = [backoff_delay(s, n).total_seconds() for n in range(1, 7)]
    assert delays == [10, 20, 40, 60, 60, 60]
    assert backoff_delay(s, 10_000).total_seconds() == 60


def test_a_webhook_without_a_secret_is_not_sent_unsigned(
    database, notify_settings, owner_conn, hooks, make_org
):
    org = make_org(webhook_url=hooks.url, secret=None)
    (key,) = put(database, org, hooks.url)
    assert deliver_due(database, notify_settings, now=clock()).dead == 1
    assert hooks.requests == []
    assert "no webhook secret" in outbox(owner_conn)[key][3]


def test_email_reaches_the_smtp_catcher(database, notify_settings, owner_conn, make_org):
    org = make_org(email="owner@example.org")
    payload = {
        "request_id": str(uuid4()), "reference": "DR-2026-000012", "owner": "Fibernet A/S",
        "due_at": "2026-04-07T10:00:00+00:00", "kind": "normal",
    }  # fmt: skip
    with SmtpCatcher() as mail:
        smtp = with_notify(notify_settings, smtp_port=mail.port)
        (key,) = put(database, org, "owner@example.org", channel="email", payload=payload)
        assert deliver_due(database, smtp, now=clock()).sent == 1
        assert mail.wait_for(1, timeout=10)
    (msg,) = mail.messages
    # 10:00 UTC is 12:00 in Copenhagen in April (CEST)
    assert msg["Subject"] == "Dig request DR-2026-000012: answer due 2026-04-07 12:00"
    assert msg["Message-ID"] == message_id(key, smtp.notify.mail_from)
    assert msg["Message-ID"] == message_id(key, smtp.notify.mail_from)  # stable
    assert msg["X-Geoby-Delivery"] == key
    assert msg["X-Geoby-Event"] == "dig_request.received"
    assert msg["To"] == "owner@example.org"
    assert msg["From"] == smtp.notify.mail_from
    body = msg.get_content()
    assert "reference: DR-2026-000012" in body
    assert "owner: Fibernet A/S" in body
    assert "due at: 2026-04-07 12:00" in body
    assert outbox(owner_conn)[key][:2] == ("sent", 1)
    assert attempts(owner_conn, key)[0][:2] == (True, 250)


@pytest.mark.parametrize(("reply", "status"), [("550 no such user", "dead"),
                                              ("451 try again later", "pending")])  # fmt: skip
def test_smtp_refusals(database, notify_settings, owner_conn, make_org, reply, status):
    org = make_org(email="owner@example.org")
    with SmtpCatcher() as mail:
        mail.reject_with = reply
        smtp = with_notify(notify_settings, smtp_port=mail.port)
        (key,) = put(database, org, "owner@example.org", channel="email")
        deliver_due(database, smtp, now=clock())
    assert mail.messages == []
    assert outbox(owner_conn)[key][:2] == (status, 1)
    assert attempts(owner_conn, key)[0][:2] == (False, int(reply[:3]))


def test_smtp_server_down_is_retried(database, notify_settings, owner_conn, make_org):
    org = make_org(email="owner@example.org")
    smtp = with_notify(notify_settings, smtp_port=free_port())
    (key,) = put(database, org, "owner@example.org", channel="email")
    assert deliver_due(database, smtp, now=clock()).retried == 1
    state, tries, _, last_error, _ = outbox(owner_conn)[key]
    assert (state, tries) == ("pending", 1)
    assert "Connection" in last_error


def test_two_concurrent_workers_never_deliver_a_notice_twice(
    database, notify_settings, owner_conn, hooks, make_org
):
    org = make_org(webhook_url=hooks.url)
    keys = put(database, org, hooks.url, n=40)
    # The first two requests are answered only once both are in flight: proof
    # that the workers run side by side rather than one waiting on the other.
    hooks.hold_first(2, timeout=30)
    now = clock()
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda _: deliver_due(database, notify_settings, now=now), [1, 2]))
    assert all(r.sent >= 1 for r in reports)
    assert sum(r.sent for r in reports) == 40
    assert sum(r.total for r in reports) == 40
    assert len(hooks.requests) == 40
    assert set(hooks.unique) == set(keys)
    assert hooks.duplicates() == 0
    assert rows(owner_conn, "SELECT count(*) FROM geoby.outbox_attempts")[0][0] == 40
    assert {v[:2] for v in outbox(owner_conn).values()} == {("sent", 1)}


def test_run_worker_delivers_until_stopped(database, notify_settings, hooks, make_org):
    org = make_org(webhook_url=hooks.url)
    keys = put(database, org, hooks.url, n=3)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(database, notify_settings),
        kwargs={"stop": stop, "interval_s": 0.05},
    )
    worker.start()
    try:
        assert hooks.wait_for(3, timeout=30)
        more = put(database, org, hooks.url, n=2)  # picked up by a later pass
        assert hooks.wait_for(5, timeout=30)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert set(hooks.unique) == set(keys + more)
    assert hooks.duplicates() == 0


# --- reminders -----------------------------------------------------------------------------

DUE = datetime(2001, 3, 6, 10, 0, tzinfo=UTC)  # long past, so no other test's rows are due


@pytest.fixture
def overdue(owner_conn, make_org, hooks):
    """A request with one manual owner whose answer was due at ``DUE``: (request id, owner)."""
    owner = f"Østkyst Fiber {uuid4().hex[:8]} A/S"  # not ASCII, as many Danish owners
    make_org(name=owner, webhook_url=hooks.url_for("/owner"))
    requester = make_org(webhook_url=hooks.url_for("/contractor"))
    user = rows(owner_conn, "INSERT INTO geoby.users (org_id, name, role) VALUES (%s, 'digger',"
                " 'contractor') RETURNING id", requester)[0][0]  # fmt: skip
    square = (
        "POLYGON((720000 6170000, 720010 6170000, 720010 6170010, 720000 6170010, 720000 6170000))"
    )
    request_id = rows(
        owner_conn,
        """
        INSERT INTO geoby.dig_requests (reference, org_id, user_id, kind, status, geom, input_geom,
               start_date, end_date, work_types, contact, buffer_m, valid_until)
        VALUES (%s, %s, %s, 'normal', 'pending', ST_GeomFromText(%s, 25832),
                ST_GeomFromText(%s, 25832), %s, %s, ARRAY['hand_digging'], '{}', 5, %s)
        RETURNING id
        """,
        f"DR-TEST-{uuid4().hex[:8]}", requester, user, square, square,
        date(2001, 3, 8), date(2001, 3, 9), DUE + timedelta(days=30),
    )[0][0]  # fmt: skip
    rows(owner_conn, "INSERT INTO geoby.dig_owner_responses (request_id, owner, mode, status,"
         " due_at) VALUES (%s, %s, 'manual', 'pending', %s) RETURNING owner",
         request_id, owner, DUE)  # fmt: skip
    return request_id, owner


def reminders(owner_conn, request_id) -> list[tuple]:
    return rows(
        owner_conn,
        "SELECT idempotency_key, target, payload->>'audience', (payload->>'reminder')::int"
        " FROM geoby.outbox WHERE payload->>'request_id' = %s ORDER BY id",
        str(request_id),
    )


def reminded_at(owner_conn, request_id):
    return rows(owner_conn, "SELECT reminded_at FROM geoby.dig_owner_responses"
                " WHERE request_id = %s", request_id)[0][0]  # fmt: skip


def test_due_reminders_remind_once_per_interval(
    database, notify_settings, owner_conn, hooks, overdue
):
    request_id, owner = overdue
    interval = timedelta(hours=notify_settings.dig.reminder_interval_hours)
    assert interval == timedelta(hours=2)

    due_reminders(database, notify_settings, DUE - timedelta(minutes=1))
    assert reminders(owner_conn, request_id) == []  # not overdue yet

    first = DUE + timedelta(minutes=1)
    assert due_reminders(database, notify_settings, first) >= 1
    assert reminded_at(owner_conn, request_id) == first
    sent = reminders(owner_conn, request_id)
    assert [(t.rsplit("/", 1)[1], audience, n) for _, t, audience, n in sent] == [
        ("owner", "owner", 1), ("contractor", "contractor", 1)
    ]  # fmt: skip

    for later in (first, first + timedelta(minutes=30), first + interval - timedelta(seconds=1)):
        due_reminders(database, notify_settings, later)
        assert len(reminders(owner_conn, request_id)) == 2  # within the interval: nothing new
    assert reminded_at(owner_conn, request_id) == first

    second = first + interval
    due_reminders(database, notify_settings, second)
    sent = reminders(owner_conn, request_id)
    assert [(audience, n) for _, _, audience, n in sent] == [
        ("owner", 1), ("contractor", 1), ("owner", 2)
    ]  # fmt: skip
    assert len({key for key, *_ in sent}) == 3
    assert reminded_at(owner_conn, request_id) == second

    # Delivered like any notice, each once.
    assert deliver_due(database, notify_settings).sent == 3
    assert hooks.wait_for(3, timeout=10)
    assert {r.headers["x-geoby-event"] for r in hooks.requests} == {"dig_request.overdue"}
    assert sorted(r.path for r in hooks.requests) == ["/contractor", "/owner", "/owner"]
    assert all(r.json()["payload"]["owner"] == owner for r in hooks.requests)
    assert hooks.duplicates() == 0

    # Answered, or the request cancelled: no more reminders.
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE geoby.dig_owner_responses SET status = 'answered'"
                    " WHERE request_id = %s", (request_id,))  # fmt: skip
    due_reminders(database, notify_settings, second + 3 * interval)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE geoby.dig_owner_responses SET status = 'pending'"
                    " WHERE request_id = %s", (request_id,))  # fmt: skip
        cur.execute("UPDATE geoby.dig_requests SET status = 'cancelled' WHERE id = %s",
                    (request_id,))  # fmt: skip
    due_reminders(database, notify_settings, second + 4 * interval)
    assert len(reminders(owner_conn, request_id)) == 3


def test_due_reminders_refuse_a_naive_clock(database, notify_settings):
    with pytest.raises(ValueError, match="timezone-aware"):
        due_reminders(database, notify_settings, datetime(2026, 1, 1, 12, 0))


CPH = ZoneInfo("Europe/Copenhagen")


@pytest.mark.parametrize(
    ("event", "payload", "subject"),
    [
        ("dig_request.received", {"reference": "DR-1", "due_at": "2026-01-13T08:00:00+00:00"},
         "Dig request DR-1: answer due 2026-01-13 09:00"),
        ("dig_request.received", {"reference": "DR-1", "due_at": None, "answer": "automatic"},
         "Dig request DR-1: in your area (answered automatically)"),
        ("dig_request.emergency", {"reference": "DR-2"},
         "EMERGENCY dig request DR-2: answer at once"),
        ("dig_request.overdue", {"reference": "DR-3", "owner": "Net A/S",
                                 "due_at": "2026-07-01T07:00:00+00:00"},
         "Dig request DR-3: answer from Net A/S overdue since 2026-07-01 09:00"),
        ("dig_request.coordination", {"reference": "DR-4", "other_reference": "DR-5"},
         "Dig request DR-4: planned works nearby (DR-5)"),
        ("dig_request.marking_booked", {"reference": "DR-6", "owner": "Gas A/S",
                                        "booked_for": "2026-03-02T10:30:00+01:00"},
         "Dig request DR-6: on-site marking by Gas A/S booked for 2026-03-02 10:30"),
        ("dig_request.answered", {}, "Dig request ?: answered"),
    ],
)  # fmt: skip
def test_email_subjects(event, payload, subject):
    assert email_subject(event, payload, CPH) == subject


def test_every_event_has_a_subject():
    assert set(SUBJECTS) == set(EVENTS)
