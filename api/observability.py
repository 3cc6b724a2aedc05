"""Request ids, structured logs and Prometheus metrics of the HTTP API.

Every HTTP request gets an id: the caller's ``X-Request-ID`` when it is a
sane token (1-64 characters of ``[A-Za-z0-9._-]``), else a new uuid4 hex. The
id is returned in the ``X-Request-ID`` response header and held in a context
variable while the request runs, so every log record written on its behalf
(in the event loop or in the worker threads FastAPI runs sync endpoints in)
carries it. One access line per request goes to the ``geoby.access`` logger:
method, path, query string (the value of any parameter named like a
credential, ``access_token`` say, replaced by ``***``), route template,
status, duration and client address; headers are never logged.

Logs are text by default (``GEOBY_LOG_FORMAT=text``, what a person at a
terminal reads); ``GEOBY_LOG_FORMAT=json`` writes one JSON object per line
(:class:`JsonFormatter`) for log shippers, and :func:`uvicorn_log_config`
gives uvicorn's own loggers the same format. The setting is the same for
the CLI and ``geoby serve``: production deployments set it to ``json``.

Metrics (``GET /metrics``, Prometheus text format): the counter
``geoby_http_requests_total{method,route,status}`` and the histogram
``geoby_http_request_duration_seconds{method,route}``, where ``route`` is the
matched route template (``/api/dig/dig-requests/{request_id}``,
``/ogc/collections/{collection_id}/items``); a request no route matched
(a 404, a slash redirect) is labelled ``unmatched``, and methods outside the
HTTP standard ``other``, so label cardinality is bounded by the routes of the
app, whatever clients send. Gauges are read when scraped: connections in use
per database role, the notification outbox, OGC jobs by status, the MQTT
subscriber's counters. Each app has its own registry (tests build many apps).

Access decision: ``/metrics`` is open, like ``/status``. It exposes counts
and timings per route template and queue sizes, never ids, paths, users or
data; operators scrape it from inside the network, and a deployment that
must hide it blocks the path at its reverse proxy.

The middleware is pure ASGI (no ``BaseHTTPMiddleware``, which would buffer
streaming responses) and wraps the whole middleware stack, outside
Starlette's ``ServerErrorMiddleware``, so that a 500 response too carries
its request id and is counted.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Mount

from layers.errors import GeobyError
from layers.settings import Settings

log = logging.getLogger(__name__)
access_log = logging.getLogger("geoby.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]  # fmt: skip

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "geoby_request_id", default=None
)
HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Paths logged at DEBUG only: scrapes and probes every few seconds would drown the log.
QUIET_PATHS = frozenset({"/metrics", "/healthz"})
MAX_LOGGED_PATH = 512
# Seconds: interactive requests (a feature, a tile) through long analyses (a flood run).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return REQUEST_ID.get()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-ID`` if it is a sane token, else a new uuid4 hex."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1").strip()
            if _SANE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


# -- logs ---------------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "color_message", "taskName",
}  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``message``,
    ``request_id``, the record's extra fields, and ``exc`` (the traceback as one string).

    Examples
    --------
    >>> record = logging.LogRecord("geoby", logging.INFO, "", 0, "hello %s", ("you",), None)
    >>> json.loads(JsonFormatter().format(record))["message"]
    'hello you'
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """With ``GEOBY_LOG_FORMAT=json``, give the root logger's handlers the JSON formatter
    (adding a stderr handler where there is none). Text logs are left to whoever set
    them up (the CLI's ``basicConfig``). Safe to call for every app built."""
    if settings.log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
        root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    for handler in root.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """A ``log_config`` for ``uvicorn.run``: uvicorn's loggers in the chosen format.

    With JSON, uvicorn's own lines (start-up, errors) become JSON objects too;
    its access log is left off by ``geoby serve`` since :class:`RequestObservability`
    writes one that carries the request id.
    """
    from uvicorn.config import LOGGING_CONFIG

    if settings.log_format != "json":
        return LOGGING_CONFIG
    handler = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


# -- metrics --------------------------------------------------------------------------------


class HttpMetrics:
    """The request counter and latency histogram of one app, in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "geoby_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "geoby_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template.",
            ["method", "route"], registry=registry, buckets=BUCKETS,
        )  # fmt: skip

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


class PlatformCollector(Collector):
    """Gauges read at scrape time from the app's state: pools, outbox, jobs, MQTT."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        database = getattr(self.app.state, "database", None)
        if database is None:  # scraped before the lifespan started
            return
        yield _pool_gauge(database)
        yield from _queue_gauges(database)
        subscriber = getattr(self.app.state, "waste_subscriber", None)
        if subscriber is not None:
            yield from _mqtt_metrics(subscriber.counters.as_dict())


def _pool_gauge(database: Any) -> GaugeMetricFamily:
    # Reads the pools' bookkeeping (psycopg2's _used/_pool): no query, no lock wait.
    gauge = GaugeMetricFamily(
        "geoby_db_pool_connections", "Pooled database connections by role and state.",
        labels=["role", "state"],
    )  # fmt: skip
    for role, pool in list(getattr(database, "_pools", {}).items()):
        gauge.add_metric([role, "in_use"], len(getattr(pool, "_used", {})))
        gauge.add_metric([role, "idle"], len(getattr(pool, "_pool", [])))
    return gauge


def _queue_gauges(database: Any) -> Iterator[Metric]:
    up = GaugeMetricFamily("geoby_database_up", "1 when the scrape could query the database.")
    try:
        with database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM geoby.outbox GROUP BY status")
            outbox = dict(cur.fetchall())
            cur.execute("SELECT status, count(*) FROM geoby.jobs GROUP BY status")
            jobs = dict(cur.fetchall())
    except GeobyError as exc:
        log.debug("metrics: database gauges skipped: %s", exc.log_detail or exc)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    notices = GaugeMetricFamily("geoby_notification_outbox", "Notifications in the outbox "
                                "by status.", labels=["status"])  # fmt: skip
    for status in ("pending", "sent", "dead"):
        notices.add_metric([status], outbox.get(status, 0))
    yield notices
    gauge = GaugeMetricFamily("geoby_ogc_jobs", "OGC API jobs by status.", labels=["status"])
    for status in ("accepted", "running", "successful", "failed", "dismissed"):
        gauge.add_metric([status], jobs.get(status, 0))
    yield gauge


def _mqtt_metrics(counts: dict[str, Any]) -> Iterator[Metric]:
    messages = CounterMetricFamily("geoby_mqtt_messages", "Bin readings the MQTT subscriber "
                                   "handled since it started, by outcome.", labels=["outcome"])  # fmt: skip
    for outcome in ("received", "stored", "duplicates", "rejected"):
        messages.add_metric([outcome], counts.get(outcome, 0))
    yield messages
    yield GaugeMetricFamily("geoby_mqtt_connected", "1 while the subscriber is connected.",
                            value=1 if counts.get("connected") else 0)  # fmt: skip


def metrics_response(registry: CollectorRegistry) -> Response:
    """The registry in the Prometheus text exposition format."""
    from prometheus_client import generate_latest

    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# -- the middleware -------------------------------------------------------------------------


class RequestObservability:
    """Pure ASGI middleware: request id, access log line, metrics (see the module notes)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, mounts: Callable[[], set[str]]):
        self.app = app
        self.metrics = metrics
        self._mounts = mounts

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers") or [])
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope.get("method", "GET")
            method = method if method in METHODS else "other"
            route = route_label(scope, status, self._mounts())
            self.metrics.observe(method, route, status, seconds)
            _log_access(scope, method, route, status, seconds)
            REQUEST_ID.reset(token)


def route_label(scope: Scope, status: int, mounts: set[str]) -> str:
    """The route template that served ``scope``, or ``unmatched``: never a raw path.

    A route inside a mounted app (``/ogc``) is prefixed with the mount's path,
    accepted only when it is one of the app's own parameter-free mounts; a
    mount whose app set no route (static files) is ``<mount>/{path}``, or
    ``unmatched`` when it answered 404.
    """
    route = scope.get("route")
    if "app_root_path" not in scope:  # no Mount on the way in
        template = getattr(route, "path_format", None)
        return template if isinstance(template, str) and route is not None else UNMATCHED
    prefix = scope.get("root_path", "")[len(scope["app_root_path"]) :]
    if prefix not in mounts:
        return UNMATCHED
    template = getattr(route, "path_format", None)
    if route is None or isinstance(route, Mount) or not isinstance(template, str):
        return UNMATCHED if status == 404 else f"{prefix}/{{path}}"
    return f"{prefix}{template}"


def _log_access(scope: Scope, method: str, route: str, status: int, seconds: float) -> None:
    path = scope.get("path", "")
    level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
    level = logging.ERROR if status >= 500 else level
    if not access_log.isEnabledFor(level):
        return
    client = scope.get("client")
    duration_ms = round(seconds * 1000, 1)
    shown = path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."
    query = _redacted_query(scope.get("query_string", b""))
    target = f"{shown}?{query}" if query else shown
    access_log.log(
        level, "%s %s %s %.1f ms", method, target, status, duration_ms,
        extra={"method": method, "path": shown, "query": query, "route": route,
               "status": status, "duration_ms": duration_ms,
               "client": client[0] if client else None},
    )  # fmt: skip


_SECRET_PARAM = re.compile(r"token|key|secret|pass|auth|sig", re.IGNORECASE)


def _redacted_query(raw: bytes) -> str:
    """The query string as sent (what a client asked for: bbox, filter, paging), with the
    value of any parameter whose name suggests a credential replaced by ``***``."""
    if not raw:
        return ""
    parts = []
    for pair in raw.decode("latin-1").split("&"):
        name, sep, _ = pair.partition("=")
        parts.append(f"{name}{sep}***" if sep and _SECRET_PARAM.search(unquote(name)) else pair)
    query = "&".join(parts)
    return query if len(query) <= MAX_LOGGED_PATH else query[:MAX_LOGGED_PATH] + "..."


def install(app: FastAPI) -> None:
    """Add request ids, access logs and ``GET /metrics`` to ``app``.

    The middleware wraps the stack Starlette builds (outside its error
    middleware), so it sees the final status of every response, 500s included.
    """
    configure_logging(app.state.settings)
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry)
    registry.register(PlatformCollector(app))
    app.state.metrics_registry = registry

    known: list[set[str]] = []

    def mounts() -> set[str]:  # read at the first request, when every route is in place
        if not known:
            routes = app.router.routes
            known.append({r.path for r in routes if isinstance(r, Mount) and "{" not in r.path})
        return known[0]

    build = app.build_middleware_stack

    def build_with_observability() -> ASGIApp:
        return RequestObservability(build(), metrics=metrics, mounts=mounts)

    app.build_middleware_stack = build_with_observability  # type: ignore[method-assign]

    @app.get(
        "/metrics", tags=["operations"], response_class=Response,
        summary="Prometheus metrics: request counts and latencies per route, queues, pools.",
        responses={200: {"content": {"text/plain": {}}}},
    )  # fmt: skip
    def prometheus_metrics() -> Response:
        return metrics_response(registry)
