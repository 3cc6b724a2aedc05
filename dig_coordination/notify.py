"""Owner and contractor notifications: a transactional outbox and its worker.

Service code decides to notify inside its own transaction and calls
:func:`enqueue` (or :func:`notify_org`) with that transaction's cursor, so a
notice exists exactly when the change it announces was committed. The worker
(:func:`run_worker`, one step of it :func:`deliver_due`) sends what is due as
signed webhooks or email, records every attempt in ``geoby.outbox_attempts``
and retries failures with backoff.

Events, their audience and the payload fields the service code puts in them
(``request_id`` and ``reference`` always; times as ISO 8601 strings):

================================  ====================  ================================
event                             to                    further payload fields
================================  ====================  ================================
``dig_request.received``          owners concerned      ``kind``, ``start_date``,
                                                        ``end_date``, ``answer``
                                                        (manual/automatic), ``due_at``
                                                        (manual only)
``dig_request.emergency``         owners, at once       as received
``dig_request.owner_answered``    contractor            ``owner``, ``remarks``
``dig_request.answered``          contractor            (all owners have answered)
``dig_request.overdue``           owner; contractor     ``owner``, ``due_at``, ``reminder``,
                                                        ``audience`` (owner/contractor)
``dig_request.coordination``      both contractors      ``other_reference``, ``distance_m``,
                                                        ``overlap_start``, ``overlap_end``
``dig_request.cancelled``         owners concerned
``dig_request.damage_reported``   owner                 ``owner``, ``occurred_at``
``dig_request.marking_booked``    contractor            ``owner``, ``booked_for``
``dig_request.marking_done``      contractor            ``owner``
================================  ====================  ================================

Decisions where the issue is silent:

* **Once per row, at most one redelivery.** The worker claims one due row at
  a time with ``SELECT ... FOR UPDATE SKIP LOCKED``, delivers it while holding
  the lock and commits the outcome before the next row, so two workers never
  send the same row. A crash between the send and the commit loses that
  attempt's record and the row is sent again later with the *same* delivery
  id (the idempotency key, percent-encoded to fit in a header:
  :func:`delivery_id`): receivers dedupe on ``X-Geoby-Delivery`` (webhook)
  or ``Message-ID`` (email), which is stable per notice.
* **Backoff** is deterministic, without jitter: after the n-th failed attempt
  the next is ``min(backoff_max_s, backoff_base_s * 2 ** (n - 1))`` later
  (10 s, 20 s, 40 s, ... capped at an hour). One worker sends rows one by
  one, so there is no herd for jitter to spread, and a fixed schedule can be
  told to owners and tested. ``Retry-After`` is not read. After
  ``max_attempts`` failures the row is ``dead`` with its ``last_error``.
* **Webhooks**: 2xx is delivered. 408, 429 and 5xx, timeouts and connection
  errors are retried. Other 4xx, and 3xx (redirects are not followed: a
  signed notice goes only to the registered URL), are permanent: the row is
  dead at once, since repeating the same request cannot succeed. The
  signature is ``sha256=`` HMAC-SHA256 of ``f"{timestamp}.{body}"`` with the
  organisation's ``webhook_secret``, read when sending (so a rotated secret
  applies to notices already queued); the timestamp is the wall clock at
  sending, for the receiver's replay window. A webhook whose organisation has
  no secret is not sent unsigned: it is dead with that error.
* **Email**: a recipient or message refused with a 5xx reply is permanent;
  every other SMTP or network error (including a refused login: an operator
  can fix that) is retried. ``status_code`` holds the HTTP status for
  webhooks and the SMTP reply code for email.
* **Reminders** (:func:`due_reminders`): the owner is reminded once per
  ``reminder_interval_hours`` while its answer is overdue; the requesting
  contractor is told once, at the first reminder, not at every one. A
  cancelled request gets no reminders.
* ``attempted_at``, ``sent_at`` and ``next_attempt_at`` follow the worker's
  clock (``now``, which tests advance instead of waiting).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import quote
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import Json

from layers.database import Database
from layers.errors import GeobyError, InvalidInput, NotFound
from layers.settings import NotifySettings, Settings

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
EVENTS: dict[str, str] = {
    "dig_request.received": "A dig request touches your assets or interest area.",
    "dig_request.emergency": "An emergency dig request touches your assets: answer at once.",
    "dig_request.owner_answered": "An owner has answered your dig request.",
    "dig_request.answered": "Your dig request has been answered by every owner.",
    "dig_request.overdue": "An owner's answer to a dig request is overdue.",
    "dig_request.coordination": "Planned works overlap yours in space and time.",
    "dig_request.cancelled": "A dig request has been cancelled.",
    "dig_request.damage_reported": "Damage has been reported on a dig request.",
    "dig_request.marking_booked": "On-site marking has been booked.",
    "dig_request.marking_done": "On-site marking has been done.",
}
SUBJECTS: dict[str, str] = {
    "dig_request.received": "Dig request {reference}: answer due {due_at}",
    "dig_request.emergency": "EMERGENCY dig request {reference}: answer at once",
    "dig_request.owner_answered": "Dig request {reference}: {owner} has answered",
    "dig_request.answered": "Dig request {reference}: answered",
    "dig_request.overdue": "Dig request {reference}: answer from {owner} overdue since {due_at}",
    "dig_request.coordination": "Dig request {reference}: planned works nearby ({other_reference})",
    "dig_request.cancelled": "Dig request {reference}: cancelled",
    "dig_request.damage_reported": "Dig request {reference}: damage reported",
    "dig_request.marking_booked": "Dig request {reference}: on-site marking by {owner} "
    "booked for {booked_for}",
    "dig_request.marking_done": "Dig request {reference}: on-site marking by {owner} done",
}
"""Email subjects; a received notice without ``due_at`` (answered automatically) says so."""
RETRIED_HTTP_4XX = frozenset({408, 429})
ERROR_MAX_CHARS = 500


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} in a notification payload")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def enqueue(
    cur: Cursor,
    *,
    channel: str,
    target: str,
    event: str,
    payload: dict[str, Any],
    idempotency_key: str,
    org_id: int | None = None,
) -> bool:
    """Queue one notice in the caller's transaction; a second with the same key is a no-op.

    Parameters
    ----------
    cur
        A cursor of the caller's connection (role ``admin``): the notice is
        committed or rolled back with the caller's change.
    channel, target
        ``webhook`` and its URL, or ``email`` and the address.
    event
        One of :data:`EVENTS`.
    payload
        JSON-serialisable; datetimes, dates and UUIDs are written as strings.
    idempotency_key
        Unique per notice; receivers see it as the delivery id.
    org_id
        The organisation notified; required for webhooks (its secret signs them).

    Returns
    -------
    bool
        Whether the notice is new.

    Raises
    ------
    InvalidInput
        Unknown channel or event, or a target that does not fit the channel.
    """
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown notification channel {channel!r}", field="channel")
    if event not in EVENTS:
        raise InvalidInput(f"unknown notification event {event!r}", field="event")
    if channel == "webhook" and not target.startswith(("https://", "http://")):
        raise InvalidInput("a webhook target must be an http(s) URL", field="target")
    if channel == "webhook" and org_id is None:
        raise InvalidInput("a webhook needs the organisation whose secret signs it", field="org_id")
    if channel == "email" and "@" not in target:
        raise InvalidInput("an email target must be an address", field="target")
    cur.execute(
        """
        INSERT INTO geoby.outbox (idempotency_key, channel, target, org_id, event, payload)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
        """,
        (idempotency_key, channel, target, org_id, event, Json(payload, dumps=_dumps)),
    )
    return cur.fetchone() is not None


def notify_org(cur: Cursor, org_id: int, event: str, payload: dict[str, Any], key: str) -> int:
    """Queue ``event`` for an organisation on each channel it has (webhook, email).

    The idempotency key of each notice is ``f"{key}:{channel}"``. Returns the
    number of notices newly queued (0 for an organisation with neither channel).

    Raises
    ------
    NotFound
        No organisation has ``org_id``.
    """
    cur.execute("SELECT webhook_url, email FROM geoby.organisations WHERE id = %s", (org_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"organisation {org_id} does not exist")
    webhook_url, email = row
    new = 0
    for channel, target in (("webhook", webhook_url), ("email", email)):
        if target:
            new += enqueue(
                cur, channel=channel, target=target, event=event, payload=payload,
                idempotency_key=f"{key}:{channel}", org_id=org_id,
            )  # fmt: skip
    return new


def backoff_delay(settings: NotifySettings, attempts: int) -> timedelta:
    """How long after its ``attempts``-th failure a notice is tried again."""
    seconds = settings.backoff_base_s * 2.0 ** min(attempts - 1, 62)
    return timedelta(seconds=min(settings.backoff_max_s, seconds))


def signature(secret: str, timestamp: str | int, body: bytes | str) -> str:
    """The ``X-Geoby-Signature`` value of a webhook body sent at ``timestamp``."""
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str | int, body: bytes | str, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` sent at ``timestamp`` (constant time).

    Receivers should also refuse a timestamp far from their clock (say five
    minutes) to stop replays; a redelivery is signed afresh, so that is safe.

    Examples
    --------
    >>> verify_signature("s3cret", 1700000000, b"{}", signature("s3cret", 1700000000, b"{}"))
    True
    >>> verify_signature("other", 1700000000, b"{}", signature("s3cret", 1700000000, b"{}"))
    False
    """
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")


@dataclass(frozen=True)
class _Notice:
    id: int
    key: str
    channel: str
    target: str
    event: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    webhook_secret: str | None


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    permanent: bool = False
    status_code: int | None = None
    error: str | None = None


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` pass did: notices sent, to be retried, dead."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.dead

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retried} to retry, {self.dead} dead"

    def count(self, state: str) -> None:
        """Count one notice left in ``state`` (``sent``, ``pending`` or ``dead``)."""
        if state == "sent":
            self.sent += 1
        elif state == "dead":
            self.dead += 1
        else:
            self.retried += 1


def delivery_id(key: str) -> str:
    """The delivery id receivers see for an idempotency key: the key, percent-encoded.

    Keys may hold any text (an owner's name: "Østkyst Gas A/S"); HTTP header
    values must be ASCII. Letters, digits and ``:/@-._~`` and the like are
    kept, so a plain key is its own delivery id.

    Examples
    --------
    >>> delivery_id("0f3c:received:Østkyst Gas A/S")
    '0f3c:received:%C3%98stkyst%20Gas%20A/S'
    """
    return quote(key, safe=":/@!$&'()*+,;=-._~")


def webhook_body(event: str, key: str, created_at: datetime, payload: dict[str, Any]) -> bytes:
    """The JSON body POSTed for a notice."""
    doc = {"event": event, "delivery_id": delivery_id(key), "created_at": created_at,
           "payload": payload}  # fmt: skip
    return _dumps(doc).encode()


def _send_webhook(notice: _Notice, client: httpx.Client) -> _Outcome:
    if not notice.webhook_secret:
        return _Outcome(False, permanent=True, error="the organisation has no webhook secret")
    body = webhook_body(notice.event, notice.key, notice.created_at, notice.payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "geoby-notify",
        "X-Geoby-Event": notice.event,
        "X-Geoby-Delivery": delivery_id(notice.key),
        "X-Geoby-Timestamp": timestamp,
        "X-Geoby-Signature": signature(notice.webhook_secret, timestamp, body),
    }
    response = client.post(notice.target, content=body, headers=headers)
    code = response.status_code
    if 200 <= code < 300:
        return _Outcome(True, status_code=code)
    permanent = code < 500 and code not in RETRIED_HTTP_4XX
    return _Outcome(False, permanent, code, f"HTTP {code} {response.reason_phrase}".strip())


def message_id(key: str, mail_from: str) -> str:
    """The stable ``Message-ID`` of the email for the notice with idempotency key ``key``."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "geoby.localhost"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}.outbox@{domain}>"


class _Fields(dict):
    def __missing__(self, name: str) -> str:
        return "?"


def _readable(name: str, value: Any, tz: ZoneInfo) -> str:
    if isinstance(value, str) and name.endswith(("_at", "_for", "_until")):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return _dumps(value)
    return str(value)


def email_subject(event: str, payload: dict[str, Any], tz: ZoneInfo) -> str:
    """The subject line of a notice's email, times in local time."""
    fields = {k: _readable(k, v, tz) for k, v in payload.items() if v is not None}
    template = SUBJECTS.get(event, "geoby: {event}")
    if event == "dig_request.received" and "due_at" not in fields:
        template = "Dig request {reference}: in your area (answered automatically)"
    return template.format_map(_Fields(fields, event=event))


def compose_email(notice: _Notice, settings: Settings) -> EmailMessage:
    """The email for a notice: subject from the event, body listing the payload."""
    tz = ZoneInfo(settings.dig.timezone)
    fields = {k: _readable(k, v, tz) for k, v in notice.payload.items() if v is not None}
    msg = EmailMessage()
    msg["From"] = settings.notify.mail_from
    msg["To"] = notice.target
    msg["Subject"] = email_subject(notice.event, notice.payload, tz)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(notice.key, settings.notify.mail_from)
    msg["X-Geoby-Event"] = notice.event
    msg["X-Geoby-Delivery"] = delivery_id(notice.key)
    lines = [EVENTS.get(notice.event, notice.event), ""]
    lines += [f"{name.replace('_', ' ')}: {value}" for name, value in fields.items()]
    request_id = notice.payload.get("request_id")
    if settings.api.public_url and request_id:
        lines += ["", f"{settings.api.public_url.rstrip('/')}/api/dig-requests/{request_id}"]
    lines += [
        "",
        f"Times are local ({settings.dig.timezone}). Delivery id: {delivery_id(notice.key)}",
    ]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _send_email(notice: _Notice, settings: Settings) -> _Outcome:
    n = settings.notify
    msg = compose_email(notice, settings)
    try:
        with smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=n.timeout_s) as smtp:
            if n.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if n.smtp_user:
                password = n.smtp_password.get_secret_value() if n.smtp_password else ""
                smtp.login(n.smtp_user, password)
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return _Outcome(False, all(c >= 500 for c in codes), max(codes), f"refused: {exc}")
    except smtplib.SMTPDataError as exc:
        return _Outcome(False, exc.smtp_code >= 500, exc.smtp_code, f"data refused: {exc}")
    except smtplib.SMTPResponseException as exc:
        return _Outcome(False, False, exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
    return _Outcome(True, status_code=250)


def _send(notice: _Notice, settings: Settings, client: httpx.Client) -> _Outcome:
    try:
        if notice.channel == "webhook":
            return _send_webhook(notice, client)
        return _send_email(notice, settings)
    except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
        return _Outcome(False, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug must not wedge the queue: retried, then dead
        log.exception("notice %s could not be sent", notice.id)
        return _Outcome(False, error=f"{type(exc).__name__}: {exc}")


CLAIM_SQL = """
SELECT o.id, o.idempotency_key, o.channel, o.target, o.event, o.payload, o.attempts,
       o.created_at, org.webhook_secret
  FROM geoby.outbox o
  LEFT JOIN geoby.organisations org ON org.id = o.org_id
 WHERE o.status = 'pending' AND o.next_attempt_at <= %s
 ORDER BY o.next_attempt_at, o.id
 LIMIT 1
   FOR UPDATE OF o SKIP LOCKED
"""


def _record(cur: Cursor, notice: _Notice, outcome: _Outcome, settings: NotifySettings,
            now: datetime, duration_ms: float) -> str:  # fmt: skip
    error = outcome.error[:ERROR_MAX_CHARS] if outcome.error else None
    cur.execute(
        """
        INSERT INTO geoby.outbox_attempts
               (outbox_id, attempted_at, ok, status_code, error, duration_ms)
        VALUES (%s, %s, %s, %s, %s, %s)
        """,
        (notice.id, now, outcome.ok, outcome.status_code, error, duration_ms),
    )
    attempts = notice.attempts + 1
    if outcome.ok:
        state, next_at = "sent", None
    elif outcome.permanent or attempts >= settings.max_attempts:
        state, next_at = "dead", None
    else:
        state, next_at = "pending", now + backoff_delay(settings, attempts)
    cur.execute(
        """
        UPDATE geoby.outbox
           SET status = %s, attempts = %s, last_error = %s,
               sent_at = %s, next_attempt_at = COALESCE(%s, next_attempt_at)
         WHERE id = %s
        """,
        (state, attempts, error, now if outcome.ok else None, next_at, notice.id),
    )
    if not outcome.ok:
        level = logging.WARNING if state == "dead" else logging.INFO
        log.log(level, "notice %s (%s) attempt %d failed, now %s: %s",
                notice.id, notice.event, attempts, state, error)  # fmt: skip
    return state


def _deliver_next(
    database: Database, settings: Settings, client: httpx.Client, now: datetime | None
) -> str | None:
    """Claim, send and record one due notice in one transaction; None when none is due."""
    with database.connection("admin") as conn, conn.cursor() as cur:
        clock = _aware(now)
        cur.execute(CLAIM_SQL, (clock,))
        row = cur.fetchone()
        if row is None:
            return None
        notice = _Notice(*row)
        started = time.perf_counter()
        outcome = _send(notice, settings, client)
        duration_ms = (time.perf_counter() - started) * 1000.0
        return _record(cur, notice, outcome, settings.notify, clock, duration_ms)


def deliver_due(
    database: Database, settings: Settings, *, now: datetime | None = None, limit: int = 100
) -> DeliveryReport:
    """Send up to ``limit`` due notices, each claimed, sent and committed on its own.

    Parameters
    ----------
    database
        Its ``admin`` pool is used.
    now
        The worker's clock; by default the current time, read for each notice.

    Raises
    ------
    GeobyError
        The database failed; notices already committed stay done, the one in
        flight is retried by a later pass.
    """
    if now is not None:
        _aware(now)
    report = DeliveryReport()
    with httpx.Client(timeout=settings.notify.timeout_s, follow_redirects=False) as client:
        while report.total < limit:
            state = _deliver_next(database, settings, client, now)
            if state is None:
                break
            report.count(state)
    return report


REMINDER_SQL = """
SELECT r.request_id, r.owner, r.due_at, r.reminded_at, q.reference, q.kind, q.start_date,
       q.end_date, q.org_id, owner_org.id
  FROM geoby.dig_owner_responses r
  JOIN geoby.dig_requests q ON q.id = r.request_id
  LEFT JOIN geoby.organisations owner_org ON owner_org.name = r.owner
 WHERE r.status = 'pending' AND q.status <> 'cancelled'
   AND r.due_at < %(now)s
   AND (r.reminded_at IS NULL OR r.reminded_at <= %(cutoff)s)
 ORDER BY r.due_at
   FOR UPDATE OF r SKIP LOCKED
"""


@dataclass(frozen=True)
class _Overdue:
    request_id: UUID
    owner: str
    due_at: datetime
    reminded_at: datetime | None
    reference: str
    kind: str
    start_date: date
    end_date: date
    requester_org: int
    owner_org: int | None


def _remind(cur: Cursor, late: _Overdue, now: datetime, interval: timedelta) -> None:
    number = int((now - late.due_at) / interval) + 1
    key = f"dig_request.overdue:{late.request_id}:{late.owner}"
    payload = {
        "request_id": late.request_id, "reference": late.reference, "owner": late.owner,
        "due_at": late.due_at, "reminder": number, "kind": late.kind,
        "start_date": late.start_date, "end_date": late.end_date,
    }  # fmt: skip
    event = "dig_request.overdue"
    if late.owner_org is not None:
        notify_org(cur, late.owner_org, event, {**payload, "audience": "owner"},
                   f"{key}:{number}:owner")  # fmt: skip
    else:
        log.warning("overdue owner %r of %s has no organisation", late.owner, late.reference)
    if late.reminded_at is None:
        notify_org(cur, late.requester_org, event, {**payload, "audience": "contractor"},
                   f"{key}:contractor")  # fmt: skip
    cur.execute(
        "UPDATE geoby.dig_owner_responses SET reminded_at = %s"
        " WHERE request_id = %s AND owner = %s",
        (now, late.request_id, late.owner),
    )


def due_reminders(database: Database, settings: Settings, now: datetime | None = None) -> int:
    """Remind owners whose answers are overdue, once per ``reminder_interval_hours``.

    In one transaction: each pending owner response past its ``due_at``, not
    reminded within the interval, gets a ``dig_request.overdue`` notice to the
    owner's organisation (by name, when it has one), and at its first
    reminder one to the requesting organisation; ``reminded_at`` is set to
    ``now``. The reminder number (whole intervals since ``due_at``, plus one)
    is in the idempotency key, so a reminder is never queued twice.

    Returns
    -------
    int
        The number of owner responses reminded.
    """
    now = _aware(now)
    interval = timedelta(hours=settings.dig.reminder_interval_hours)
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(REMINDER_SQL, {"now": now, "cutoff": now - interval})
        rows = cur.fetchall()
        for row in rows:
            _remind(cur, _Overdue(*row), now, interval)
    return len(rows)


def run_worker(
    database: Database,
    settings: Settings,
    *,
    stop: threading.Event,
    interval_s: float = 2.0,
    limit: int = 100,
) -> None:
    """Queue due reminders and deliver due notices until ``stop`` is set.

    A pass that finds ``limit`` notices due is followed at once by another;
    otherwise the worker waits ``interval_s`` (or until ``stop``). Database
    failures are logged and the next pass tries again.
    """
    log.info("notification worker started")
    while not stop.is_set():
        busy = False
        try:
            reminded = due_reminders(database, settings)
            report = deliver_due(database, settings, limit=limit)
        except GeobyError as exc:
            log.warning("notification pass failed: %s (%s)", exc, exc.log_detail)
        else:
            busy = report.total >= limit
            if reminded or report.total:
                log.info("notifications: %d reminders queued, %d sent, %d to retry, %d dead",
                         reminded, report.sent, report.retried, report.dead)  # fmt: skip
        if not busy:
            stop.wait(interval_s)
    log.info("notification worker stopped")
