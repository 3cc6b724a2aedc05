"""The FastAPI application.

The connection pools are created in the lifespan and kept on ``app.state``
(as tipg does). Routes here are the platform's own: the landing page that
lists the open layers, ``/healthz`` (the process answers) and ``/status``
(the operating status of every component). Domain routes mount under ``/api``
and the OGC APIs under ``/ogc`` as their issues land.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FunctionLoader, select_autoescape

from api import dig, flood, openapi30, problems, waste
from api.dependencies import DatabaseDep
from api.ogc.app import OgcApi
from api.status import component_status
from dig_coordination import notify
from layers import catalog
from layers.database import Database
from layers.errors import GeobyError
from layers.settings import Settings, get_settings

log = logging.getLogger(__name__)

_templates = Environment(
    loader=FunctionLoader(lambda name: (resources.files("api") / "templates" / name).read_text()),
    autoescape=select_autoescape(["html"]),
)


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
    ogc = OgcApi(settings, lambda: app.state.database)
    app.state.ogc = ogc
    app.mount("/ogc", ogc, name="ogc")

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status", tags=["operations"], summary="Operating status of every component.")
    def status(request: Request, database: DatabaseDep) -> dict:
        return component_status(database, getattr(request.app.state, "notify_worker", None),
                                getattr(request.app.state, "waste_subscriber", None))  # fmt: skip

    @app.get("/api/layers", tags=["catalog"], summary="The open layers in the catalog.")
    def open_layers(database: DatabaseDep) -> list[catalog.Layer]:
        with database.connection("read") as conn:
            return catalog.list_layers(conn, access="open")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing(request: Request, database: DatabaseDep) -> HTMLResponse:
        with database.connection("read") as conn:
            found = catalog.list_layers(conn, access="open")
        html = _templates.get_template("landing.html").render(
            title=settings.api.title, layers=found, themes=catalog.THEMES
        )
        return HTMLResponse(html)

    app.include_router(dig.router)
    app.include_router(flood.router)
    app.include_router(waste.router)
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
