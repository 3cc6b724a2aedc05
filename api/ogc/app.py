"""The OGC APIs at ``/ogc``: pygeoapi's API core with geoby's data path.

pygeoapi's stock Starlette app reads one YAML file at import time. geoby
instead builds an :class:`pygeoapi.api.API` from the layer catalog when the
first request arrives, and builds it again when the catalog changes (checked
at most every few seconds), so a layer registered by an ingest or a flood run
appears without a restart and no configuration drifts from the data.

Routes are pygeoapi's, except where geoby fixes the data path: items and
item (:mod:`api.ogc.features`), conformance (the filter classes are
declared, and pygeoapi's list is not mutated per request) and vector tile
data (:mod:`api.ogc.tiles`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
import pygeoapi.api.tiles as tiles_api
from pygeoapi.api import API, APIRequest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router

from api.ogc import (  # noqa: F401 - processes registers geoby's processes
    config,
    context,
    dig_process,  # noqa: F401 - registers dig-check
    features,
    flood_process,  # noqa: F401 - registers flood-cloudburst, -sealevel, -bluespots, -flowpaths
    guards,
    openapi,
    processes,
)
from layers.database import Database
from layers.settings import Settings

log = logging.getLogger(__name__)

RECHECK_S = 3.0


class OgcApi:
    """An ASGI app serving the OGC APIs of one geoby database."""

    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database
        self.key = uuid.uuid4().hex
        self.api: API | None = None
        self.context: context.OgcContext | None = None
        self._version: tuple | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.router = Router(routes=self._routes())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self._due():
            await asyncio.get_running_loop().run_in_executor(None, self.refresh)
        await self.router(scope, receive, send)

    def _due(self) -> bool:
        return self.api is None or time.monotonic() - self._checked >= RECHECK_S

    def refresh(self, force: bool = False) -> API:
        """Build (or rebuild, when the catalog changed) pygeoapi's API object."""
        now = time.monotonic()
        if self.api is not None and not force and now - self._checked < RECHECK_S:
            return self.api
        with self._lock:
            database = self._database()
            with database.connection("read") as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*), max(updated_at) FROM geoby.layers")
                version = cur.fetchone()
                self._checked = time.monotonic()
                if self.api is not None and version == self._version and not force:
                    return self.api
                ctx = context.OgcContext(self.key, self.settings, database)
                context.register(ctx)
                cfg = config.build(conn, ctx)
            Path(cfg["server"]["manager"]["output_dir"]).mkdir(parents=True, exist_ok=True)
            self.context, self._version = ctx, version
            self.api = API(cfg, openapi.document(cfg))
            log.info("OGC API built with %d resources", len(cfg["resources"]))
            return self.api

    def close(self) -> None:
        """Forget the plugin context and the API built on it.

        The app's database pools close with it; an app started again in the
        same process (a second test client, a lifespan restarted) gets new
        pools, so the API is rebuilt on them at the next request instead of
        naming a context that is gone.
        """
        with self._lock:
            context.forget(self.key)
            self.api, self.context, self._version = None, None, None

    # -- routing ---------------------------------------------------------------

    def _routes(self) -> list[Route]:
        call = self._call
        geoby = self._call_geoby
        return [
            Route("/", call(core_api.landing_page)),
            Route("/openapi", call(core_api.openapi_)),
            Route("/conformance", call(conformance)),
            Route("/TileMatrixSets", call(tiles_api.tilematrixsets)),
            Route(
                "/TileMatrixSets/{tileMatrixSetId}",
                call(tiles_api.tilematrixset, "tileMatrixSetId"),
            ),
            Route("/collections", call(core_api.describe_collections)),
            Route(
                "/collections/{collection_id}", call(core_api.describe_collections, "collection_id")
            ),
            Route(
                "/collections/{collection_id}/schema",
                call(core_api.get_collection_schema, "collection_id"),
            ),
            Route(
                "/collections/{collection_id}/queryables",
                call(itemtypes_api.get_collection_queryables, "collection_id"),
            ),
            Route("/collections/{collection_id}/items", self._items, methods=["GET", "POST"]),
            Route("/collections/{collection_id}/items/{item_id}", self._item),
            Route(
                "/collections/{collection_id}/coverage",
                call(guards.coverage, "collection_id", check=False),
            ),
            Route("/collections/{collection_id}/tiles", geoby("tilesets", "collection_id")),
            Route(
                "/collections/{collection_id}/tiles/{tileMatrixSetId}",
                geoby("tileset", "collection_id", "tileMatrixSetId"),
            ),
            Route(
                "/collections/{collection_id}/tiles/{tileMatrixSetId}/metadata",
                geoby("tileset", "collection_id", "tileMatrixSetId"),
            ),
            Route(
                "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{y}/{x}",
                geoby("tile", "collection_id", "tileMatrixSetId", "z", "y", "x"),
            ),
            Route("/processes", call(processes_api.describe_processes)),
            Route("/processes/{process_id}", call(processes_api.describe_processes, "process_id")),
            Route(
                "/processes/{process_id}/execution",
                call(guards.execute, "process_id"),
                methods=["POST"],
            ),
            Route("/jobs", call(processes_api.get_jobs)),
            Route("/jobs/{job_id}", self._job, methods=["GET", "DELETE"]),
            Route("/jobs/{job_id}/results", call(processes_api.get_job_result, "job_id")),
        ]

    def _call(self, function: Callable, *names: str, check: bool = True):
        async def endpoint(request: Request) -> Response:
            args = [request.path_params[name] for name in names]
            return await self._execute(function, request, *args, check=check)

        return endpoint

    def _call_geoby(self, name: str, *names: str):
        async def endpoint(request: Request) -> Response:
            from api.ogc import tiles

            args = [request.path_params[n] for n in names]
            return await self._execute(
                getattr(tiles, name), request, *args, check=False, geoby_context=True
            )

        return endpoint

    async def _items(self, request: Request) -> Response:
        dataset = request.path_params["collection_id"]
        if dataset == config.RECORDS_ID:
            return await self._execute(guards.records, request, dataset)
        return await self._execute(
            features.items, request, dataset, check=False, geoby_context=True
        )

    async def _item(self, request: Request) -> Response:
        dataset, item_id = request.path_params["collection_id"], request.path_params["item_id"]
        if dataset == config.RECORDS_ID:
            return await self._execute(itemtypes_api.get_collection_item, request, dataset, item_id)
        return await self._execute(
            features.item, request, dataset, item_id, check=False, geoby_context=True
        )

    async def _job(self, request: Request) -> Response:
        function = (
            processes_api.delete_job if request.method == "DELETE" else processes_api.get_jobs
        )
        return await self._execute(function, request, request.path_params["job_id"])

    async def _execute(
        self,
        function: Callable,
        request: Request,
        *args: Any,
        check: bool = True,
        geoby_context: bool = False,
    ) -> Response:
        api = self.api
        assert api is not None, "refresh() runs before routing"
        api_request = await APIRequest.from_starlette(request, api.locales)
        if check and not api_request.is_valid():
            return _response(*api.get_format_exception(api_request))
        kwargs = {"context": self.context} if geoby_context else {}
        loop = asyncio.get_running_loop()
        headers, status, content = await loop.run_in_executor(
            None, lambda: _in_loop(loop, function, api, api_request, *args, **kwargs)
        )
        return _response(headers, status, content)


def _in_loop(loop, function, *args, **kwargs):
    # pygeoapi's process manager looks up the running loop of the thread.
    asyncio.set_event_loop(loop)
    return function(*args, **kwargs)


def _response(headers: dict, status: int, content: Any) -> Response:
    if headers.get("Content-Type") == "text/html":
        response: Response = HTMLResponse(content, status_code=status)
    else:
        response = Response(content, status_code=status)
    response.headers.update(headers)
    return response


FILTER_CLASSES = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
]
# Declared by pygeoapi for every feature provider but not offered by geoby (read-only).
NOT_OFFERED = {"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"}


def conformance(api: API, request: APIRequest):
    """The conformance classes of every resource type configured, with CQL2's."""
    import json

    apis = core_api.all_apis()
    classes = set(core_api.CONFORMANCE_CLASSES)
    for resource in api.config["resources"].values():
        if resource["type"] == "process":
            classes.update(apis["process"].CONFORMANCE_CLASSES)
            continue
        for provider in resource["providers"]:
            if provider["type"] in apis:
                classes.update(apis[provider["type"]].CONFORMANCE_CLASSES)
            if provider["type"] == "feature":
                classes.update(apis["itemtypes"].CONFORMANCE_CLASSES_FEATURES)
                classes.update(FILTER_CLASSES)
            if provider["type"] == "record":
                classes.update(apis["itemtypes"].CONFORMANCE_CLASSES_RECORDS)
    document = {"conformsTo": sorted(classes - NOT_OFFERED)}
    headers = request.get_response_headers(**api.api_headers)
    if request.format == core_api.F_HTML:
        from pygeoapi.util import render_j2_template

        html = render_j2_template(
            api.tpl_config,
            api.config["server"]["templates"],
            "conformance.html",
            document,
            request.locale,
        )
        return headers, 200, html
    return headers, 200, json.dumps(document)
