"""Flood scenarios on the stored terrain, with their results as catalog layers.

A scenario reads the terrain COG of a catalog layer (``terrain_dtm`` by
default), applies its terrain edits (:mod:`flood.edits`) to a copy, runs, and
stores what it found as layers the OGC APIs serve (``<id>`` is the scenario id):

==============  ==============================================================
kind            results
==============  ==============================================================
cloudburst      ``flood_<id>_depth`` water-depth COG (coverage),
                ``flood_<id>_flooded`` flooded areas by depth class,
                ``flood_<id>_bluespots`` each depression's fill state,
                ``flood_exposure_<id>`` buildings and roads under water (open),
                ``flood_exposure_<id>_assets`` buried assets (restricted)
sealevel        ``flood_<id>_depth``, ``flood_<id>_flooded`` and the exposure
                layers; the naive bathtub's area is reported beside the
                connected one
bluespots       ``flood_<id>_bluespots``: every depression with depth, area,
                volume, pour point, spill target, catchment, the rain that
                fills it, and its place in the hierarchy
flowpaths       ``flood_<id>_flowacc`` flow accumulation COG (cells) and
                ``flood_<id>_flowpaths`` main flow paths as lines
==============  ==============================================================

Parameters (checked by :func:`parameters`, which names the one at fault):

* cloudburst: ``rain_mm``, or ``return_period_years`` and ``duration_min`` to
  look up the ingested IDF table, with ``climate_factor`` (default: the
  ingested factor for that return period) and ``drainage_mm`` (default 0);
* sealevel: ``level_m`` (DVR90), or ``year`` with ``climate_scenario``
  (default SSP2-4.5) and ``surge_return_period`` (0, 20 or 100 years; default 0)
  from the ingested sea-level scenarios;
* bluespots: ``min_depth_m`` (default 0.05) and ``min_area_m2`` (default 0);
* flowpaths: ``min_area_m2`` draining to a cell for it to be on a path
  (default 10,000).

Reproducible: the same terrain, parameters and edits give the same id and the
same results; nothing is random. All or nothing: the layers are written one
after another, so a run that fails halfway removes those it had written (and a
run killed halfway as an OGC job is cleaned up by the next API process, see
``api/ogc/jobs.py``); a rerun replaces every layer of the scenario. The depression hierarchy is built once per
terrain (and edits) and kept in memory, so a second rain on the same terrain
only re-runs fill-spill-merge.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np

from flood import exposure as exposure_mod
from flood.bluespots import bluespot_polygons, flooded_polygons
from flood.depressions import Hierarchy, depression_hierarchy
from flood.edits import Edits
from flood.flow import d8_directions, flow_accumulation, flow_paths
from flood.fsm import fill_spill_merge
from flood.io import Dem, rain_depth_mm, read_terrain_layer
from flood.sealevel import bathtub_depth, connected_depth, flood_levels
from flood.store import drop_layers, plain, store_frame, store_raster
from layers import catalog
from layers.crs import STORAGE_EPSG
from layers.database import Database
from layers.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

Progress = Callable[[int, str], None]
KINDS = ("cloudburst", "sealevel", "bluespots", "flowpaths")
DEPTH_CLASSES = (0.05, 0.1, 0.3, 1.0)  # the first is the exposure threshold
DEFAULT_MIN_DEPTH_M = 0.05
DEFAULT_FLOWPATH_AREA_M2 = 10_000.0
DEFAULT_SEA_SCENARIO = "SSP2-4.5"
SURGES = {0: None, 20: "surge_20y_m", 100: "surge_100y_m"}
_PARAMS = {
    "cloudburst": {"rain_mm", "return_period_years", "duration_min", "climate_factor",
                   "drainage_mm", "min_depth_m"},
    "sealevel": {"level_m", "year", "climate_scenario", "surge_return_period"},
    "bluespots": {"min_depth_m", "min_area_m2"},
    "flowpaths": {"min_area_m2"},
}  # fmt: skip
_CACHE: OrderedDict[str, Hierarchy] = OrderedDict()
_CACHE_SIZE = 2
_CACHE_LOCK = threading.Lock()


def _quiet(_percent: int, _message: str) -> None:
    """The default progress sink."""


@dataclass
class Scenario:
    """What to run: kind, parameters, terrain edits, and on which terrain layer."""

    kind: str
    params: dict[str, Any]
    edits: Edits = field(default_factory=Edits)
    terrain_layer: str = "terrain_dtm"

    def __post_init__(self) -> None:
        self.params = parameters(self.kind, self.params)

    @property
    def id(self) -> str:
        """A stable id from kind, parameters, terrain and edits (``cb1f2e...``)."""
        doc = json.dumps([self.kind, self.params, self.terrain_layer, self.edits.key],
                         sort_keys=True, default=str)  # fmt: skip
        return f"{self.kind[:2]}{hashlib.sha256(doc.encode()).hexdigest()[:10]}"

    def layer_ids(self) -> list[str]:
        """The layers a run of this scenario writes."""
        sid = self.id
        exposure = [f"flood_exposure_{sid}", exposure_mod.assets_layer_id(f"flood_exposure_{sid}")]
        return {
            "cloudburst": [f"flood_{sid}_depth", f"flood_{sid}_flooded",
                           f"flood_{sid}_bluespots", *exposure],
            "sealevel": [f"flood_{sid}_depth", f"flood_{sid}_flooded", *exposure],
            "bluespots": [f"flood_{sid}_bluespots"],
            "flowpaths": [f"flood_{sid}_flowacc", f"flood_{sid}_flowpaths"],
        }[self.kind]  # fmt: skip


def parameters(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters of a scenario kind, checked, as plain numbers and strings.

    Raises
    ------
    InvalidInput
        An unknown kind or parameter, a missing one, or a value out of range.
    """
    if kind not in KINDS:
        raise InvalidInput(f"unknown scenario kind {kind!r}; one of {', '.join(KINDS)}",
                           field="kind")  # fmt: skip
    params = dict(params or {})
    unknown = set(params) - _PARAMS[kind]
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {', '.join(sorted(unknown))} for {kind}; "
                           f"known: {', '.join(sorted(_PARAMS[kind]))}",
                           field=sorted(unknown)[0])  # fmt: skip
    out = {k: v for k, v in params.items() if v is not None}
    for name in out:
        if name != "climate_scenario":
            out[name] = _number(name, out[name])
    if kind == "cloudburst":
        has_rain, has_idf = "rain_mm" in out, "return_period_years" in out or "duration_min" in out
        if has_rain == has_idf:
            raise InvalidInput("give either rain_mm or return_period_years with duration_min",
                               field="rain_mm")  # fmt: skip
        if has_idf and not {"return_period_years", "duration_min"} <= set(out):
            missing = ({"return_period_years", "duration_min"} - set(out)).pop()
            raise InvalidInput("is required with an IDF rain", field=missing)
        if has_rain and ({"climate_factor", "drainage_mm"} & set(out)):
            raise InvalidInput("climate_factor and drainage_mm apply to an IDF rain, not to "
                               "rain_mm", field="rain_mm")  # fmt: skip
        _at_least(out, "rain_mm", 0.0)
        _at_least(out, "drainage_mm", 0.0)
        _above(out, "return_period_years", 0.0)
        _above(out, "duration_min", 0.0)
        _above(out, "climate_factor", 0.0)
    elif kind == "sealevel":
        if ("level_m" in out) == ("year" in out):
            raise InvalidInput("give either level_m or year", field="level_m")
        if "level_m" in out and ({"climate_scenario", "surge_return_period"} & set(out)):
            raise InvalidInput("climate_scenario and surge_return_period go with year",
                               field="level_m")  # fmt: skip
        if "year" in out:
            out["year"] = int(out["year"])
            out.setdefault("climate_scenario", DEFAULT_SEA_SCENARIO)
            surge = int(out.setdefault("surge_return_period", 0))
            if surge not in SURGES:
                raise InvalidInput("must be 0, 20 or 100 (years)", field="surge_return_period")
            out["surge_return_period"] = surge
        if "level_m" in out and not -10.0 <= out["level_m"] <= 50.0:
            raise InvalidInput("must lie between -10 and 50 m", field="level_m")
    if "min_depth_m" in out:
        _at_least(out, "min_depth_m", 0.0)
    if "min_area_m2" in out:
        _at_least(out, "min_area_m2", 0.0)
    return out


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidInput("must be a number", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"must be a number, got {value!r}", field=name) from exc
    if not math.isfinite(number):
        raise InvalidInput("must be a finite number", field=name)
    return number


def _at_least(params: dict[str, Any], name: str, low: float) -> None:
    if name in params and params[name] < low:
        raise InvalidInput(f"must be >= {low:g}, got {params[name]:g}", field=name)


def _above(params: dict[str, Any], name: str, low: float) -> None:
    if name in params and params[name] <= low:
        raise InvalidInput(f"must be > {low:g}, got {params[name]:g}", field=name)


def sea_level_m(database: Database, year: int, scenario: str, surge_return_period: int) -> dict:
    """Mean sea level (plus a storm surge) for a year from the ingested scenarios.

    Linear between the years of the table, never extrapolated.

    Raises
    ------
    NotFound
        No sea-level scenarios ingested, or none of that name.
    InvalidInput
        A year outside the table.
    """
    column = SURGES[surge_return_period]
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.climate_sea_level_scenarios') IS NOT NULL")
        if not cur.fetchone()[0]:
            raise NotFound("no sea-level scenarios ingested (geoby ingest climate ...)",
                           field="year")  # fmt: skip
        cur.execute(
            "SELECT year, mean_sea_level_m, surge_20y_m, surge_100y_m "
            "FROM data.climate_sea_level_scenarios WHERE scenario = %s ORDER BY year",
            (scenario,),
        )
        rows = cur.fetchall()
        if not rows:
            cur.execute("SELECT DISTINCT scenario FROM data.climate_sea_level_scenarios")
            known = ", ".join(sorted(r[0] for r in cur.fetchall()))
            raise NotFound(f"no sea-level scenario {scenario!r}; ingested: {known}",
                           field="climate_scenario")  # fmt: skip
    years = np.array([r[0] for r in rows], float)
    if not years[0] <= year <= years[-1]:
        raise InvalidInput(f"year {year} lies outside the scenario's {years[0]:.0f}-"
                           f"{years[-1]:.0f}", field="year")  # fmt: skip
    index = {"surge_20y_m": 2, "surge_100y_m": 3}.get(column or "", 1)
    mean = float(np.interp(year, years, [float(r[1]) for r in rows]))
    total = float(np.interp(year, years, [float(r[index]) for r in rows]))
    return {"year": year, "climate_scenario": scenario, "mean_sea_level_m": round(mean, 4),
            "surge_return_period": surge_return_period, "level_m": round(total, 4)}  # fmt: skip


def resolve_inputs(database: Database, scenario: Scenario) -> dict[str, Any]:
    """The rain or sea level a scenario will use, looked up now (fails before a run).

    Raises
    ------
    InvalidInput, NotFound
        The terrain layer is not a raster, the IDF table or sea-level scenarios are
        missing, or the point lies outside them.
    """
    with database.connection("read") as conn:
        layer = catalog.get(conn, scenario.terrain_layer)
    if layer.kind != "raster":
        raise InvalidInput(f"layer '{layer.id}' is not a raster", field="terrain_layer")
    params = scenario.params
    if scenario.kind == "cloudburst" and "rain_mm" not in params:
        design = rain_depth_mm(database, params["return_period_years"], params["duration_min"],
                               params.get("climate_factor"), params.get("drainage_mm", 0.0))  # fmt: skip
        return {"rain": {k: getattr(design, k) for k in (
            "return_period_years", "duration_min", "idf_depth_mm", "climate_factor",
            "drainage_mm", "rain_mm")}}  # fmt: skip
    if scenario.kind == "cloudburst":
        return {"rain": {"rain_mm": params["rain_mm"]}}
    if scenario.kind == "sealevel" and "year" in params:
        return {"sea": sea_level_m(database, params["year"], params["climate_scenario"],
                                   params["surge_return_period"])}  # fmt: skip
    if scenario.kind == "sealevel":
        return {"sea": {"level_m": params["level_m"]}}
    return {}


def _hierarchy(terrain: np.ndarray, dem: Dem, key: str) -> Hierarchy:
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    built = depression_hierarchy(terrain, dem.nodata, dem.cell_area_m2)
    with _CACHE_LOCK:
        _CACHE[key] = built
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return built


def _terrain_key(database: Database, layer_id: str, edits: Edits) -> str:
    with database.connection("read") as conn:
        layer = catalog.get(conn, layer_id)
    stamp = layer.updated_at.isoformat() if layer.updated_at else ""
    return f"{layer_id}:{stamp}:{edits.key}"


def run(database: Database, scenario: Scenario, *, progress: Progress = _quiet) -> dict[str, Any]:
    """Run a scenario and store its layers.

    Parameters
    ----------
    database
        Terrain and inputs read as ``read``, results written as ``ingest``, buried
        assets read as ``admin`` (only their totals reach the summary).
    scenario
        What to run.
    progress
        Called with (percent, message) as the run goes.

    Returns
    -------
    dict
        The summary: id, parameters (as resolved: the design rain, the sea level),
        volumes and areas, exposure totals, and the ``layers`` written.
    """
    sid = scenario.id
    progress(2, "reading the terrain")
    dem = read_terrain_layer(database, scenario.terrain_layer)
    terrain = scenario.edits.apply(dem)
    summary: dict[str, Any] = {
        "scenario_id": sid, "kind": scenario.kind, "terrain_layer": scenario.terrain_layer,
        "parameters": scenario.params,
        "edits": {"barriers": len(scenario.edits.barriers),
                  "openings": len(scenario.edits.openings)},
        "cells": int(terrain.size), "cell_area_m2": dem.cell_area_m2,
    }  # fmt: skip
    runner = {"cloudburst": _cloudburst, "sealevel": _sealevel, "bluespots": _bluespots,
              "flowpaths": _flowpaths}[scenario.kind]  # fmt: skip
    try:
        summary |= runner(database, scenario, dem, terrain, summary, progress)
    except BaseException:  # a run cut off halfway leaves none of its layers (Ctrl-C too)
        log.warning("scenario %s failed; removing the layers it had written", sid)
        drop_layers(database, scenario.layer_ids())
        raise
    progress(100, "done")
    return json.loads(json.dumps(summary, default=plain))


def _layer(layer_id: str, title: str, summary: dict[str, Any], geometry_type: str,
           description: str) -> catalog.Layer:  # fmt: skip
    return catalog.Layer(
        id=layer_id, title=title, description=description, theme="analysis", kind="vector",
        table_schema="data", table_name=layer_id, geometry_type=geometry_type,
        storage_srid=STORAGE_EPSG, keywords=["flood", summary["kind"]],
        properties={"scenario": summary},
    )  # fmt: skip


def _raster_layer(layer_id: str, title: str, dem: Dem, summary: dict, unit: str,
                  description: str) -> catalog.Layer:  # fmt: skip
    return catalog.Layer(
        id=layer_id, title=title, description=description, theme="analysis", kind="raster",
        raster_path=f"flood/{layer_id}.tif", storage_srid=STORAGE_EPSG, extent=dem.bounds,
        vertical_datum=None, keywords=["flood", summary["kind"]],
        properties={"scenario": summary, "unit": unit},
    )  # fmt: skip


def _bluespots(database, scenario, dem, terrain, summary, progress) -> dict:  # noqa: ANN001
    progress(10, "finding depressions")
    key = _terrain_key(database, scenario.terrain_layer, scenario.edits)
    hierarchy = _hierarchy(terrain, dem, key)
    progress(60, "drawing bluespot polygons")
    frame = bluespot_polygons(
        hierarchy, dem.transform, dem.crs,
        min_depth=scenario.params.get("min_depth_m", DEFAULT_MIN_DEPTH_M),
        min_area_m2=scenario.params.get("min_area_m2", 0.0),
    )  # fmt: skip
    progress(85, f"storing {len(frame):,} bluespots")
    layer_id = f"flood_{scenario.id}_bluespots"
    store_frame(database, frame, _layer(
        layer_id, f"Bluespots {scenario.id}", summary, "MultiPolygon",
        "Depressions of the terrain (leaves and the top of each nested group) with depth, "
        "area, volume, pour point, spill target, catchment and the rain that fills them."))  # fmt: skip
    return {"depressions": hierarchy.count, "bluespots": len(frame), "layers": [layer_id]}


def _cloudburst(database, scenario, dem, terrain, summary, progress) -> dict:  # noqa: ANN001
    params = scenario.params
    rain = resolve_inputs(database, scenario)["rain"]
    progress(8, "finding depressions (kept for the next rain on this terrain)")
    key = _terrain_key(database, scenario.terrain_layer, scenario.edits)
    hierarchy = _hierarchy(terrain, dem, key)
    progress(45, f"fill-spill-merge of {rain['rain_mm']:g} mm")
    result = fill_spill_merge(terrain, hierarchy, rain["rain_mm"], dem.nodata, dem.cell_area_m2)
    progress(60, "depression fill state")
    fill = bluespot_polygons(hierarchy, dem.transform, dem.crs,
                             min_depth=params.get("min_depth_m", DEFAULT_MIN_DEPTH_M))  # fmt: skip
    ids = fill["depression_id"].to_numpy()
    fill["fill_fraction"] = result.fill_fraction[ids]
    fill["stored_m3"] = result.stored_by_depression_m3[ids]
    fill["water_level_m"] = result.water_level[ids]
    fill["state"] = np.where(fill["fill_fraction"] >= 1.0 - 1e-9, "full",
                             np.where(fill["fill_fraction"] > 0, "filling", "dry"))  # fmt: skip
    found = {"rain": rain, "rain_m3": result.rain_m3, "stored_m3": result.stored_m3,
             "lost_m3": result.lost_m3, "depressions": hierarchy.count,
             "full_depressions": int((fill["state"] == "full").sum())}  # fmt: skip
    extra = [(f"flood_{scenario.id}_bluespots", "Bluespot fill state", fill,
              "Each depression after the rain: fill fraction, water stored, water level, "
              "state (dry, filling, full).")]  # fmt: skip
    return found | _depth_results(database, scenario, dem, result.depth, summary | found,
                                  progress, extra)  # fmt: skip


def _sealevel(database, scenario, dem, terrain, summary, progress) -> dict:  # noqa: ANN001
    sea = resolve_inputs(database, scenario)["sea"]
    level = sea["level_m"]
    progress(10, f"flooding from the sea at {level:g} m")
    levels = flood_levels(terrain, None, dem.nodata)
    depth = connected_depth(terrain, levels, level, dem.nodata)
    naive = bathtub_depth(terrain, level, dem.nodata)
    wet, naive_wet = np.nan_to_num(depth) > 0, np.nan_to_num(naive) > 0
    found = {"sea": sea, "connected_area_m2": float(wet.sum()) * dem.cell_area_m2,
             "bathtub_area_m2": float(naive_wet.sum()) * dem.cell_area_m2,
             "protected_area_m2": float((naive_wet & ~wet).sum()) * dem.cell_area_m2,
             "connected_volume_m3": float(np.nansum(depth)) * dem.cell_area_m2}  # fmt: skip
    del levels, naive, wet, naive_wet
    return found | _depth_results(database, scenario, dem, depth, summary | found, progress, [])


def _depth_results(database, scenario, dem, depth, summary, progress, extra) -> dict:  # noqa: ANN001
    sid = scenario.id
    progress(70, "writing the water depth")
    depth_id = f"flood_{sid}_depth"
    store_raster(database, depth.astype("float32"), dem.transform, dem.crs, _raster_layer(
        depth_id, f"Water depth, {scenario.kind} {sid}", dem, summary, "m",
        "Water depth (m) of a flood scenario; 0 where dry."))  # fmt: skip
    progress(78, "flooded areas by depth class")
    flooded = flooded_polygons(depth, dem.transform, dem.crs, DEPTH_CLASSES)
    layers = [depth_id]
    items = [(f"flood_{sid}_flooded", "Flooded areas by depth class", flooded,
              "Flooded areas, one polygon per depth class (m).")] + extra  # fmt: skip
    for layer_id, title, frame, text in items:
        store_frame(database, frame, _layer(layer_id, f"{title} {sid}", summary,
                                            "MultiPolygon", text))  # fmt: skip
        layers.append(layer_id)
    progress(88, "exposed buildings, roads and buried assets")
    exposed = exposure_mod.exposure(database, depth, dem.transform, nodata=dem.nodata)
    open_layer, assets = exposure_mod.store_exposure(
        database, exposed, f"flood_exposure_{sid}", f"Exposure, {scenario.kind} {sid}",
        properties={"scenario_id": sid},
    )  # fmt: skip
    wet = np.nan_to_num(depth) > 0
    return {
        "wet_area_m2": float(wet.sum()) * dem.cell_area_m2,
        "max_depth_m": float(np.nanmax(depth)) if wet.any() else 0.0,
        "exposure": exposed.totals,
        "layers": [*layers, open_layer.id, assets.id],
    }


def _flowpaths(database, scenario, dem, terrain, summary, progress) -> dict:  # noqa: ANN001
    sid = scenario.id
    progress(10, "flow directions")
    directions = d8_directions(terrain, dem.nodata)
    progress(40, "flow accumulation")
    accumulation = flow_accumulation(directions, dem.nodata)
    min_area = scenario.params.get("min_area_m2", DEFAULT_FLOWPATH_AREA_M2)
    min_cells = max(1.0, min_area / dem.cell_area_m2)
    progress(60, "main flow paths")
    lines = flow_paths(accumulation, directions, dem.transform, min_cells)
    acc_id, paths_id = f"flood_{sid}_flowacc", f"flood_{sid}_flowpaths"
    store_raster(database, accumulation.astype("float32"), dem.transform, dem.crs, _raster_layer(
        acc_id, f"Flow accumulation {sid}", dem, summary, "cells",
        "Number of cells draining through each cell (D8 on the filled terrain)."))  # fmt: skip
    inverse = ~dem.transform
    ends = [inverse @ line.coords[-1] for line in lines]
    upstream = [float(accumulation[int(r), int(c)]) * dem.cell_area_m2 for c, r in ends]
    frame = gpd.GeoDataFrame({"upstream_area_m2": np.asarray(upstream, float),
                              "length_m": np.asarray([g.length for g in lines], float)},
                             geometry=lines, crs=dem.crs)  # fmt: skip
    progress(85, f"storing {len(frame):,} flow paths")
    store_frame(database, frame, _layer(
        paths_id, f"Main flow paths {sid}", summary, "MultiLineString",
        f"Flow paths through cells draining at least {min_area:g} m2."))  # fmt: skip
    return {"flow_paths": len(frame), "layers": [acc_id, paths_id]}
