"""HTTP routes of the flood analyses (``/api/flood/...``).

Scenarios run as jobs of the OGC API - Processes (``flood-<kind>``), so a run
started here is also at ``/ogc/jobs/{id}`` and its results are OGC layers.
Starting a run needs a planner's or an admin's token (runs cost minutes of
CPU); reading design inputs, runs and watersheds is open, as the terrain and
the results' open layers are.

=========================================  =============================================
route                                      what
=========================================  =============================================
``GET /api/flood/rain``                    design rain from the IDF table and factors
``GET /api/flood/sea-level``               sea level of a scenario year (+ surge)
``POST /api/flood/scenarios``              start a run: 202 with the job and its links
``GET /api/flood/scenarios``               runs, newest first
``GET /api/flood/scenarios/{job_id}``      status, progress, message, summary when done
``GET /api/flood/watershed``               the watershed of a point, as GeoJSON
=========================================  =============================================
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from pygeoapi.util import RequestedProcessExecutionMode
from rasterio.features import shapes

from api.dependencies import DatabaseDep, PrincipalDep
from api.ogc.jobs import PostGISManager
from flood.flow import d8_directions, watershed
from flood.io import rain_depth_mm, read_terrain_layer
from flood.scenario import KINDS, SURGES, sea_level_m
from layers import catalog
from layers.crs import CRS84, STORAGE_EPSG, epsg_from_uri, reproject
from layers.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(prefix="/api/flood", tags=["flood"])
RUNNERS = ("planner", "admin")
_DIRECTIONS: OrderedDict[str, tuple[Any, np.ndarray]] = OrderedDict()
_DIRECTIONS_LOCK = threading.Lock()


class ScenarioIn(BaseModel):
    """A scenario to run."""

    kind: str = Field(description=f"One of {', '.join(KINDS)}.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="As the OGC process flood-<kind> takes them (rain_mm, or "
        "return_period_years + duration_min [+ climate_factor, drainage_mm]; level_m, or "
        "year [+ climate_scenario, surge_return_period]; min_depth_m; min_area_m2).",
    )
    edits: dict[str, Any] | None = Field(
        default=None, description="{barriers: [...], openings: [...]} as GeoJSON Features."
    )
    crs: str = Field(default=CRS84, description="CRS of the edits' coordinates.")
    terrain_layer: str = "terrain_dtm"


def _manager(request: Request) -> PostGISManager:
    return request.app.state.ogc.refresh().manager


@router.get("/rain")
def design_rain(
    database: DatabaseDep,
    return_period_years: Annotated[float, Query(gt=0)],
    duration_min: Annotated[float, Query(gt=0)],
    climate_factor: Annotated[float | None, Query(gt=0)] = None,
    drainage_mm: Annotated[float, Query(ge=0)] = 0.0,
) -> dict[str, Any]:
    """The net rain of a cloudburst: IDF depth x climate factor - drainage (mm)."""
    design = rain_depth_mm(database, return_period_years, duration_min, climate_factor,
                           drainage_mm)  # fmt: skip
    return {k: getattr(design, k) for k in (
        "return_period_years", "duration_min", "idf_depth_mm", "climate_factor",
        "drainage_mm", "rain_mm")}  # fmt: skip


@router.get("/sea-level")
def sea_level(
    database: DatabaseDep,
    year: Annotated[int, Query(ge=1900, le=2500)],
    climate_scenario: str = "SSP2-4.5",
    surge_return_period: Annotated[int, Query(description="0, 20 or 100")] = 0,
) -> dict[str, Any]:
    """Mean sea level of a scenario year, plus a storm surge of a return period (m DVR90)."""
    if surge_return_period not in SURGES:
        raise InvalidInput("must be 0, 20 or 100 (years)", field="surge_return_period")
    return sea_level_m(database, year, climate_scenario, surge_return_period)


@router.post("/scenarios", status_code=202)
async def start_scenario(
    body: ScenarioIn, principal: PrincipalDep, request: Request, response: Response
) -> dict[str, Any]:
    """Start a scenario run as a job; follow ``links`` for its progress and results."""
    if principal.role not in RUNNERS:
        raise Forbidden("running flood scenarios needs the planner or admin role")
    if body.kind not in KINDS:
        raise InvalidInput(f"unknown scenario kind {body.kind!r}; one of {', '.join(KINDS)}",
                           field="kind")  # fmt: skip
    inputs = {**body.parameters, "terrain_layer": body.terrain_layer, "crs": body.crs}
    if body.edits:
        inputs["edits"] = body.edits
    manager = await asyncio.get_running_loop().run_in_executor(None, _manager, request)
    job_id = await asyncio.get_running_loop().run_in_executor(
        None, _start, manager, f"flood-{body.kind}", inputs
    )
    response.headers["Location"] = f"/api/flood/scenarios/{job_id}"
    return {"id": job_id, "status": "accepted", "kind": body.kind, "links": _links(job_id)}


def _start(manager: PostGISManager, process_id: str, inputs: dict[str, Any]) -> str:
    try:
        job_id, *_ = manager.execute_process(
            process_id, inputs, execution_mode=RequestedProcessExecutionMode.respond_async
        )
    except Exception as exc:  # pygeoapi's input errors carry the user's message
        message = getattr(exc, "user_msg", None) or getattr(exc, "message", None)
        if getattr(exc, "http_status_code", 500) == 400 and message:
            raise InvalidInput(str(message), field=getattr(exc, "input", None)) from None
        raise
    return job_id


def _links(job_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"/api/flood/scenarios/{job_id}", "type": "application/json"},
        {"rel": "monitor", "href": f"/ogc/jobs/{job_id}", "type": "application/json"},
        {"rel": "results", "href": f"/ogc/jobs/{job_id}/results", "type": "application/json"},
    ]


@router.get("/scenarios")
def list_scenarios(
    database: DatabaseDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """Flood runs, newest first, with status and progress."""
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT identifier, process_id, status, progress, message, created, finished "
            "FROM geoby.jobs WHERE process_id LIKE 'flood-%%' ORDER BY created DESC LIMIT %s",
            (limit,),
        )
        rows = cur.fetchall()
    return {"scenarios": [_run(*row) for row in rows]}


def _run(identifier, process_id, status, progress, message, created, finished) -> dict:  # noqa: ANN001
    return {"id": identifier, "kind": process_id.removeprefix("flood-"), "status": status,
            "progress": progress, "message": message,
            "created": created.isoformat() if created else None,
            "finished": finished.isoformat() if finished else None,
            "links": _links(identifier)}  # fmt: skip


@router.get("/scenarios/{job_id}")
def get_scenario(job_id: str, database: DatabaseDep) -> dict[str, Any]:
    """One run: status, progress and message; its summary once it succeeded."""
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT identifier, process_id, status, progress, message, created, finished, "
            "result, error, inputs FROM geoby.jobs "
            "WHERE identifier = %s AND process_id LIKE 'flood-%%'",
            (job_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no flood scenario run '{job_id}'", field="job_id")
    doc = _run(*row[:7]) | {"inputs": row[9]}
    if row[2] == "successful" and row[7] is not None:
        result = row[7]
        doc["summary"] = result.get("outputs", [result])[0] if "outputs" in result else result
    return doc


@router.get("/watershed")
def point_watershed(
    database: DatabaseDep,
    x: float,
    y: float,
    crs: str = CRS84,
    terrain_layer: str = "terrain_dtm",
) -> dict[str, Any]:
    """The area draining through a point (D8 on the filled terrain), as a GeoJSON Feature."""
    epsg = epsg_from_uri(crs)
    point = reproject(shapely.Point(x, y), epsg, STORAGE_EPSG)
    if not (np.isfinite(point.x) and np.isfinite(point.y)):  # nan, inf, or off the CRS's area
        raise InvalidInput(f"point ({x}, {y}) is not a position in {crs}", field="x")
    dem, directions = _directions(database, terrain_layer)
    col, row = (int(np.floor(v)) for v in ~dem.transform @ (point.x, point.y))
    if not (0 <= row < dem.shape[0] and 0 <= col < dem.shape[1]):
        raise InvalidInput(f"point ({x}, {y}) lies outside the terrain", field="x")
    mask = watershed(directions, row, col)
    parts = [shapely.geometry.shape(g) for g, v in shapes(
        mask.astype("uint8"), mask=mask, transform=dem.transform) if v]  # fmt: skip
    area = shapely.union_all(parts)
    cells = int(mask.sum())
    geometry = reproject(area, STORAGE_EPSG, epsg)
    return {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(geometry),
        "properties": {"area_m2": cells * dem.cell_area_m2, "cells": cells,
                       "terrain_layer": terrain_layer, "pour_row": row, "pour_col": col},
    }  # fmt: skip


def _directions(database, layer_id: str):  # noqa: ANN001, ANN202
    with database.connection("read") as conn:
        layer = catalog.get(conn, layer_id)
    key = f"{layer_id}:{layer.updated_at}"
    with _DIRECTIONS_LOCK:
        if key in _DIRECTIONS:
            return _DIRECTIONS[key]
    dem = read_terrain_layer(database, layer_id)
    built = (dem, d8_directions(dem.array, dem.nodata))
    with _DIRECTIONS_LOCK:
        _DIRECTIONS[key] = built
        while len(_DIRECTIONS) > 2:
            _DIRECTIONS.popitem(last=False)
    return built
