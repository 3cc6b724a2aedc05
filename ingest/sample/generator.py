"""Generate the whole sample town into a directory: :func:`generate`."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ingest.sample import plan
from ingest.sample.buildings import build_buildings
from ingest.sample.climate import write_climate
from ingest.sample.dem import NODATA, tile_name, write_dem
from ingest.sample.energy import write_energy
from ingest.sample.ler_gml import write_ler_gml
from ingest.sample.manifest import MANIFEST_NAME, FileEntry, write_manifest
from ingest.sample.roads import Roads, build_roads, buildable_area
from ingest.sample.routes import MAX_ASSET_M
from ingest.sample.seeding import rng_for, uuids
from ingest.sample.sewers import COVER_M, MAX_DEPTH_M, MAX_PIPE_M, STORM_SHIFT, Sewers, build_sewers
from ingest.sample.terrain import TerrainModel
from ingest.sample.utilities import OWNERS, UtilityNetworks, build_utilities
from ingest.sample.waste import build_waste, write_waste
from ingest.sample.waste_sensors import DAYS, READ_EVERY, STEP_MIN
from ingest.sample.waste_sensors import START as WASTE_START
from ingest.sample.water import coastline_frame, lakes_frame, streams_frame
from ingest.sample.writers import to_world, write_gpkg
from layers.errors import InvalidInput

logger = logging.getLogger(__name__)

SIZES = tuple(plan.RESOLUTIONS)


class SampleError(InvalidInput):
    """The sample cannot be generated as asked (bad argument or target)."""


class SampleSizeError(SampleError):
    """An unknown sample size was asked for."""


class SampleExistsError(SampleError, FileExistsError):
    """The target directory is not empty and ``overwrite`` was not given."""


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SampleExistsError(f"sample target {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise SampleExistsError(
                f"sample target {str(out)!r} is not empty; pass overwrite=True to replace the sample in it"
            )
        old = out / MANIFEST_NAME
        if old.is_file():
            for rec in json.loads(old.read_text(encoding="utf-8")).get("files", []):
                (out / rec["path"]).unlink(missing_ok=True)
            old.unlink()
        for gfs in (out / "utilities").glob("*.gfs"):
            gfs.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _design(model: TerrainModel) -> dict[str, Any]:
    """Where the designed flood features are (EPSG:25832), for tests and demos."""
    e0, n0 = plan.ORIGIN_E, plan.ORIGIN_N
    bowls = []
    for group, level in zip(plan.BOWL_GROUPS, model.group_levels, strict=True):
        for bowl in group.bowls:
            bowls.append(
                {
                    "group": group.name,
                    "easting": e0 + bowl.u,
                    "northing": n0 + bowl.v,
                    "radius_m": bowl.radius,
                    "extra_depth_m": bowl.depth,
                    "rim_level_m": round(level, 3),
                }
            )
    cu, cv = plan.POLDER_CENTRE
    return {
        "bluespots": bowls,
        "polder": {
            "easting": e0 + cu,
            "northing": n0 + cv,
            "semi_axes_m": list(plan.POLDER_AXES),
            "ground_level_m": plan.POLDER_LEVEL_M,
            "dike_crest_m": plan.DIKE_CREST_M,
        },
        "harbour": {
            "basin": [
                e0 + plan.HARBOUR_BASIN[0],
                n0 + plan.HARBOUR_BASIN[1],
                e0 + plan.HARBOUR_BASIN[2],
                n0 + plan.HARBOUR_BASIN[3],
            ],
            "basin_floor_m": plan.HARBOUR_FLOOR_M,
            "quay_level_m": plan.QUAY_LEVEL_M,
        },
        "sea": {
            "side": "east",
            "floor_m": plan.SEA_FLOOR_M,
            "beach_width_m": plan.BEACH_WIDTH_M,
            "low_zone_width_m": plan.LOW_ZONE_WIDTH_M,
        },
        "lakes": {name: round(level, 3) for name, level in model.lake_levels.items()},
    }


def _parameters() -> dict[str, Any]:
    """Generation parameters that are not obvious from the files."""
    return {
        "terrain": {
            "tile_grid": "1 km, lower-left corner names",
            "heights": "cell centres of a continuous function",
        },
        "roads": {"noding_grid_m": 0.01, "junction_merge_m": 3.0},
        "sewers": {
            "min_cover_m": COVER_M,
            "max_pipe_length_m": MAX_PIPE_M,
            "pumping_station_below_m": MAX_DEPTH_M,
            "storm_offset_m": list(STORM_SHIFT),
        },
        "utilities": {
            "max_asset_length_m": MAX_ASSET_M,
            "depth_unknown": "null",
            "gml": "LER 2.1 structure, 2-D EPSG:25832",
        },
        "climate": {
            "rain_interval_min": 10,
            "rain_resolution_mm": 0.2,
            "timestamps": "interval start, UTC",
        },
        "energy": {"interval": "1 h", "timestamps": "hour start, UTC", "compression": "gzip"},
        "waste": {
            "start": WASTE_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days": DAYS,
            "simulation_step_min": STEP_MIN,
            "reading_interval_min": STEP_MIN * READ_EVERY,
        },
    }


def _base_and_water(
    out: Path, model: TerrainModel, roads: Roads, buildings: gpd.GeoDataFrame, sewers: Sewers
) -> list[FileEntry]:
    counts = write_gpkg(out / "buildings.gpkg", [("buildings", to_world(buildings))])
    entries = [
        FileEntry(
            "buildings.gpkg",
            "base",
            "GPKG",
            "building footprints with use, area, heating, address",
            layers=counts,
        )
    ]
    counts = write_gpkg(out / "roads.gpkg", [("roads", to_world(roads.segments))])
    entries.append(FileEntry("roads.gpkg", "base", "GPKG", "noded road network", layers=counts))
    layers = [
        ("streams", to_world(streams_frame(model))),
        ("lakes", to_world(lakes_frame(model))),
        ("coastline", to_world(coastline_frame())),
        ("sewer_pipes", to_world(sewers.pipes)),
        ("manholes", to_world(sewers.manholes)),
    ]
    counts = write_gpkg(out / "water.gpkg", layers)
    entries.append(
        FileEntry(
            "water.gpkg",
            "water",
            "GPKG",
            "streams, lakes, coastline, sewers and manholes",
            layers=counts,
        )
    )
    return entries


def _utilities(out: Path, seed: int, networks: UtilityNetworks) -> list[FileEntry]:
    d = out / "utilities"
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    answer_ids = uuids(rng_for(seed, "utilities.answers"), len(OWNERS))
    for owner, answer in zip(OWNERS, answer_ids, strict=True):
        lines, points = to_world(networks.lines[owner.slug]), to_world(networks.points[owner.slug])
        contact = pd.DataFrame(
            [
                {
                    "slug": owner.slug,
                    "name": owner.name,
                    "email": owner.email,
                    "phone": owner.phone,
                    "notify_by": "email",
                }
            ]
        )
        counts = write_gpkg(
            d / f"{owner.slug}.gpkg", [("lines", lines), ("points", points), ("owner", contact)]
        )
        entries.append(
            FileEntry(
                f"utilities/{owner.slug}.gpkg",
                "utilities",
                "GPKG",
                f"networks of {owner.name}",
                layers=counts,
            )
        )
        n = write_ler_gml(d / f"{owner.slug}.gml", owner, answer, lines, points)
        entries.append(
            FileEntry(
                f"utilities/{owner.slug}.gml",
                "utilities",
                "GML",
                f"networks of {owner.name}, LER 2 GML",
                rows=n,
            )
        )
    return entries


def generate(
    out: Path,
    *,
    size: str = "small",
    seed: int = 42,
    progress: bool | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generate the fictional sample municipality into ``out``.

    Parameters
    ----------
    out
        Target directory; created if missing, refused if not empty unless
        ``overwrite`` is true.
    size
        ``"small"`` (4 m DEM), ``"medium"`` (1.6 m) or ``"large"`` (0.5 m);
        everything but the DEM resolution is the same for all sizes.
    seed
        Seed of every random choice; the same seed and size give
        byte-identical files.
    progress
        Progress bars: ``True``, ``False`` or ``None`` (only on a terminal).
    overwrite
        Replace the sample files in a non-empty ``out``.

    Returns
    -------
    dict
        The manifest, as written to ``out / "manifest.json"``.

    Raises
    ------
    SampleSizeError
        For an unknown ``size`` (a ``ValueError``).
    SampleExistsError
        When ``out`` is not empty and ``overwrite`` is false.
    """
    if size not in plan.RESOLUTIONS:
        raise SampleSizeError(f"unknown sample size {size!r}; expected one of {', '.join(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SampleError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out)
    _prepare(out, overwrite)
    started = time.perf_counter()
    model = TerrainModel.build(seed)
    entries = write_dem(out, model, plan.RESOLUTIONS[size], progress)
    streams = [s.line for s in model.streams]
    roads = build_roads(seed, streams)
    buildings = build_buildings(seed, roads, buildable_area(streams))
    sewers = build_sewers(seed, roads, model)
    entries += _base_and_water(out, model, roads, buildings, sewers)
    entries += _utilities(out, seed, build_utilities(seed, roads, buildings, sewers))
    entries += write_climate(out, seed)
    entries += write_energy(out, seed, buildings, progress)
    waste_entries, defects = write_waste(out, seed, build_waste(seed, roads, buildings))
    entries += waste_entries
    cell = plan.RESOLUTIONS[size]
    header = {
        "generator": "geoby ingest.sample",
        "manifest_version": 1,
        "town": plan.TOWN_NAME,
        "municipality": plan.MUNICIPALITY,
        "fictional": True,
        "seed": seed,
        "size": size,
        "crs": plan.CRS,
        "vertical_datum": plan.VERTICAL_DATUM,
        "extent": {
            "minx": plan.ORIGIN_E,
            "miny": plan.ORIGIN_N,
            "maxx": plan.ORIGIN_E + plan.EXTENT_M,
            "maxy": plan.ORIGIN_N + plan.EXTENT_M,
        },
        "resolution_m": cell,
        "dem": {
            "tile_size_m": plan.TILE_M,
            "cells_per_side": int(round(plan.TILE_M / cell)),
            "nodata": NODATA,
            "naming": tile_name(0, 0).replace("0_0", "{northing_km}_{easting_km}") + ".tif",
        },
        "year": plan.YEAR,
        "families": {
            "base": "buildings and roads",
            "terrain": "DEM",
            "water": "streams, lakes, coastline, sewers",
            "climate": "rain, IDF, sea level",
            "energy": "consumption and temperature",
            "waste": "bins, sensors, collections, fleet",
            "utilities": "buried networks per owner",
        },
        "owners": [
            {"slug": o.slug, "name": o.name, "email": o.email, "phone": o.phone} for o in OWNERS
        ],
        "parameters": _parameters(),
        "design": _design(model),
        "waste_defects": defects,
    }
    manifest = write_manifest(out, header, entries)
    logger.info(
        "sample %s (seed %d) written to %s in %.1f s",
        size,
        seed,
        out,
        time.perf_counter() - started,
    )
    return manifest
