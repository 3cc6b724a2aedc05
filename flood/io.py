"""DEMs in, COGs out: the file side of the flood analyses, and their inputs from the database.

:func:`read_dem` reads any single-band raster rasterio opens (GeoTIFF, COG, ESRI
ASCII grid, ...) into a :class:`Dem` that follows the conventions of the flood
modules: float32 or float64 heights, a boolean nodata mask (True = no data, those
cells NaN in the array), row 0 north, square cells in metres and the cell area
passed on explicitly.

* **Geographic DEMs are reprojected** (their cells are not square in metres): to
  EPSG:25832, the storage CRS, when the DEM lies inside its area of use or inside
  Denmark, which uses it beyond the zone edge (so results line up with the
  database), else to the WGS 84 UTM zone of the DEM's centre (as
  geopandas' ``estimate_utm_crs`` picks it). A WARNING names the source CRS, the
  target CRS and the cell size. The cell size is GDAL's suggestion (about as many
  cells as the source) rounded to a millimetre; the grid is aligned to whole
  multiples of it, as :mod:`ingest.terrain_cog` does.
* **Resampling**: heights bilinear (terrain is continuous; nearest would add steps
  that the hydrology would read as pits and flats), the nodata mask by nearest
  neighbour, so a hole or a coast keeps its shape and size: a cell is nodata where
  its nearest source cell is nodata or bilinear found no valid neighbour.
* Integer DEMs become float32. A south-up raster is flipped to north-up. Rotated
  or sheared grids and non-square cells are refused (:class:`InvalidInput`):
  resampling them silently would change every flow path.

:func:`write_cog` writes an array as a Cloud-Optimised GeoTIFF with rio-cogeo, with
the creation options of the terrain COGs (DEFLATE with predictor, 512 x 512 tiles,
overviews by averaging), atomically: a temporary file in the same directory is
renamed over the target, so a reader never sees half a file.

:func:`read_terrain_layer` reads the COG of a terrain layer in the catalog;
:func:`rain_depth_mm` gives a cloudburst's net rain depth from the ingested IDF table
and climate factors, minus a drainage capacity, with its components.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.warp import aligned_target, calculate_default_transform, reproject, transform_bounds
from rio_cogeo.cogeo import cog_translate

from ingest.climate_design import factor_for, rain_depth
from ingest.terrain_cog import BLOCK, COG_OPTIONS, declared_datum, same_crs
from layers import catalog
from layers.crs import STORAGE_EPSG, area_of_use
from layers.database import Database
from layers.errors import CRSMismatch, InvalidInput, NotFound

log = logging.getLogger(__name__)

IN_MEMORY_BYTES = 64 * 2**20  # larger rasters are staged on disk by write_cog

__all__ = ["Dem", "DesignRain", "rain_depth_mm", "read_dem", "read_terrain_layer", "write_cog"]

STORAGE_CRS = CRS.from_epsg(STORAGE_EPSG)
_SQUARE_TOLERANCE = 1e-6  # relative difference of cell width and height
# Denmark uses UTM 32 beyond the zone's 12 E edge (Zealand, Bornholm): DVR90's area of use
_DENMARK = area_of_use(5799)


@dataclass(frozen=True)
class Dem:
    """A DEM as the flood modules take it.

    Attributes
    ----------
    array
        Heights, float32 or float64, shape (rows, cols), row 0 north; NaN where ``nodata``.
    nodata
        Boolean mask, True where there is no data.
    transform
        North-up affine transform of the grid (square cells).
    crs
        Its CRS (projected, metric after any reprojection).
    cell_area_m2
        Area of one cell in square metres.
    vertical_datum
        Height system the file or catalog declares (``"DVR90"``...), else None.
    reprojected_from
        The source CRS when the DEM was reprojected on reading, else None.
    """

    array: np.ndarray
    nodata: np.ndarray
    transform: Affine
    crs: CRS
    cell_area_m2: float
    vertical_datum: str | None = None
    reprojected_from: CRS | None = None

    @property
    def cell_size(self) -> float:
        """Cell width in the units of the CRS (metres for every CRS geoby produces)."""
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """xmin, ymin, xmax, ymax."""
        rows, cols = self.array.shape
        t = self.transform
        return t.c, t.f + t.e * rows, t.c + t.a * cols, t.f


def read_dem(
    path: str | os.PathLike,
    *,
    band: int = 1,
    crs: str | int | None = None,
    resolution: float | None = None,
) -> Dem:
    """Read a DEM, reprojecting a geographic one to metres (see the module notes).

    Parameters
    ----------
    path
        Any raster rasterio opens.
    band
        The band holding the heights.
    crs
        Target CRS (EPSG code or any string rasterio accepts) to reproject to even
        when the DEM is projected; default: keep a projected CRS, choose one for a
        geographic DEM.
    resolution
        Cell size (m) when reprojecting; default GDAL's suggestion rounded to 1 mm.

    Returns
    -------
    Dem

    Raises
    ------
    InvalidInput
        Not a raster, no such band, a rotated or sheared grid, or non-square cells.
    CRSMismatch
        The raster declares no CRS.

    Examples
    --------
    >>> dem = read_dem("../shared/data/dk-terrain/dk_dtm_6171_727_10m_dvr90.tif")  # doctest: +SKIP
    >>> dem.cell_area_m2, dem.vertical_datum, int(dem.nodata.sum())  # doctest: +SKIP
    (100.0, 'DVR90', 6)
    """
    name = Path(path).name
    try:
        with rasterio.open(path) as src:
            if not 1 <= band <= src.count:
                raise InvalidInput(f"{name} has {src.count} band(s), not band {band}",
                                   record=name, field="band")  # fmt: skip
            masked = src.read(band, masked=True)
            transform, src_crs, tags = src.transform, src.crs, src.tags()
    except RasterioError as exc:
        raise InvalidInput(f"{name} is not a raster geoby can read ({exc})",
                           record=name, field="file") from exc  # fmt: skip
    if src_crs is None:
        raise CRSMismatch(f"{name} declares no coordinate reference system; assign one "
                          "(gdal_edit.py -a_srs) before the analysis", record=name, field="crs")  # fmt: skip
    array, nodata = _heights(masked)
    if transform.b or transform.d:
        raise InvalidInput(f"{name} has a rotated or sheared grid ({transform}); warp it to a "
                           "north-up grid first (gdalwarp)", record=name, field="transform")  # fmt: skip
    if transform.a < 0:
        raise InvalidInput(f"{name} has columns running west (cell width {transform.a:g}); "
                           "warp it to a north-up grid first", record=name, field="transform")  # fmt: skip
    if transform.e > 0:  # south-up: flipping loses nothing
        array, nodata = array[::-1].copy(), nodata[::-1].copy()
        transform = Affine(transform.a, 0.0, transform.c, 0.0, -transform.e,
                           transform.f + transform.e * array.shape[0])  # fmt: skip
    datum = declared_datum(src_crs, tags)
    target = CRS.from_user_input(f"EPSG:{crs}" if isinstance(crs, int) else crs) if crs else None
    if src_crs.is_geographic or (target is not None and not same_crs(src_crs, target)):
        return _reprojected(name, array, nodata, transform, src_crs, target, resolution, datum)
    if resolution is not None and not math.isclose(resolution, transform.a, rel_tol=1e-9):
        raise InvalidInput(f"{name} has {transform.a:g} m cells; resampling a projected DEM to "
                           f"{resolution:g} m is not done on reading", field="resolution")  # fmt: skip
    _check_square(name, transform)
    factor = _unit_factor(src_crs)
    area = transform.a * -transform.e * factor**2
    return Dem(array, nodata, transform, src_crs, float(area), datum)


def _heights(masked: np.ma.MaskedArray) -> tuple[np.ndarray, np.ndarray]:
    """Float heights with NaN at nodata, and the nodata mask (NaN counts as nodata)."""
    data = np.ma.getdata(masked)
    dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.float32
    array = data.astype(dtype, copy=True)
    nodata = np.ma.getmaskarray(masked) | ~np.isfinite(array)
    array[nodata] = np.nan
    return array, nodata


def _check_square(name: str, transform: Affine) -> None:
    width, height = transform.a, -transform.e
    if abs(width - height) > _SQUARE_TOLERANCE * max(width, height):
        raise InvalidInput(f"{name} has non-square cells ({width:g} x {height:g}); the flood "
                           "analyses need square cells: warp it (gdalwarp -tr)",
                           record=name, field="transform")  # fmt: skip


def _unit_factor(crs: CRS) -> float:
    """Metres per unit of a projected CRS's x axis."""
    axes = ProjCRS.from_wkt(crs.to_wkt()).axis_info
    factor = axes[0].unit_conversion_factor if axes else 1.0
    return float(factor or 1.0)


def target_crs(src_crs: CRS, bounds: tuple[float, float, float, float]) -> CRS:
    """Metric CRS for a geographic DEM: EPSG:25832 in its zone or Denmark, else the UTM zone.

    Examples
    --------
    >>> target_crs(CRS.from_epsg(4326), (-97.5, 32.5, -97.2, 32.8)).to_epsg()
    32614
    >>> target_crs(CRS.from_epsg(4326), (12.4, 55.6, 12.6, 55.7)).to_epsg()
    25832
    """
    west, south, east, north = transform_bounds(src_crs, "EPSG:4326", *bounds)
    for use in (area_of_use(STORAGE_EPSG), _DENMARK):
        if use and use[0] <= west and use[1] <= south and east <= use[2] and north <= use[3]:
            return STORAGE_CRS
    lon, lat = (west + east) / 2, (south + north) / 2
    found = query_utm_crs_info(datum_name="WGS 84",
                               area_of_interest=AreaOfInterest(lon, lat, lon, lat))  # fmt: skip
    if not found:
        raise CRSMismatch(f"no UTM zone covers ({lon:.4f}, {lat:.4f}); pass crs= explicitly",
                          field="crs")  # fmt: skip
    return CRS.from_epsg(int(found[0].code))


def _reprojected(
    name: str,
    array: np.ndarray,
    nodata: np.ndarray,
    transform: Affine,
    src_crs: CRS,
    target: CRS | None,
    resolution: float | None,
    datum: str | None,
) -> Dem:
    rows, cols = array.shape
    bounds = (transform.c, transform.f + transform.e * rows, transform.c + transform.a * cols,
              transform.f)  # fmt: skip
    dst_crs = target or target_crs(src_crs, bounds)
    if dst_crs.is_geographic:
        raise CRSMismatch(f"cannot analyse {name} in geographic {dst_crs.to_string()}; "
                          "choose a projected CRS", field="crs")  # fmt: skip
    if resolution is None:
        suggested, _, _ = calculate_default_transform(src_crs, dst_crs, cols, rows, *bounds)
        resolution = round(suggested.a, 3)
    if not (math.isfinite(resolution) and resolution > 0):
        raise InvalidInput(f"resolution must be a positive number of metres, got {resolution!r}",
                           field="resolution")  # fmt: skip
    wide, width, height = calculate_default_transform(src_crs, dst_crs, cols, rows, *bounds,
                                                      resolution=resolution)  # fmt: skip
    dst_transform, width, height = aligned_target(wide, width, height, resolution)
    heights = np.full((height, width), np.nan, dtype=array.dtype)
    reproject(array, heights, src_transform=transform, src_crs=src_crs, src_nodata=np.nan,
              dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=np.nan,
              resampling=Resampling.bilinear)  # fmt: skip
    holes = np.full((height, width), np.nan, dtype=np.float32)
    reproject(nodata.astype(np.float32), holes, src_transform=transform, src_crs=src_crs,
              src_nodata=None, dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=np.nan,
              resampling=Resampling.nearest)  # fmt: skip
    mask = (holes != 0) | np.isnan(heights)  # NaN != 0: outside the source grid
    heights[mask] = np.nan
    log.warning(
        "%s is in %s; reprojected to %s at %.3f m cells (heights bilinear, nodata by nearest "
        "neighbour)", name, src_crs.to_string(), dst_crs.to_string(), resolution,
    )  # fmt: skip
    factor = _unit_factor(dst_crs)
    return Dem(heights, mask, dst_transform, dst_crs, float((resolution * factor) ** 2), datum,
               reprojected_from=src_crs)  # fmt: skip


def write_cog(
    path: str | os.PathLike,
    array: np.ndarray,
    transform: Affine,
    crs: CRS | str | int,
    nodata: float | None = np.nan,
    *,
    overviews: bool = True,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write one band as a Cloud-Optimised GeoTIFF, atomically.

    Parameters
    ----------
    path
        The COG to write; replaced if it exists (the old file stays whole until the
        new one is complete).
    array
        2-D array, row 0 north; bool is written as uint8.
    transform, crs
        Its north-up grid.
    nodata
        Nodata value (default NaN; ignored, as None, for integer arrays).
    overviews
        Build overviews (by averaging for floats, nearest for integers) down to one tile.
    tags
        Dataset tags (e.g. ``VERTICAL_DATUM``, the scenario's parameters).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InvalidInput
        Not a 2-D array or not a north-up grid.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim != 2 or 0 in array.shape:
        raise InvalidInput(f"a COG needs a 2-D array with cells, got shape {array.shape}",
                           field="array")  # fmt: skip
    if transform.b or transform.d or transform.a <= 0 or transform.e >= 0:
        raise InvalidInput(f"not a north-up grid: {transform}", field="transform")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    is_float = np.issubdtype(array.dtype, np.floating)
    if not is_float and nodata is not None and not np.isfinite(nodata):
        nodata = None
    crs = CRS.from_epsg(crs) if isinstance(crs, int) else CRS.from_user_input(crs)
    profile = {
        "driver": "GTiff", "interleave": "pixel", "tiled": True,
        "blockxsize": BLOCK, "blockysize": BLOCK, "compress": COG_OPTIONS["COMPRESS"],
        "predictor": 3 if is_float else 2, "BIGTIFF": COG_OPTIONS["BIGTIFF"],
    }  # fmt: skip
    source = {"driver": "GTiff", "dtype": array.dtype.name, "count": 1, "width": array.shape[1],
              "height": array.shape[0], "crs": crs, "transform": transform, "nodata": nodata}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")  # unique per writer
    # A large raster goes through a plain tiled file next to the target instead of memory:
    # a 64 M-cell depth would otherwise be held twice more (+1.5 GiB) while it is written.
    staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}.src") if (
        array.nbytes > IN_MEMORY_BYTES) else None  # fmt: skip
    try:
        with ExitStack() as stack:
            if staged is None:
                memfile = stack.enter_context(MemoryFile())
                target = memfile.open(**source)
            else:
                target = rasterio.open(staged, "w", **source, tiled=True, blockxsize=BLOCK,
                                       blockysize=BLOCK)  # fmt: skip
            with target as mem:
                mem.write(array, 1)
                if tags:
                    mem.update_tags(**tags)
            opened = memfile.open() if staged is None else rasterio.open(staged)
            with opened as mem:
                cog_translate(
                    mem, tmp, profile, nodata=nodata, in_memory=staged is None, quiet=True,
                    overview_level=None if overviews else 0,
                    overview_resampling="average" if is_float else "nearest",
                    config={"GDAL_NUM_THREADS": COG_OPTIONS["NUM_THREADS"]},
                )  # fmt: skip
        os.chmod(tmp, 0o644)  # PostgreSQL (another OS user) may read it as an out-db raster
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        if staged is not None:
            staged.unlink(missing_ok=True)
    return path


def read_terrain_layer(database: Database, layer_id: str = "terrain_dtm") -> Dem:
    """Read the COG of a raster layer in the catalog as a :class:`Dem`.

    The layer's ``raster_path`` is taken relative to ``settings.data_dir`` unless
    absolute (as the OGC terrain processes resolve it); the catalog's vertical datum
    wins over the file's.

    Raises
    ------
    NotFound
        No such layer, or its raster file is missing.
    InvalidInput
        The layer is not a raster.
    """
    with database.connection("read") as conn:
        layer = catalog.get(conn, layer_id)
    if layer.kind != "raster" or not layer.raster_path:
        raise InvalidInput(f"layer '{layer_id}' is a {layer.kind} layer, not a raster",
                           field="layer")  # fmt: skip
    path = Path(layer.raster_path)
    if not path.is_absolute():
        path = database.settings.data_dir / path
    if not path.is_file():
        log.error("layer %s: raster %s is missing", layer_id, path)
        raise NotFound(f"the raster of layer '{layer_id}' is missing", field="layer")
    dem = read_dem(path)
    if layer.vertical_datum and layer.vertical_datum != dem.vertical_datum:
        dem = Dem(dem.array, dem.nodata, dem.transform, dem.crs, dem.cell_area_m2,
                  layer.vertical_datum, dem.reprojected_from)  # fmt: skip
    return dem


@dataclass(frozen=True)
class DesignRain:
    """The rain of a cloudburst scenario and how it was made up (all depths in mm).

    ``rain_mm = max(0, idf_depth_mm * climate_factor - drainage_mm)``; ``float()``
    of it is ``rain_mm``.
    """

    return_period_years: float
    duration_min: float
    idf_depth_mm: float
    climate_factor: float
    drainage_mm: float
    rain_mm: float

    @property
    def design_depth_mm(self) -> float:
        """IDF depth times the climate factor, before drainage."""
        return self.idf_depth_mm * self.climate_factor

    def __float__(self) -> float:
        return self.rain_mm


def rain_depth_mm(
    database: Database,
    return_period: float,
    duration_min: float,
    climate_factor: float | None = None,
    drainage_mm: float = 0.0,
    *,
    station: str | None = None,
    scenario: str | None = None,
    horizon_years: int | None = None,
) -> DesignRain:
    """Net rain depth of a cloudburst from the ingested IDF table and climate factors.

    The IDF depth is interpolated by :func:`ingest.climate_design.rain_depth`
    (log-linear in duration and return period, never extrapolated); the climate
    factor is the one given, else the ingested one for this return period; the
    drainage capacity (what the sewers carry away during the event) is subtracted,
    never below zero.

    Parameters
    ----------
    database
        Read with the ``read`` role.
    return_period, duration_min
        Years and minutes.
    climate_factor
        Factor to apply (``1.0`` for today's climate); default the ingested one.
    drainage_mm
        Drainage capacity over the duration (mm), >= 0.
    station, scenario, horizon_years
        Which IDF station and climate factors, where several are ingested.

    Returns
    -------
    DesignRain
        ``rain_mm`` and its components.

    Raises
    ------
    InvalidInput
        Bad numbers, or a point outside the IDF table (see ``rain_depth``).
    NotFound
        No IDF table or, without ``climate_factor``, no climate factors ingested.
    """
    if not (np.isfinite(drainage_mm) and drainage_mm >= 0):
        raise InvalidInput(f"drainage_mm must be a number >= 0, got {drainage_mm!r}",
                           field="drainage_mm")  # fmt: skip
    with database.connection("read") as conn:
        idf = rain_depth(conn, return_period=return_period, duration_min=duration_min,
                         station=station, climate_factor=1.0)  # fmt: skip
        if climate_factor is None:
            climate_factor = factor_for(conn, return_period=return_period, scenario=scenario,
                                        horizon_years=horizon_years)  # fmt: skip
        elif not (np.isfinite(climate_factor) and climate_factor > 0):
            raise InvalidInput(f"climate_factor must be a positive number, got {climate_factor!r}",
                               field="climate_factor")  # fmt: skip
    rain = max(0.0, idf * climate_factor - drainage_mm)
    return DesignRain(float(return_period), float(duration_min), idf, float(climate_factor),
                      float(drainage_mm), rain)  # fmt: skip
