"""The operating status of every component, for ``/status``.

Each component reports ``ok``, ``degraded``, ``down`` or ``not_configured``
with a short, safe detail; the overall status is the worst of the configured
ones. Components that later issues add (the MQTT broker, job workers) report
here too.
"""

from __future__ import annotations

import logging
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


def component_status(database: Database) -> dict[str, Any]:
    """The status of every component and the overall status."""
    components = {
        "database": database_status(database),
        "broker": {"status": "not_configured", "detail": "no MQTT ingestion configured yet"},
        "workers": {"status": "not_configured", "detail": "no background workers configured"},
    }
    worst = max(components.values(), key=lambda c: _RANK[c["status"]])["status"]
    overall = "ok" if worst == "not_configured" else worst
    return {"status": overall, "components": components}
