"""The operating status of every component, for ``/status``.

Each component reports ``ok``, ``degraded``, ``down`` or ``not_configured``
with a short, safe detail; the overall status is the worst of the configured
ones. Components that later issues add (the MQTT broker, job workers) report
here too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from layers.database import Database
from layers.errors import GeobyError

log = logging.getLogger(__name__)

_RANK = {"ok": 0, "not_configured": 0, "degraded": 1, "down": 2}


def database_status(database: Database) -> dict[str, Any]:
    """Reachability, versions, schema version and catalog size of the database."""
    started = time.perf_counter()
    try:
        with database.connection("read") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('server_version'), postgis_lib_version(),"
                " (SELECT count(*) FROM geoby.layers),"
                " (SELECT max(loaded_at) FROM geoby.layer_sources)"
            )
            server, postgis, n_layers, last_load = cur.fetchone()
    except GeobyError as exc:
        log.warning("status: database check failed: %s", exc.log_detail or exc)
        return {"status": "down", "detail": exc.detail}
    return {
        "status": "ok",
        "postgresql": server,
        "postgis": postgis,
        "layers": n_layers,
        "last_ingest": last_load.isoformat() if last_load else None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def notification_status(database: Database, worker: threading.Thread | None) -> dict[str, Any]:
    """The notification outbox: pending and dead notices, the oldest waiting, the worker."""
    try:
        with database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE status = 'pending'),"
                " count(*) FILTER (WHERE status = 'dead'),"
                " extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))"
                " FROM geoby.outbox"
            )
            pending, dead, oldest = cur.fetchone()
    except GeobyError as exc:
        log.warning("status: outbox check failed: %s", exc.log_detail or exc)
        return {"status": "down", "detail": exc.detail}
    running = worker is not None and worker.is_alive()
    doc = {
        "worker": "running in the API process" if running else "external (geoby dig worker)",
        "pending": pending,
        "dead": dead,
        "oldest_pending_s": round(float(oldest), 1) if oldest is not None else None,
    }
    late = oldest is not None and float(oldest) > 600
    dying = worker is not None and not running
    status = "degraded" if (dead or late or dying) else "ok"
    return {"status": status} | doc


def broker_status(database: Database, subscriber: Any | None) -> dict[str, Any]:
    """The MQTT subscriber of bin readings: connected, counts, refused messages."""
    if subscriber is None:
        return {"status": "not_configured",
                "detail": "no MQTT subscriber (GEOBY_BROKER_HOST, or geoby broker up)"}  # fmt: skip
    counts = subscriber.counters.as_dict()
    try:
        with database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), max(received_at) FROM geoby.waste_rejects")
            rejects, last_reject = cur.fetchone()
    except GeobyError as exc:
        log.warning("status: waste rejects check failed: %s", exc.log_detail or exc)
        rejects, last_reject = None, None
    status = "ok" if counts["connected"] and not counts["last_error"] else "degraded"
    if not counts["connected"]:
        status = "down"
    return {"status": status, **counts, "rejected_total": rejects,
            "last_rejected": last_reject.isoformat() if last_reject else None}  # fmt: skip


def component_status(
    database: Database,
    notify_worker: threading.Thread | None = None,
    waste_subscriber: Any | None = None,
) -> dict[str, Any]:
    """The status of every component and the overall status."""
    components = {
        "database": database_status(database),
        "broker": broker_status(database, waste_subscriber),
        "notifications": notification_status(database, notify_worker),
    }
    worst = max(components.values(), key=lambda c: _RANK[c["status"]])["status"]
    overall = "ok" if worst == "not_configured" else worst
    return {"status": overall, "components": components}
