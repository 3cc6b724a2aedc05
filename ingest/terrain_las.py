"""A terrain model gridded from the ground points of LAS/LAZ point clouds.

:func:`grid_las` reads the ground points (ASPRS class 2, or the classes
given) of one or more LAS/LAZ files with laspy, grids them and writes a
float32 GeoTIFF that :mod:`ingest.terrain_cog` turns into the layer's COG.

How the grid is made, and why
-----------------------------
1. The points are binned to cells of ``resolution`` metres (aligned to whole
   multiples of it) and each occupied cell keeps the mean position and height
   of its points (``numpy.bincount``: one vectorised pass, any density).
2. A linear TIN (``scipy.interpolate.LinearNDInterpolator`` on a Delaunay
   triangulation) of those cell means is evaluated at every cell centre.
   Linear TIN interpolation is what the Danish height model itself uses for
   its DTM, it fills the cells without points (under buildings, in water,
   between sparse returns) without overshooting, and triangulating cell means
   instead of raw points bounds its cost by the number of cells, not points.
   Cells outside the convex hull of the ground points stay nodata.
3. With a ``geoid`` grid (e.g. ``dkgeoid13b_utm32.tif``), ellipsoidal heights
   become DVR90 heights: the geoid undulation, interpolated bilinearly at the
   cell centre, is subtracted. The geoid must cover every cell with a height.

Without ``resolution`` the grid is the "round" spacing (0.25, 0.4, 0.5, 1,
2, 2.5, 5, 10, 20, 25, 50 or 100 m) nearest to the mean spacing of the ground
points. The ground points are held in memory (24 bytes each).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import laspy
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import from_origin, xy
from rasterio.warp import reproject

from ingest.terrain_cog import NODATA, Tile, check_plausible, file_crs, open_tile, same_crs
from layers.errors import InvalidInput
from layers.progress import progress

log = logging.getLogger(__name__)

GROUND = (2,)
CHUNK_POINTS = 2_000_000
ROUND_SPACINGS = (0.25, 0.4, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0)
_ROWS_PER_STEP = 256


@dataclass
class GriddedLas:
    """The DTM gridded from point clouds."""

    tile: Tile
    points_per_file: dict[str, int]
    resolution: float
    geoid_applied: bool
    warnings: list[str] = field(default_factory=list)


def grid_las(
    paths: list[Path],
    dst: Path,
    *,
    assumed_crs: str | None = None,
    resolution: float | None = None,
    geoid: Path | None = None,
    classes: tuple[int, ...] = GROUND,
    show_progress: bool | None = None,
) -> GriddedLas:
    """Grid the ground points of ``paths`` into a float32 GeoTIFF at ``dst``.

    Parameters
    ----------
    paths
        LAS or LAZ files in one CRS; their points form one surface.
    dst
        The GeoTIFF to write.
    assumed_crs
        CRS of files whose header declares none (``--crs``).
    resolution
        Cell size in metres; by default derived from the point density.
    geoid
        Geoid grid (GeoTIFF of undulations in metres) to turn ellipsoidal
        heights into orthometric ones; none: heights are kept as they are.
    classes
        ASPRS classes taken as ground.
    show_progress
        Progress bars: ``None`` shows them on a terminal only.

    Raises
    ------
    InvalidInput
        A file that is not LAS/LAZ, holds no points or no ground points, a
        geoid grid that does not cover the points.
    CRSMismatch
        No CRS and no ``--crs``, files in different CRSs, implausible coordinates.
    """
    crs, points, counts = _ground_points(paths, assumed_crs, classes, show_progress)
    res = resolution or _round_spacing(points)
    transform, width, height, cells = _bin(points, res)
    heights = _tin(cells, transform, width, height, show_progress)
    gridded = GriddedLas(None, counts, res, geoid is not None)  # type: ignore[arg-type]
    if geoid is not None:
        heights -= _geoid_on_grid(geoid, crs, transform, width, height, heights)
    else:
        gridded.warnings.append(
            f"heights of {', '.join(counts)} are kept as they are: no geoid grid was given "
            "(LAS heights are often ellipsoidal; pass --option geoid=PATH to get DVR90)"
        )
    heights[np.isnan(heights)] = NODATA
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": 1, "width": width, "height": height,
        "crs": crs, "transform": transform, "nodata": NODATA, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3,
    }  # fmt: skip
    with rasterio.open(dst, "w", **profile) as out:
        out.write(heights.astype(np.float32), 1)
    name = paths[0].name if len(paths) == 1 else f"{len(paths)} point clouds"
    gridded.tile = open_tile(dst, name=name)
    return gridded


def _ground_points(paths, assumed_crs, classes, show_progress):
    """x, y, z of the ground points of every file (one CRS), and the count per file."""
    crs: CRS | None = None
    parts, counts = [], {}
    for path in paths:
        name = path.name
        try:
            with laspy.open(path) as reader:
                header = reader.header
                file_crs_ = file_crs(name, _header_crs(header), assumed_crs)
                if header.point_count == 0:
                    raise InvalidInput(f"{name} holds no points", record=name)
                chunks = math.ceil(header.point_count / CHUNK_POINTS)
                found, all_classes = [], set()
                for chunk in progress(reader.chunk_iterator(CHUNK_POINTS), total=chunks,
                                      desc=f"{name} ground points", unit="chunk",
                                      enabled=show_progress):  # fmt: skip
                    klass = np.asarray(chunk.classification)
                    all_classes.update(np.unique(klass).tolist())
                    keep = np.isin(klass, classes)
                    found.append(np.column_stack([np.asarray(chunk.x)[keep],
                                                  np.asarray(chunk.y)[keep],
                                                  np.asarray(chunk.z)[keep]]))  # fmt: skip
        except (laspy.errors.LaspyException, OSError, ValueError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"{name} is not a LAS/LAZ point cloud geoby can read ({exc})",
                               record=name, field="file") from exc  # fmt: skip
        points = np.concatenate(found)
        if len(points) == 0:
            raise InvalidInput(
                f"{name} holds {header.point_count:,} points but none of class "
                f"{'/'.join(map(str, classes))} (ground); its classes are "
                f"{sorted(all_classes)}: classify ground points first, or name the ground "
                "classes with --option classes=...",
                record=name, field="classification",
            )  # fmt: skip
        if crs is not None and not same_crs(crs, file_crs_):
            raise InvalidInput(f"{name} is in {file_crs_.to_string()}, the other point clouds "
                               f"in {crs.to_string()}", record=name, field="crs")  # fmt: skip
        crs = file_crs_
        lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
        check_plausible(name, crs, (lo[0], lo[1], hi[0], hi[1]))
        parts.append(points)
        counts[name] = len(points)
    return crs, np.concatenate(parts), counts


def _header_crs(header: laspy.LasHeader) -> CRS | None:
    try:
        parsed = header.parse_crs()
    except Exception:  # noqa: BLE001 - a broken CRS record counts as none
        log.warning("the CRS record of a LAS header could not be read; taken as missing")
        return None
    return CRS.from_wkt(parsed.to_wkt()) if parsed is not None else None


def _round_spacing(points: np.ndarray) -> float:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    spacing = math.sqrt(max(float(np.prod(hi - lo)), 1.0) / len(points))
    return min(ROUND_SPACINGS, key=lambda s: abs(math.log(s / spacing)))


def _bin(points: np.ndarray, res: float):
    """The grid covering the points, and the mean point of every occupied cell."""
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    x0, y1 = math.floor(lo[0] / res) * res, math.ceil(hi[1] / res) * res
    width = max(1, math.ceil((hi[0] - x0) / res))
    height = max(1, math.ceil((y1 - lo[1]) / res))
    col = np.clip(((points[:, 0] - x0) / res).astype(np.int64), 0, width - 1)
    row = np.clip(((y1 - points[:, 1]) / res).astype(np.int64), 0, height - 1)
    index = row * width + col
    n = np.bincount(index, minlength=width * height)
    occupied = n > 0
    means = np.column_stack([
        np.bincount(index, weights=points[:, k], minlength=width * height)[occupied]
        for k in range(3)
    ]) / n[occupied, None]  # fmt: skip
    return from_origin(x0, y1, res, res), width, height, means


def _tin(cells: np.ndarray, transform, width: int, height: int, show_progress) -> np.ndarray:
    """Linear TIN of the cell means evaluated at every cell centre (NaN outside)."""
    from scipy.interpolate import LinearNDInterpolator
    from scipy.spatial import QhullError

    try:
        tin = LinearNDInterpolator(cells[:, :2], cells[:, 2])
    except (QhullError, ValueError) as exc:
        raise InvalidInput(
            f"the {len(cells)} occupied cells of ground points cannot be triangulated "
            "(too few, or all on one line); use a finer --option resolution",
            field="resolution",
        ) from exc  # fmt: skip
    xs = transform.c + (np.arange(width) + 0.5) * transform.a
    out = np.empty((height, width), dtype=np.float64)
    steps = range(0, height, _ROWS_PER_STEP)
    for top in progress(steps, total=len(steps), desc="gridding", unit="block",
                        enabled=show_progress):  # fmt: skip
        rows = np.arange(top, min(top + _ROWS_PER_STEP, height))
        ys = transform.f + (rows + 0.5) * transform.e
        gx, gy = np.meshgrid(xs, ys)
        out[rows] = tin(gx, gy)
    return out


def _geoid_on_grid(geoid: Path, crs: CRS, transform, width, height, heights) -> np.ndarray:
    """The geoid undulation at every cell centre (bilinear), checked to cover the data."""
    name = geoid.name
    try:
        with rasterio.open(geoid) as src:
            undulation = np.full((height, width), np.nan)
            reproject(
                rasterio.band(src, 1), undulation, src_nodata=src.nodata,
                dst_transform=transform, dst_crs=crs, dst_nodata=np.nan,
                resampling=Resampling.bilinear,
            )  # fmt: skip
    except RasterioError as exc:
        raise InvalidInput(f"geoid grid {name} is not a raster geoby can read ({exc})",
                           record=name, field="geoid") from exc  # fmt: skip
    uncovered = np.isnan(undulation) & ~np.isnan(heights)
    if uncovered.any():
        row, col = np.argwhere(uncovered)[0]
        x, y = xy(transform, row, col)
        raise InvalidInput(f"geoid grid {name} does not cover the point cloud, e.g. at "
                           f"({x:.1f}, {y:.1f})", record=name, field="geoid")  # fmt: skip
    return undulation
