"""The operating status of every component, for ``/status``.

Each component reports ``ok``, ``degraded``, ``down`` or ``not_configured``
with a short, safe detail; the overall status is the worst of the configured
ones. Components that later issues add (the MQTT broker, job workers) report
here too.

Besides ``components`` the document has ``layers``: the last successful
ingest of every open layer (row count, sources, load time, rows the newest
load rejected). ``/status`` is public, so restricted layers (buried
infrastructure) are only counted in the ``ingest`` component, as the open
catalog hides them; with ``include_restricted`` (an admin view) they are
listed by id, access and load time only, never with row details. No DSN or
SQL text ever appears: failures report the safe ``detail`` of the error.
"""

from __future__ import annotations

import logging
import threading
import time
from importlib import resources
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


LAYER_LOADS_SQL = (resources.files("layers") / "sql" / "layer_loads.sql").read_text()
# A job not updated for this long while accepted or running has lost its worker.
STALLED_JOB_S = 3600


def layer_loads(database: Database) -> list[dict[str, Any]]:
    """Every catalog layer with its last successful load (``layers/sql/layer_loads.sql``)."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute(LAYER_LOADS_SQL)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def ingest_status(
    database: Database, *, include_restricted: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``ingest`` component and the per-layer list of last successful loads."""
    try:
        rows = layer_loads(database)
    except GeobyError as exc:
        log.warning("status: layer loads check failed: %s", exc.log_detail or exc)
        return {"status": "down", "detail": exc.detail}, []
    listed = []
    for row in rows:
        loaded = row["last_loaded_at"].isoformat() if row["last_loaded_at"] else None
        if row["access"] == "open":
            listed.append({
                "id": row["id"], "title": row["title"], "theme": row["theme"],
                "kind": row["kind"], "access": "open", "row_count": row["row_count"],
                "sources": row["sources"], "last_loaded_at": loaded,
                "last_load_rows": row["last_load_rows"],
                "last_load_rejected": row["last_load_rejected"],
                "last_load_mode": row["last_load_mode"],
            })  # fmt: skip
        elif include_restricted:
            listed.append({"id": row["id"], "access": "restricted", "last_loaded_at": loaded})
    restricted = [r for r in rows if r["access"] == "restricted"]
    times = [r["last_loaded_at"] for r in rows if r["last_loaded_at"]]
    hidden = [r["last_loaded_at"] for r in restricted if r["last_loaded_at"]]
    component = {
        "status": "ok",
        "layers": len(rows),
        "layers_loaded": sum(1 for r in rows if r["sources"]),
        "restricted_layers": len(restricted),
        "last_ingest": max(times).isoformat() if times else None,
        "restricted_last_ingest": max(hidden).isoformat() if hidden else None,
        "rejected_in_last_loads": sum(r["last_load_rejected"] or 0 for r in rows),
    }
    return component, listed


def jobs_status(database: Database) -> dict[str, Any]:
    """OGC API jobs: counts by status and those stalled (no update for an hour)."""
    try:
        with database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT status, count(*), count(*) FILTER (WHERE status IN ('accepted',"
                " 'running') AND updated < now() - make_interval(secs => %s))"
                " FROM geoby.jobs GROUP BY status",
                (STALLED_JOB_S,),
            )
            rows = cur.fetchall()
    except GeobyError as exc:
        log.warning("status: jobs check failed: %s", exc.log_detail or exc)
        return {"status": "down", "detail": exc.detail}
    counts = {status: n for status, n, _ in rows}
    stalled = sum(s for _, _, s in rows)
    doc = {k: counts.get(k, 0) for k in ("accepted", "running", "successful", "failed")}
    return {"status": "degraded" if stalled else "ok", **doc, "stalled": stalled}


def component_status(
    database: Database,
    notify_worker: threading.Thread | None = None,
    waste_subscriber: Any | None = None,
    *,
    include_restricted: bool = False,
) -> dict[str, Any]:
    """The status of every component, the overall status, and the layers' last loads.

    Parameters
    ----------
    include_restricted
        List restricted layers too (id, access, load time only); for admin views.
    """
    ingest, layers = ingest_status(database, include_restricted=include_restricted)
    components = {
        "database": database_status(database),
        "broker": broker_status(database, waste_subscriber),
        "notifications": notification_status(database, notify_worker),
        "ingest": ingest,
        "jobs": jobs_status(database),
    }
    worst = max(components.values(), key=lambda c: _RANK[c["status"]])["status"]
    overall = "ok" if worst == "not_configured" else worst
    return {"status": overall, "components": components, "layers": layers}
