"""Checks of loaded sewer levels against the terrain and against themselves.

After a sewer load, each pipe end whose invert lies above the terrain is
reported, where the catalog holds a terrain raster layer (theme
``terrain``) whose vertical datum is DVR90. The terrain's COG is sampled
with rasterio at the pipe ends (the cell under each end, no
interpolation); ends outside every terrain layer or on nodata are not
judged. (Sampling the COG directly is used rather than
``geoby.terrain_height`` in SQL: an out-db ``ST_Value`` costs about 8 ms
per point, 11 s for the sample town's 1,400 pipes.) A manhole whose invert
lies above its own rim is reported too. These are warnings, not refusals: a
terrain model and a pipe survey differ in date and accuracy, and the owner
of the network decides.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ingest.source import SourceFile
from layers import catalog
from layers.crs import STORAGE_EPSG, VERTICAL_DATUM, transformer
from layers.database import Database

log = logging.getLogger(__name__)

SHOWN = 10
#: Terrain cells are averages; an invert this close to the surface is not reported.
TOLERANCE_M = 0.05


def terrain_rasters(conn, data_dir: Path) -> list[tuple[str, Path]]:
    """Terrain layers in DVR90 with the path of their raster, in id order."""
    found = []
    for layer in catalog.list_layers(conn, theme="terrain"):
        datum = (layer.vertical_datum or "").upper()
        if layer.kind != "raster" or not layer.raster_path or VERTICAL_DATUM not in datum:
            continue
        path = Path(layer.raster_path)
        found.append((layer.id, path if path.is_absolute() else data_dir / path))
    return found


def terrain_heights(rasters: list[tuple[str, Path]], xy: np.ndarray) -> tuple[np.ndarray, list]:
    """Height under each point (EPSG:25832) from the first raster that has one, else NaN."""
    heights = np.full(len(xy), np.nan)
    names: list[str | None] = [None] * len(xy)
    for layer_id, path in rasters:
        todo = np.flatnonzero(np.isnan(heights))
        if not todo.size:
            break
        try:
            dataset = rasterio.open(path)
        except RasterioIOError as exc:
            log.warning("terrain layer %s cannot be read (%s); not compared", layer_id, exc)
            continue
        with dataset:
            x, y = xy[todo, 0], xy[todo, 1]
            if dataset.crs and dataset.crs.to_epsg() != STORAGE_EPSG:
                x, y = transformer(STORAGE_EPSG, dataset.crs.to_wkt()).transform(x, y)
            b = dataset.bounds
            inside = (x >= b.left) & (x < b.right) & (y > b.bottom) & (y <= b.top)
            if not inside.any():
                continue
            points = list(zip(np.asarray(x)[inside], np.asarray(y)[inside], strict=True))
            values = np.ma.vstack(list(dataset.sample(points, indexes=1, masked=True)))
            values = np.ma.filled(values.astype(float), np.nan).reshape(-1)
            for i, value in zip(todo[inside], values, strict=True):
                if np.isfinite(value):
                    heights[i], names[i] = value, layer_id
    return heights, names


def invert_warnings(database: Database, source: SourceFile) -> list[str]:
    """Warnings for pipe ends of ``source`` whose invert lies above the terrain."""
    query = (resources.files("ingest") / "sql" / "water_pipe_ends.sql").read_text()
    with database.connection("ingest") as conn:
        rasters = terrain_rasters(conn, Path(database.settings.data_dir))
        if not rasters:
            return []
        with conn.cursor() as cur:
            cur.execute(query, {"source": source.label})
            ends = cur.fetchall()
    if not ends:
        return []
    xy = np.array([(e[4], e[5]) for e in ends], dtype=float)
    heights, names = terrain_heights(rasters, xy)
    invert = np.array([e[3] for e in ends], dtype=float)
    above = np.flatnonzero(np.isfinite(heights) & (invert > heights + TOLERANCE_M))
    found = [
        f"{source.name}: pipe {ends[i][0]} (record {ends[i][1]}) {ends[i][2]} invert "
        f"{invert[i]:.2f} m lies {invert[i] - heights[i]:.2f} m above the terrain "
        f"({heights[i]:.2f} m {VERTICAL_DATUM} in {names[i]})"
        for i in above[:SHOWN]
    ]
    return _summarised(found, len(above), source, "pipe ends have an invert above the terrain")


def manhole_warnings(database: Database, source: SourceFile) -> list[str]:
    """Warnings for manholes of ``source`` whose invert lies above their rim."""
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT manhole_id, _record, invert_level_m, rim_level_m, count(*) OVER ()"
            " FROM data.water_manholes WHERE _source = %s AND invert_level_m > rim_level_m"
            " ORDER BY fid LIMIT %s",
            (source.label, SHOWN),
        )
        rows = cur.fetchall()
    found = [
        f"{source.name}: manhole {mid} (record {record}) has its invert {inv:.2f} m above "
        f"its rim {rim:.2f} m"
        for mid, record, inv, rim, _ in rows
    ]
    total = rows[0][-1] if rows else 0
    return _summarised(found, total, source, "manholes have their invert above their rim")


def _summarised(found: list[str], total: int, source: SourceFile, what: str) -> list[str]:
    if total > len(found):
        found = [*found, f"{source.name}: {total} {what}; the first {len(found)} are listed"]
    for warning in found:
        log.warning("%s", warning)
    return found
