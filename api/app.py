"""The FastAPI application.

The connection pools are created in the lifespan and kept on ``app.state``
(as tipg does). Routes here are the platform's own: ``/healthz`` (the process
answers) and ``/api/layers`` (the open catalog); the web map, ``/status`` (JSON,
or HTML for a browser) and the raster tiles come from :mod:`api.web`, the
domain routes from :mod:`api.dig`, :mod:`api.flood` and :mod:`api.waste`, and
the OGC APIs are mounted under ``/ogc``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import account, dig, flood, observability, openapi30, problems, waste, web
from api.dependencies import DatabaseDep
from api.ogc.app import OgcApi
from dig_coordination import notify
from layers import catalog
from layers.database import Database
from layers.errors import GeobyError
from layers.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    settings
        Defaults to the process settings (``GEOBY_*`` environment).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = Database(settings)
        stop = threading.Event()
        worker = None
        if settings.notify.worker_in_app:
            worker = threading.Thread(
                target=notify.run_worker, args=(app.state.database, settings),
                kwargs={"stop": stop}, name="geoby-notify", daemon=True,
            )  # fmt: skip
            worker.start()
        app.state.notify_worker = worker
        app.state.waste_subscriber = _start_subscriber(app.state.database, settings)
        try:
            yield
        finally:
            if app.state.waste_subscriber is not None:
                app.state.waste_subscriber.stop()
            stop.set()
            if worker is not None:
                worker.join(timeout=settings.notify.timeout_s + 5)
            ogc.close()
            app.state.database.close()

    app = FastAPI(
        title=settings.api.title,
        summary="Terrain, climate, water, energy, waste and utility data for a municipality.",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    observability.install(app)  # request ids, JSON logs, GET /metrics
    ogc = OgcApi(settings, lambda: app.state.database)
    app.state.ogc = ogc
    app.mount("/ogc", ogc, name="ogc")

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # The raster's file path on the server is not for clients (they read rasters through
    # /ogc coverages and /api/raster-tiles).
    @app.get("/api/layers", tags=["catalog"], summary="The open layers in the catalog.",
             response_model_exclude={"__all__": {"raster_path"}})  # fmt: skip
    def open_layers(database: DatabaseDep) -> list[catalog.Layer]:
        with database.connection("read") as conn:
            return catalog.list_layers(conn, access="open")

    app.include_router(dig.router)
    app.include_router(flood.router)
    app.include_router(waste.router)
    app.include_router(account.router)
    web.install(app)
    openapi30.install(app)
    return app


def _start_subscriber(database: Database, settings: Settings):  # noqa: ANN202 - Subscriber | None
    """The MQTT subscriber of bin readings, when configured (a broker host, or the private
    broker started); it reconnects by itself while the broker is away."""
    if not settings.broker.subscribe_in_app:
        return None
    from waste.mqtt import Subscriber

    try:
        return Subscriber(database, settings).start()
    except GeobyError as exc:
        log.info("no waste subscriber: %s", exc.detail)
        return None
