"""``geoby flood ...``: flood analyses.

File in, file out, no database (for researchers): ``fill``, ``bluespots``,
``cloudburst``, ``sealevel``, ``flowacc``. Each reads any DEM rasterio reads
(a geographic one is reprojected to its UTM zone with a warning, see
:mod:`flood.io`) and writes a Cloud-Optimised GeoTIFF (or a GeoPackage of
polygons), printing a one-line summary; an existing output is kept unless
``--overwrite`` is given. Every border cell and every cell next to nodata is an
outlet, as in RichDEM, so results compare cell by cell.

On the platform's terrain: ``geoby flood run KIND [-p NAME=VALUE ...]`` runs a
scenario (:mod:`flood.scenario`) against the database and stores its layers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np

log = logging.getLogger(__name__)

DEM = click.Path(exists=True, dir_okay=False, path_type=Path)
OUT = click.Path(dir_okay=False, writable=True, path_type=Path)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")


@click.group()
def flood() -> None:
    """Flood analyses: on a DEM file (fill, bluespots, cloudburst, sealevel, flowacc) or on
    the platform's terrain (run)."""


def _read(path: Path):  # noqa: ANN202 - flood.io.Dem
    from flood.io import read_dem

    return read_dem(path)


def _check(overwrite: bool, *outs: Path | None) -> None:
    for out in outs:
        if out is not None and out.exists() and not overwrite:
            raise click.UsageError(f"{out} exists; give --overwrite to replace it")


def _write(out: Path, array: np.ndarray, dem) -> None:  # noqa: ANN001 - flood.io.Dem
    from flood.io import write_cog

    write_cog(out, array, dem.transform, dem.crs)


@flood.command("fill")
@click.argument("dem", type=DEM)
@click.argument("out", type=OUT)
@click.option(
    "--tile",
    type=click.IntRange(min=16),
    metavar="CELLS",
    help="Fill tile by tile (Barnes 2016) on Dask, square tiles of CELLS, reading and "
    "writing window by window: for DEMs larger than memory. Equal to the "
    "in-memory fill; writes a tiled GeoTIFF.",
)
@click.option("--scheduler", metavar="ADDRESS",
              help="With --tile: a dask.distributed scheduler (tcp://host:8786); default a "
                   "local cluster of two workers.")  # fmt: skip
@overwrite_option
def fill(dem: Path, out: Path, tile: int | None, scheduler: str | None, overwrite: bool) -> None:
    """Fill every depression (Priority-Flood): OUT is the depression-free DEM."""
    from flood.fill import fill_depressions

    _check(overwrite, out)
    if tile is not None:
        _fill_tiled(dem, out, tile, scheduler)
        return
    if scheduler is not None:
        raise click.UsageError("--scheduler goes with --tile")
    d = _read(dem)
    filled = fill_depressions(d.array, d.nodata)
    _write(out, filled, d)
    raised = np.nan_to_num(filled - d.array, nan=0.0)
    click.echo(
        f"{out}: {d.array.size:,} cells, {int((raised > 0).sum()):,} raised, "
        f"fill volume {float(raised.sum()) * d.cell_area_m2:,.0f} m3"
    )


def _fill_tiled(dem: Path, out: Path, tile: int, scheduler: str | None) -> None:
    import time

    from flood.tiled import fill_depressions_tiled

    started = time.perf_counter()
    if scheduler is None:
        fill_depressions_tiled(dem, out, tile=(tile, tile))
    else:
        from dask.distributed import Client

        with Client(scheduler) as client:
            fill_depressions_tiled(dem, out, tile=(tile, tile), client=client)
    click.echo(f"{out}: filled tile by tile ({tile} x {tile} cells) in "
               f"{time.perf_counter() - started:.1f} s")  # fmt: skip


@flood.command("bluespots")
@click.argument("dem", type=DEM)
@click.argument("out", type=OUT)
@click.option("--min-depth", default=0.0, show_default=True, help="Leave out shallower spots (m).")
@click.option("--min-area", default=0.0, show_default=True, help="Leave out smaller spots (m2).")
@overwrite_option
def bluespots(dem: Path, out: Path, min_depth: float, min_area: float, overwrite: bool) -> None:
    """Every depression with depth, area, volume, pour point, spill target, catchment and
    the rain that fills it, leaves and nested groups: OUT (GeoPackage)."""
    from flood.bluespots import bluespot_polygons
    from flood.depressions import depression_hierarchy

    if min_depth < 0 or min_area < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--min-depth/--min-area")
    _check(overwrite, out)
    d = _read(dem)
    hierarchy = depression_hierarchy(d.array, d.nodata, d.cell_area_m2)
    frame = bluespot_polygons(hierarchy, d.transform, d.crs, min_depth=min_depth,
                              min_area_m2=min_area)  # fmt: skip
    if out.exists():
        out.unlink()
    frame.to_file(out, driver="GPKG", layer="bluespots")
    click.echo(f"{out}: {len(frame):,} bluespots of {hierarchy.count:,} depressions")


@flood.command("cloudburst")
@click.argument("dem", type=DEM)
@click.argument("out", type=OUT)
@click.option("--rain-mm", type=float, required=True, help="Effective rain depth (mm).")
@overwrite_option
def cloudburst(dem: Path, out: Path, rain_mm: float, overwrite: bool) -> None:
    """Rain on every cell, fill-spill-merge: OUT is the water depth (m)."""
    from flood.depressions import depression_hierarchy
    from flood.fsm import fill_spill_merge

    if not rain_mm >= 0:
        raise click.BadParameter("must be 0 or more", param_hint="--rain-mm")
    _check(overwrite, out)
    d = _read(dem)
    hierarchy = depression_hierarchy(d.array, d.nodata, d.cell_area_m2)
    result = fill_spill_merge(d.array, hierarchy, rain_mm, d.nodata, d.cell_area_m2)
    _write(out, result.depth, d)
    wet = int((result.depth > 0).sum())
    click.echo(
        f"{out}: {rain_mm:g} mm on {d.array.size:,} cells: {result.stored_m3:,.0f} m3 stored, "
        f"{result.lost_m3:,.0f} m3 left the area, {wet:,} cells wet"
    )


@flood.command("sealevel")
@click.argument("dem", type=DEM)
@click.argument("out", type=OUT)
@click.option("--level", type=float, required=True, help="Sea level (m, the DEM's datum).")
@click.option("--barriers", type=DEM, help="Lines/polygons with a crest_height_m column.")
@click.option("--bathtub", type=OUT, help="Also write the naive bathtub depth here.")
@overwrite_option
def sealevel(dem: Path, out: Path, level: float, barriers: Path | None,
             bathtub: Path | None, overwrite: bool) -> None:  # fmt: skip
    """Flood only cells connected to the sea: OUT is the water depth (m)."""
    from flood.sealevel import bathtub_depth, burn_barriers, connected_depth, flood_levels

    _check(overwrite, out, bathtub)
    d = _read(dem)
    terrain = d.array
    if barriers is not None:
        terrain = burn_barriers(terrain, _barriers(barriers, d.crs), d.transform)
    levels = flood_levels(terrain, None, d.nodata)
    depth = connected_depth(terrain, levels, level, d.nodata)
    _write(out, depth, d)
    naive = bathtub_depth(terrain, level, d.nodata)
    if bathtub is not None:
        _write(bathtub, naive, d)
    connected = int((np.nan_to_num(depth) > 0).sum())
    tub = int((np.nan_to_num(naive) > 0).sum())
    click.echo(f"{out}: level {level:g} m floods {connected:,} cells connected to the sea "
               f"(bathtub: {tub:,})")  # fmt: skip


def _barriers(path: Path, crs) -> list:  # noqa: ANN001 - rasterio CRS
    import geopandas as gpd

    frame = gpd.read_file(path)
    if "crest_height_m" not in frame:
        raise click.BadParameter(f"{path} has no crest_height_m column", param_hint="--barriers")
    if frame.crs is None:
        raise click.BadParameter(f"{path} has no CRS", param_hint="--barriers")
    frame = frame.to_crs(crs)
    return list(zip(frame.geometry, frame["crest_height_m"].astype(float), strict=True))


@flood.command("flowacc")
@click.argument("dem", type=DEM)
@click.argument("out", type=OUT)
@overwrite_option
def flowacc(dem: Path, out: Path, overwrite: bool) -> None:
    """D8 flow accumulation on the filled DEM (cells draining through each cell, itself
    included)."""
    from flood.flow import d8_directions, flow_accumulation

    _check(overwrite, out)
    d = _read(dem)
    directions = d8_directions(d.array, d.nodata)
    accumulation = flow_accumulation(directions, d.nodata)
    _write(out, accumulation, d)
    click.echo(f"{out}: largest catchment {np.nanmax(accumulation):,.0f} cells")


@flood.command("run")
@click.argument("kind", type=click.Choice(["cloudburst", "sealevel", "bluespots", "flowpaths"]))
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A scenario parameter, e.g. -p return_period_years=100 -p duration_min=60, "
    "-p rain_mm=80, -p level_m=2.1, -p year=2100 -p surge_return_period=100.",
)
@click.option("--barriers", type=DEM, help="Lines/polygons with a crest_height_m column.")
@click.option("--openings", type=DEM, help="Lines: culverts and passages.")
@click.option("--terrain", "terrain_layer", default="terrain_dtm", show_default=True,
              help="Raster layer of the catalog.")  # fmt: skip
def run_scenario(kind: str, params: tuple[str, ...], barriers: Path | None,
                 openings: Path | None, terrain_layer: str) -> None:  # fmt: skip
    """Run a KIND scenario on the platform's terrain and store its layers."""
    import json

    from tqdm import tqdm

    from flood.edits import Edits
    from flood.scenario import Scenario, run
    from layers.database import Database
    from layers.settings import get_settings

    values = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        values[name.strip()] = value.strip()
    edits = Edits.from_json({"barriers": _features(barriers, "crest_height_m"),
                             "openings": _features(openings, None)}, 25832)  # fmt: skip
    scenario = Scenario(kind, values, edits, terrain_layer)
    database = Database(get_settings())
    try:
        with tqdm(total=100, unit="%", disable=None, desc=f"{kind} {scenario.id}") as bar:

            def progress(percent: int, message: str) -> None:
                bar.set_postfix_str(message)
                bar.update(max(0, percent - bar.n))

            summary = run(database, scenario, progress=progress)
    finally:
        database.close()
    click.echo(json.dumps(summary, indent=2))


def _features(path: Path | None, column: str | None) -> list[dict]:
    import geopandas as gpd

    if path is None:
        return []
    frame = gpd.read_file(path)
    if column and column not in frame:
        raise click.BadParameter(f"{path} has no {column} column", param_hint=str(path))
    if frame.crs is None:
        raise click.BadParameter(f"{path} has no CRS", param_hint=str(path))
    frame = frame.to_crs(25832)
    return list(frame.__geo_interface__["features"])
