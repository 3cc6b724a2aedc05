"""Raster terrain sources: open, check, mosaic, reproject and write one COG.

A terrain layer is built from one or more source grids (GeoTIFF, ESRI ASCII
grid, XYZ, any raster GDAL reads, or the DTM gridded from a point cloud by
:mod:`ingest.terrain_las`). :func:`open_tile` opens and checks one source,
:func:`check_mosaic` checks that the sources form one mosaic, and
:func:`write_cog` writes the mosaic as one Cloud-Optimised GeoTIFF:

* the sources are stitched by a GDAL VRT written here (no pixels are copied
  before the COG is written, so memory stays flat however many tiles there
  are); where sources overlap, the later one wins;
* every source's own nodata becomes ``-9999`` and the cells become float32;
* a mosaic not in EPSG:25832, or given another ``resolution``, is warped on
  the fly (bilinear: heights are continuous) to a grid aligned to whole
  multiples of the resolution, so later loads of neighbouring data line up;
* the COG is written by GDAL's COG driver (the code behind ``gdal_translate
  -of COG``): DEFLATE with the floating-point predictor, 512 x 512 tiles,
  overviews by averaging down to one tile, all CPUs compressing.

Tiles of one mosaic must share CRS, resolution and grid alignment: a tile
that differs is refused with its name rather than silently resampled, since
a 10 m tile among 0.4 m tiles is almost always a wrong file in the list.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import aligned_target, calculate_default_transform

from ingest.prepare import plausible_bounds
from layers.crs import STORAGE_EPSG
from layers.errors import CRSMismatch, InvalidInput

log = logging.getLogger(__name__)

NODATA = -9999.0
BLOCK = 512
#: Creation options of the COG driver; the benchmark gives the peer the same ones.
COG_OPTIONS: dict[str, str] = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "BLOCKSIZE": str(BLOCK),
    "RESAMPLING": "AVERAGE",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}
STORAGE_CRS = CRS.from_epsg(STORAGE_EPSG)
# GDAL's block cache while writing: the COG driver works strip by strip, so a
# small cache is enough; the default (5 % of RAM) only inflates peak memory.
CACHE_BYTES = 256 * 2**20
_ALIGN_TOLERANCE = 1e-6  # in cells
_DVR90 = re.compile(r"\bDVR\s*90\b", re.IGNORECASE)


@dataclass(frozen=True)
class Grid:
    """A north-up grid: of a source, of a mosaic, or of the COG written from it."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f

    @property
    def resolution(self) -> tuple[float, float]:
        return self.transform.a, -self.transform.e

    @property
    def cells(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Tile(Grid):
    """One source grid of a mosaic.

    ``name`` is the name users know it by, ``path`` the file GDAL reads (the
    input, or a GeoTIFF converted from it); ``nodata`` is None when every cell
    is valid; ``vertical_datum`` is the height system the file declares.
    """

    name: str
    path: Path
    nodata: float | None
    dtype: str = "float32"
    vertical_datum: str | None = None


@dataclass(frozen=True)
class CogInfo(Grid):
    """The COG written, and its overview levels."""

    path: Path
    overviews: list[int]


def same_crs(a: CRS, b: CRS) -> bool:
    """Whether two CRSs are the same (an ESRI ``.prj`` equals its EPSG code)."""
    if a == b:
        return True
    epsg = a.to_epsg()
    return epsg is not None and epsg == b.to_epsg()


def file_crs(name: str, declared: CRS | None, assumed: str | None) -> CRS:
    """The CRS of a file: the one it declares, else ``--crs``; both must agree.

    Raises
    ------
    CRSMismatch
        The file declares none and none is assumed, or it declares another.
    """
    if declared is not None and assumed is not None:
        if not same_crs(declared, CRS.from_user_input(assumed)):
            raise CRSMismatch(
                f"{name} declares {declared.to_string()}, not {assumed}; drop --crs or fix the file",
                record=name, field="crs",
            )  # fmt: skip
    if declared is not None:
        return declared
    if assumed is None:
        raise CRSMismatch(f"{name} declares no coordinate reference system; state it (--crs)",
                          record=name, field="crs")  # fmt: skip
    return CRS.from_user_input(assumed)


def check_plausible(name: str, crs: CRS, bounds: tuple[float, float, float, float]) -> None:
    """Refuse a grid whose corner coordinates cannot be in its CRS."""
    limits = plausible_bounds(crs.to_wkt())
    if limits is None:
        return
    (xmin, ymin, xmax, ymax), geographic = limits
    x0, y0, x1, y1 = bounds
    if x0 < xmin or y0 < ymin or x1 > xmax or y1 > ymax:
        hint = "" if geographic or not (abs(x0) <= 180 and abs(y0) <= 90) else (
            "; they look like longitude/latitude")  # fmt: skip
        raise CRSMismatch(
            f"{name}: corner ({x0:.6g}, {y0:.6g}) cannot be in {crs.to_string()}{hint}",
            record=name, field="crs",
        )  # fmt: skip


def declared_datum(crs: CRS, tags: dict[str, str]) -> str | None:
    """The height system a raster declares: a compound CRS or a VERTICAL_DATUM tag."""
    text = (tags.get("VERTICAL_DATUM") or tags.get("vertical_datum") or "").strip()
    if text:
        return "DVR90" if _DVR90.search(text) else text
    for sub in ProjCRS.from_wkt(crs.to_wkt()).sub_crs_list:
        if sub.is_vertical:
            return "DVR90" if sub.to_epsg() == 5799 else sub.name
    return None


def _has_heights(src) -> bool:
    """Whether band 1 has a finite cell that is not nodata (read block by block, stops early).

    A tile of nodata, NaN or infinity only is a broken export; loaded with
    ``replace`` it would swap a good terrain for an empty one.
    """
    for _, window in src.block_windows(1):
        block = src.read(1, window=window, masked=True)
        if np.isfinite(block.astype("float64").filled(np.nan)).any():
            return True
    return False


def open_tile(path: Path, *, name: str | None = None, assumed_crs: str | None = None) -> Tile:
    """Open and check one raster source.

    Raises
    ------
    InvalidInput
        Not a raster GDAL reads, rotated, or without cells.
    CRSMismatch
        No CRS, another CRS than ``--crs``, or coordinates outside its CRS.
    """
    name = name or path.name
    try:
        with rasterio.open(path) as src:
            crs = file_crs(name, src.crs, assumed_crs)
            transform, width, height = src.transform, src.width, src.height
            nodata, count, tags, dtype = src.nodata, src.count, src.tags(), src.dtypes[0]
            has_heights = _has_heights(src)
    except RasterioError as exc:
        raise InvalidInput(f"{name} is not a raster geoby can read ({exc})",
                           record=name, field="file") from exc  # fmt: skip
    if count > 1:
        log.warning("%s has %d bands; band 1 is the terrain height", name, count)
    if transform.b or transform.d or transform.a <= 0 or transform.e >= 0:
        raise InvalidInput(f"{name} is not a north-up grid (rotated or flipped): {transform}",
                           record=name, field="transform")  # fmt: skip
    if not has_heights:
        raise InvalidInput(f"{name} holds no height: every cell is nodata, NaN or infinite",
                           record=name, field="band 1")  # fmt: skip
    tile = Tile(crs, transform, width, height, name=name, path=path, nodata=nodata, dtype=dtype,
                vertical_datum=declared_datum(crs, tags))  # fmt: skip
    check_plausible(name, crs, tile.bounds)
    return tile


def check_mosaic(tiles: list[Tile]) -> Grid:
    """Check that ``tiles`` form one mosaic and return its grid.

    Raises
    ------
    InvalidInput
        A tile has another CRS, resolution, grid alignment or declared
        vertical datum than the first.
    """
    first = tiles[0]
    rx, ry = first.resolution
    for tile in tiles[1:]:
        problem = None
        if not same_crs(tile.crs, first.crs):
            problem = f"its CRS is {tile.crs.to_string()}, the mosaic's {first.crs.to_string()}"
        elif not (math.isclose(tile.resolution[0], rx, rel_tol=1e-9)
                  and math.isclose(tile.resolution[1], ry, rel_tol=1e-9)):  # fmt: skip
            problem = f"its cells are {_res(tile.resolution)}, the mosaic's {_res((rx, ry))}"
        elif not _aligned(tile.transform, first.transform):
            problem = "it is not aligned to the grid of the other tiles"
        elif (
            tile.vertical_datum
            and first.vertical_datum
            and (tile.vertical_datum != first.vertical_datum)
        ):
            problem = (
                f"its heights are in {tile.vertical_datum}, the mosaic's {first.vertical_datum}"
            )
        if problem:
            raise InvalidInput(
                f"{tile.name} does not fit the mosaic of {first.name}: {problem}; "
                "bring it to the same grid, load it as another layer, or rebuild the layer "
                "with --mode replace",
                record=tile.name, field="grid",
            )  # fmt: skip
    boxes = np.array([t.bounds for t in tiles])
    x0, y1 = boxes[:, 0].min(), boxes[:, 3].max()
    width = round((boxes[:, 2].max() - x0) / rx)
    height = round((y1 - boxes[:, 1].min()) / ry)
    return Grid(first.crs, Affine(rx, 0.0, x0, 0.0, -ry, y1), width, height)


def _res(res: tuple[float, float]) -> str:
    return f"{res[0]:g} m" if res[0] == res[1] else f"{res[0]:g} x {res[1]:g}"


def _aligned(t: Affine, ref: Affine) -> bool:
    fx, fy = (t.c - ref.c) / ref.a, (t.f - ref.f) / ref.e
    return abs(fx - round(fx)) < _ALIGN_TOLERANCE and abs(fy - round(fy)) < _ALIGN_TOLERANCE


def write_vrt(tiles: list[Tile], grid: Grid, path: Path) -> Path:
    """Write the mosaic as a float32 VRT with nodata -9999 (later tiles on top).

    A float32 tile with nodata -9999 (or none) that overlaps no other tile is
    a plain source; others are complex sources that convert and mask their
    nodata, which costs about a fifth more CPU.
    """
    rects = np.array([_rect(tile, grid) for tile in tiles])
    sources = []
    for i, tile in enumerate(tiles):
        col, row, width, height = rects[i]
        plain = (
            tile.dtype == "float32" and tile.nodata in (None, NODATA) and not _overlaps(rects, i)
        )
        kind = "SimpleSource" if plain else "ComplexSource"
        nodata = "" if plain or tile.nodata is None else f"<NODATA>{tile.nodata!r}</NODATA>"
        sources.append(
            f'<{kind}><SourceFilename relativeToVRT="0">'
            f"{escape(str(tile.path.resolve()))}</SourceFilename><SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
            f'<DstRect xOff="{col}" yOff="{row}" xSize="{width}" ySize="{height}"/>'
            f"{nodata}</{kind}>"
        )
    t = grid.transform
    path.write_text(
        f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">'
        f"<SRS>{escape(grid.crs.to_wkt())}</SRS>"
        f"<GeoTransform>{t.c!r}, {t.a!r}, 0, {t.f!r}, 0, {t.e!r}</GeoTransform>"
        f'<VRTRasterBand dataType="Float32" band="1"><NoDataValue>{NODATA}</NoDataValue>'
        + "".join(sources)
        + "</VRTRasterBand></VRTDataset>",
        encoding="utf-8",
    )
    return path


def _rect(tile: Tile, grid: Grid) -> tuple[int, int, int, int]:
    col = round((tile.transform.c - grid.transform.c) / grid.transform.a)
    row = round((tile.transform.f - grid.transform.f) / grid.transform.e)
    return col, row, tile.width, tile.height


def _overlaps(rects: np.ndarray, i: int) -> bool:
    col, row, width, height = rects[i]
    hit = (
        (rects[:, 0] < col + width) & (col < rects[:, 0] + rects[:, 2])
        & (rects[:, 1] < row + height) & (row < rects[:, 1] + rects[:, 3])
    )  # fmt: skip
    return int(hit.sum()) > 1  # itself, and another


def target_grid(grid: Grid, resolution: float | None) -> Grid | None:
    """The EPSG:25832 grid to warp ``grid`` to, or None when it already is one.

    The target is aligned to whole multiples of its resolution; without a
    ``resolution`` GDAL's suggestion (about as many cells as the source) is
    rounded to a millimetre.
    """
    res = grid.transform.a
    if (
        same_crs(grid.crs, STORAGE_CRS)
        and grid.transform.a == -grid.transform.e
        and (resolution is None or math.isclose(resolution, res, rel_tol=1e-9))
    ):
        return None
    if resolution is None:
        suggested, _, _ = calculate_default_transform(
            grid.crs, STORAGE_CRS, grid.width, grid.height, *grid.bounds
        )
        resolution = round(suggested.a, 3)
    bounds_transform, width, height = calculate_default_transform(
        grid.crs, STORAGE_CRS, grid.width, grid.height, *grid.bounds, resolution=resolution
    )
    transform, width, height = aligned_target(bounds_transform, width, height, resolution)
    return Grid(STORAGE_CRS, transform, width, height)


def write_cog(source: Path, dst: Path, target: Grid | None = None) -> CogInfo:
    """Write ``source`` (band 1) as a COG at ``dst``, warped to ``target`` if given.

    Parameters
    ----------
    source
        A raster in EPSG:25832 (usually the mosaic VRT), float32, nodata -9999.
    dst
        The COG to write (overwritten).
    target
        An EPSG:25832 grid to warp to (bilinear), from :func:`target_grid`.

    Returns
    -------
    CogInfo
        Its grid and overview levels.
    """
    with (
        rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=CACHE_BYTES),
        rasterio.open(source) as src,
    ):
        if target is None:
            rasterio.shutil.copy(src, dst, driver="COG", **COG_OPTIONS)
        else:
            with WarpedVRT(
                src, crs=target.crs, transform=target.transform, width=target.width,
                height=target.height, resampling=Resampling.bilinear, nodata=NODATA,
                src_nodata=src.nodata, dtype="float32",
            ) as warped:  # fmt: skip
                rasterio.shutil.copy(warped, dst, driver="COG", **COG_OPTIONS)
    os.chmod(dst, 0o644)  # PostgreSQL (another OS user) reads it as an out-db raster
    with rasterio.open(dst) as cog:
        return CogInfo(cog.crs, cog.transform, cog.width, cog.height, path=dst,
                       overviews=cog.overviews(1))  # fmt: skip


class FileSwap:
    """Put a new file in place of ``target``; put the old one back on :meth:`undo`.

    The previous file is kept as a hard link until :meth:`done`, so a load
    whose database transaction fails after the swap restores it exactly.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.backup: Path | None = None
        self.installed = False

    def install(self, new: Path) -> None:
        if self.target.exists():
            self.backup = self.target.with_name(f".{self.target.name}.{os.getpid()}.previous")
            self.backup.unlink(missing_ok=True)
            os.link(self.target, self.backup)
        os.replace(new, self.target)
        self.installed = True

    def undo(self) -> None:
        if self.installed:
            if self.backup is not None:
                os.replace(self.backup, self.target)
            else:
                self.target.unlink(missing_ok=True)
        elif self.backup is not None:
            self.backup.unlink(missing_ok=True)

    def done(self) -> None:
        if self.backup is not None:
            self.backup.unlink(missing_ok=True)
