"""Real local receivers for notification tests: an SMTP catcher and a webhook receiver.

Both listen on 127.0.0.1, record everything they receive, and dedupe the way
geoby asks real receivers to: by ``Message-ID`` (email) and by
``X-Geoby-Delivery`` (webhook). ``received`` holds every message or request,
duplicates included, ``unique`` the first of each id and ``duplicates()``
the count of repeats, so a test can prove that nothing was sent twice;
``wait_for(n, timeout)`` waits on a condition, never by sleeping. Request
headers are case-insensitive (``httpx.Headers``).

Examples
--------
>>> with WebhookReceiver(secret="s3cret") as hooks, SmtpCatcher() as mail:  # doctest: +SKIP
...     ...                    # point the organisation at hooks.url, SMTP at mail.port
...     assert hooks.wait_for(1, timeout=10)
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from dig_coordination.notify import verify_signature


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Recorder:
    """A list of received items, deduped by an id, that tests can wait on."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.unique: dict[str, Any] = {}
        self._condition = threading.Condition()

    def _add(self, item: Any, delivery_id: str | None) -> bool:
        """Record ``item``; whether its id is new (a duplicate is recorded but not kept)."""
        with self._condition:
            self.received.append(item)
            new = delivery_id is not None and delivery_id not in self.unique
            if new:
                self.unique[delivery_id] = item
            self._condition.notify_all()
            return new

    def duplicates(self) -> int:
        """Items received again with an id already seen (or with no id at all)."""
        with self._condition:
            return len(self.received) - len(self.unique)

    def wait_for(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` items were received; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: len(self.received) >= n, timeout)


class _Handler:
    def __init__(self, catcher: SmtpCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.catcher.reject_with:
            return self.catcher.reject_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.catcher._add(message, message["Message-ID"])
        return "250 Message accepted for delivery"


class SmtpCatcher(_Recorder):
    """An SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it is sent.

    ``received`` holds :class:`email.message.EmailMessage` objects. Set
    ``reject_with`` to an SMTP reply (``"550 no such user"``,
    ``"451 try later"``) to refuse recipients.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reject_with: str | None = None
        self.port = free_port()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self.received)

    def __enter__(self) -> SmtpCatcher:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass
class RecordedRequest:
    """One request the webhook receiver got, and what it answered."""

    path: str
    headers: httpx.Headers
    body: bytes
    status: int
    signature_ok: bool | None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str | None:
        return self.headers.get("x-geoby-delivery")


class WebhookReceiver(_Recorder):
    """An HTTP server on 127.0.0.1 that records every POST and answers ``status``.

    Parameters
    ----------
    secret
        When given, each request's ``X-Geoby-Signature`` is checked
        (``RecordedRequest.signature_ok``).

    Attributes
    ----------
    status
        The status to answer (200 by default); ``path_status`` overrides it per path.
    on_request
        Called with each :class:`RecordedRequest` before the answer is sent
        (e.g. to crash the sender's database session mid-delivery).
    received
        Every request, duplicates and refused ones included; ``unique`` keeps
        the first request *accepted* (2xx) per delivery id, as a deduping
        receiver would process it.
    """

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.status = 200
        self.path_status: dict[str, int] = {}
        self.on_request: Callable[[RecordedRequest], None] | None = None
        self._barrier: threading.Barrier | None = None
        self._held = 0
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.url_for("/hook")

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.received)

    def hold_first(self, n: int, timeout: float) -> None:
        """Hold the first ``n`` requests until all ``n`` are in flight at once.

        Proves that ``n`` senders work concurrently; when they do not, the
        barrier breaks after ``timeout`` and the held requests get a 503.
        """
        self._barrier = threading.Barrier(n, timeout=timeout)
        self._held = n

    def _hold(self) -> bool:
        with self._condition:
            if self._held <= 0 or self._barrier is None:
                return True
            self._held -= 1
            barrier = self._barrier
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return False
        return True

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        headers = httpx.Headers(list(handler.headers.items()))
        status = self.path_status.get(handler.path, self.status) if self._hold() else 503
        signature_ok = None
        if self.secret is not None:
            signature_ok = verify_signature(
                self.secret,
                headers.get("x-geoby-timestamp", ""),
                body,
                headers.get("x-geoby-signature", ""),
            )
        request = RecordedRequest(handler.path, headers, body, status, signature_ok)
        if self.on_request is not None:
            self.on_request(request)
        accepted = 200 <= status < 300
        with self._condition:
            self.received.append(request)
            delivery_id = request.delivery_id
            if accepted and delivery_id is not None and delivery_id not in self.unique:
                self.unique[delivery_id] = request
            self._condition.notify_all()
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def duplicates(self) -> int:
        """Requests accepted with a delivery id that had already been accepted."""
        with self._condition:
            accepted = [r for r in self.received if 200 <= r.status < 300]
            return len(accepted) - len(self.unique)

    def start(self) -> None:
        """Listen (again) on the receiver's port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: senders get connection refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
