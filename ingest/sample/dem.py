"""The terrain model as files: DHM-style GeoTIFF tiles plus ASCII and XYZ.

Tiles are 1 km x 1 km float32 GeoTIFFs named like the Danish height model
(``DTM_1km_{northing_km}_{easting_km}.tif``, lower-left corner in km),
tiled 256 x 256, deflate with the floating-point predictor, nodata -9999.
Each tile is computed and written on its own, so memory stays at a few
hundred MB even at 0.5 m (2000 x 2000 cells a tile). One tile is also
written coarsely (10 m) as an ESRI ASCII grid with a ``.prj`` and another as
an XYZ point file, for readers of those formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS
from pyproj.enums import WktVersion
from rasterio.transform import from_origin

from ingest.sample import plan
from ingest.sample.manifest import FileEntry
from ingest.sample.terrain import TerrainModel
from layers.progress import progress

NODATA = -9999.0
ASC_TILE = (723, 6172)  # the harbour tile: quays, basin, beach and sea
XYZ_TILE = (722, 6172)  # the old town and its bluespots
COARSE_M = 10.0


def tile_name(easting_km: int, northing_km: int) -> str:
    """DHM-style file stem of the tile whose lower-left corner is given in km."""
    return f"DTM_1km_{northing_km}_{easting_km}"


def tiles() -> list[tuple[int, int]]:
    """``(easting_km, northing_km)`` of every tile, south-west first."""
    n = plan.EXTENT_M // plan.TILE_M
    e0, n0 = plan.ORIGIN_E // 1000, plan.ORIGIN_N // 1000
    return [(e0 + i, n0 + j) for j in range(n) for i in range(n)]


def tile_heights(model: TerrainModel, easting_km: int, northing_km: int, cell: float) -> np.ndarray:
    """Heights at the cell centres of one tile, north row first, float32."""
    n = int(round(plan.TILE_M / cell))
    u0 = easting_km * 1000 - plan.ORIGIN_E
    v_top = northing_km * 1000 + plan.TILE_M - plan.ORIGIN_N
    u = u0 + (np.arange(n) + 0.5) * cell
    v = v_top - (np.arange(n) + 0.5) * cell
    return model.height_local(u[None, :], v[:, None]).astype(np.float32)


def _write_tif(
    path: Path, heights: np.ndarray, easting_km: int, northing_km: int, cell: float
) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "width": heights.shape[1],
        "height": heights.shape[0],
        "crs": plan.CRS,
        "transform": from_origin(easting_km * 1000, northing_km * 1000 + plan.TILE_M, cell, cell),
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 3,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights, 1)
        dst.update_tags(VERTICAL_DATUM=plan.VERTICAL_DATUM, UNITS="metre")


def _write_asc(path: Path, heights: np.ndarray, easting_km: int, northing_km: int) -> None:
    n = heights.shape[0]
    head = (
        f"ncols {n}\nnrows {n}\nxllcorner {easting_km * 1000}\nyllcorner {northing_km * 1000}\n"
        f"cellsize {COARSE_M:g}\nNODATA_value {NODATA:g}\n"
    )
    body = "\n".join(" ".join(f"{z:.2f}" for z in row) for row in heights) + "\n"
    path.write_text(head + body, encoding="ascii")
    wkt = CRS.from_user_input(plan.CRS).to_wkt(WktVersion.WKT1_ESRI)
    path.with_suffix(".prj").write_text(wkt, encoding="ascii")


def _write_xyz(path: Path, heights: np.ndarray, easting_km: int, northing_km: int) -> None:
    n = heights.shape[0]
    xs = easting_km * 1000 + (np.arange(n) + 0.5) * COARSE_M
    ys = northing_km * 1000 + plan.TILE_M - (np.arange(n) + 0.5) * COARSE_M
    lines = [
        f"{x:.2f} {y:.2f} {z:.2f}"
        for y, row in zip(ys, heights, strict=True)
        for x, z in zip(xs, row, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def write_dem(out: Path, model: TerrainModel, cell: float, enabled: bool | None) -> list[FileEntry]:
    """Write the DEM tiles and the coarse ASCII and XYZ tiles.

    Parameters
    ----------
    out
        The sample's root directory.
    model
        The terrain.
    cell
        Resolution of the GeoTIFF tiles in metres (a divisor of 1000).
    enabled
        Progress bar switch, passed to :func:`layers.progress.progress`.

    Returns
    -------
    list of FileEntry
        One entry per file written.
    """
    d = out / "terrain"
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    all_tiles = tiles()
    for e_km, n_km in progress(
        all_tiles, total=len(all_tiles), desc="DEM tiles", unit="tile", enabled=enabled
    ):
        heights = tile_heights(model, e_km, n_km, cell)
        name = f"{tile_name(e_km, n_km)}.tif"
        _write_tif(d / name, heights, e_km, n_km, cell)
        entries.append(
            FileEntry(
                f"terrain/{name}",
                "terrain",
                "GTiff",
                "DTM tile, float32, m DVR90",
                rows=int(heights.size),
            )
        )
        del heights
    e_km, n_km = ASC_TILE
    stem = f"{tile_name(e_km, n_km)}_10m"
    _write_asc(d / f"{stem}.asc", tile_heights(model, e_km, n_km, COARSE_M), e_km, n_km)
    entries.append(
        FileEntry(
            f"terrain/{stem}.asc",
            "terrain",
            "AAIGrid",
            "DTM tile at 10 m, ESRI ASCII grid",
            rows=10_000,
        )
    )
    entries.append(
        FileEntry(f"terrain/{stem}.prj", "terrain", "prj", "CRS of the ASCII grid (ESRI WKT)")
    )
    e_km, n_km = XYZ_TILE
    stem = f"{tile_name(e_km, n_km)}_10m"
    _write_xyz(d / f"{stem}.xyz", tile_heights(model, e_km, n_km, COARSE_M), e_km, n_km)
    entries.append(
        FileEntry(
            f"terrain/{stem}.xyz",
            "terrain",
            "XYZ",
            "DTM tile at 10 m, x y z cell centres",
            rows=10_000,
        )
    )
    return entries
