"""The terrain family: DEMs into one Cloud-Optimised GeoTIFF per layer, in PostGIS.

``geoby ingest terrain PATH...`` loads DEM GeoTIFFs (or any raster GDAL
reads), ESRI ASCII grids (``.asc`` with its ``.prj``), XYZ grids
(:mod:`ingest.terrain_xyz`) and LAS/LAZ point clouds (ground points gridded
by :mod:`ingest.terrain_las`). Every call builds or extends one layer:

* **One layer per call.** All paths given together form one mosaic (DHM
  style: pass the 1 km tiles together), written as one COG at
  ``data_dir/terrain/<layer>.tif`` by :mod:`ingest.terrain_cog` (EPSG:25832,
  float32, nodata -9999, 512 tiles, DEFLATE + predictor, overviews). The
  layer id is ``terrain_dtm`` unless ``--option layer=terrain_...``. Sidecar
  files (``.prj``, ``.aux.xml``, world files) are skipped, so ``terrain/*``
  works. Point clouds and rasters are not mixed in one call.
* **Tiles must agree.** A tile in another CRS, at another resolution or off
  the grid of the others is refused by name, not resampled.
* **Modes.** ``replace`` rebuilds the layer from exactly the given files.
  ``insert`` adds tiles to the layer: files already loaded into it are
  skipped (all of them: a no-op), new tiles fill only cells the layer has no
  height for (existing cells win, like rows already loaded). ``upsert`` adds
  tiles that overwrite the cells they cover. Another ``resolution`` or
  ``geoid`` for files already loaded needs ``replace``.
* **Vertical datum** (catalog ``vertical_datum``): ``--option
  vertical_datum=...`` if given; else DVR90 for point clouds corrected by a
  geoid grid; else what the files declare (a ``VERTICAL_DATUM`` tag or a
  compound CRS); else, for rasters lying in Denmark, DVR90 (every Danish DTM
  is); else ``unknown``, with a warning. The Texas HydroSHEDS DEM is
  therefore ``unknown`` (its heights are EGM96-based; say so with the option).
* **Reprojection.** Grids in another CRS are warped (bilinear) to EPSG:25832,
  the storage CRS of everything in geoby, even far outside its area of use
  (a warning says the cells are distorted there).
* **All or nothing.** The COG is written to a temporary file beside the
  target; the catalog, provenance and PostGIS tiles are written in one
  transaction; the new file replaces the old one only inside it and the old
  one is put back if anything fails, so a failed load leaves the previous
  COG and catalog untouched.
* **In PostGIS.** The COG is registered as out-db raster tiles of 512 x 512
  cells (one per COG block) in ``data.raster_tiles``, so
  ``geoby.terrain_height(layer, x, y)`` (or :func:`terrain_height`) answers
  in SQL; the server must see the data directory at the same path. Files
  are made readable for the server's OS user.

Family options (``--option key=value``): ``layer``, ``title``,
``description``, ``attribution``, ``vertical_datum``, ``resolution`` (m),
and for point clouds ``geoid`` (path) and ``classes`` (default ``2``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from psycopg2.extensions import connection as Connection
from pyproj import CRS as ProjCRS
from rasterio.errors import RasterioError

from ingest.loader import MODES, LoadReport
from ingest.pipelines import IngestOptions
from ingest.source import SourceFile
from ingest.terrain_cog import (
    BLOCK,
    COG_OPTIONS,
    NODATA,
    CogInfo,
    FileSwap,
    Tile,
    check_mosaic,
    open_tile,
    target_grid,
    write_cog,
    write_vrt,
)
from ingest.terrain_las import GROUND, grid_las
from ingest.terrain_xyz import read_xyz
from layers import catalog
from layers.catalog import Layer, Source
from layers.crs import STORAGE_EPSG, area_of_use, transformer
from layers.database import Database
from layers.errors import Conflict, InvalidInput, NotFound
from layers.progress import progress

log = logging.getLogger(__name__)

DEFAULT_LAYER = "terrain_dtm"
POINT_CLOUDS = (".las", ".laz")
SIDECARS = (".prj", ".aux.xml", ".tfw", ".tifw", ".wld", ".ovr", ".msk", ".xml", ".md5")
_DVR90_AREA = ProjCRS.from_epsg(5799).area_of_use


@dataclass
class _Built:
    """A COG written to a temporary file, and what went into it."""

    cog: CogInfo
    tiles: list[Tile]
    rows: dict[str, int]
    vertical_datum: str
    method: str
    warnings: list[str]


def ingest(database: Database, paths: list[Path], options: IngestOptions) -> list[LoadReport]:
    """Load terrain files into one raster layer (see the module notes).

    Returns
    -------
    list of LoadReport
        One report: rows are cells (ground points for point clouds).

    Raises
    ------
    InvalidInput
        A file that is not terrain, a tile that does not fit the mosaic, a bad
        XYZ line or an unusable point cloud; nothing is changed.
    """
    started = time.perf_counter()
    extra = dict(options.extra)
    layer_id = extra.get("layer", DEFAULT_LAYER)
    if not layer_id.startswith("terrain_"):
        raise InvalidInput(f"terrain layer ids start with 'terrain_', not '{layer_id}'",
                           field="layer")  # fmt: skip
    sources = _open_sources(paths, options.show_progress)
    geoid = SourceFile.open(extra["geoid"]) if extra.get("geoid") else None
    if geoid and sources[0].path.suffix.lower() not in POINT_CLOUDS:
        raise InvalidInput("--option geoid applies to point clouds (LAS/LAZ) only", field="geoid")
    _number(extra, "resolution"), _classes(extra)  # refuse bad options before any work
    if options.mode not in MODES:
        raise InvalidInput(f"unknown mode '{options.mode}'; one of {', '.join(MODES)}",
                           field="mode")  # fmt: skip
    final = _terrain_dir(database) / f"{layer_id}.tif"
    report = LoadReport(source=_label(sources), checksum=_combined(sources), mode=options.mode,
                        layers=[layer_id])  # fmt: skip
    swap = FileSwap(final)
    try:
        with database.connection("ingest") as conn:
            _load(conn, report, sources, geoid, swap, options, extra)
    except BaseException:
        swap.undo()
        raise
    swap.done()
    report.seconds = time.perf_counter() - started
    log.info("%s", report.summary())
    return [report]


def _load(conn, report: LoadReport, sources, geoid, swap: FileSwap, options, extra) -> None:
    """Build the COG of the files not yet loaded, swap it in and register it."""
    layer_id, final = report.layers[0], swap.target
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"geoby.terrain:{layer_id}",))  # fmt: skip
    existing = _existing(conn, layer_id, final)
    new = sources
    if existing is not None and options.mode != "replace":
        loaded = {s.checksum for s in catalog.sources(conn, layer_id)}
        new = [s for s in sources if s.checksum not in loaded]
        if not new:
            report.skipped = True
            return
        if len(new) < len(sources):
            report.warnings.append(f"{len(sources) - len(new)} files already in {layer_id} "
                                   "were skipped")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{layer_id}-") as work:
        kept = existing if options.mode != "replace" else None
        try:
            built = _build(new, kept, final, Path(work), options, extra, geoid)
        except RasterioError as exc:  # GDAL refusing a grid that passed the checks
            raise InvalidInput(f"{_label(new)}: cannot be made into a terrain grid ({exc})",
                               record=_label(new), log_detail=repr(exc)) from exc  # fmt: skip
        swap.install(built.cog.path)
        built.cog = replace(built.cog, path=final)
        _register(conn, layer_id, existing, built, new, geoid, options, extra)
    report.rows_in = sum(built.rows.values())
    report.inserted = built.cog.cells
    report.warnings += built.warnings


def terrain_height(conn: Connection, layer_id: str, x: float, y: float) -> float | None:
    """The height of a terrain layer at a point in EPSG:25832, None outside or on nodata.

    Examples
    --------
    >>> terrain_height(conn, "terrain_dtm", 727500.0, 6171500.0)  # doctest: +SKIP
    4.87
    """
    with conn.cursor() as cur:
        # float(): numpy scalars would be sent as "np.float64(...)"
        cur.execute("SELECT geoby.terrain_height(%s, %s, %s)", (layer_id, float(x), float(y)))
        return cur.fetchone()[0]


# -- inputs -------------------------------------------------------------------------


def _open_sources(paths: list[Path], show_progress: bool | None) -> list[SourceFile]:
    files = [Path(p) for p in paths if not Path(p).name.lower().endswith(SIDECARS)]
    if not files:
        raise InvalidInput("no terrain files among the paths (only sidecar files)", field="path")
    sources, seen = [], set()
    for path in progress(files, total=len(files), desc="checksums", unit="file",
                         enabled=show_progress):  # fmt: skip
        source = SourceFile.open(path)
        if source.checksum not in seen:
            seen.add(source.checksum)
            sources.append(source)
    clouds = [s for s in sources if s.path.suffix.lower() in POINT_CLOUDS]
    if clouds and len(clouds) != len(sources):
        other = next(s for s in sources if s.path.suffix.lower() not in POINT_CLOUDS)
        raise InvalidInput(f"point clouds and rasters cannot form one layer: {clouds[0].name} "
                           f"and {other.name}; load them in two calls", record=other.name,
                           field="path")  # fmt: skip
    return sources


def _terrain_dir(database: Database) -> Path:
    """``data_dir/terrain``, created, reachable by the database server's OS user."""
    directory = (Path(database.settings.data_dir) / "terrain").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the private cluster then runs as 'postgres' (layers.pgcluster)
        for path in [directory, *directory.parents]:
            st = path.stat()
            if not st.st_mode & 0o001:
                os.chmod(path, st.st_mode | 0o001)
                log.info("added the search permission to %s for the database server", path)
    return directory


def _existing(conn: Connection, layer_id: str, final: Path) -> Layer | None:
    try:
        layer = catalog.get(conn, layer_id)
    except NotFound:
        return None
    if layer.kind != "raster" or layer.theme != "terrain":
        raise Conflict(f"layer {layer_id} exists and is not a terrain raster", field="layer")
    if not final.is_file():
        log.warning("the COG of %s is missing; it is rebuilt from the given files", layer_id)
        return None
    return layer


def _label(sources: list[SourceFile]) -> str:
    first = sources[0].name
    return first if len(sources) == 1 else f"{first} (+{len(sources) - 1} files)"


def _combined(sources: list[SourceFile]) -> str:
    return hashlib.sha256("".join(sorted(s.checksum for s in sources)).encode()).hexdigest()


def _classes(extra: dict[str, str]) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in extra["classes"].split(",")) if extra.get("classes") \
            else GROUND  # fmt: skip
    except ValueError:
        raise InvalidInput(f"--option classes must be class numbers like 2 or 2,9, not "
                           f"{extra['classes']!r}", field="classes") from None  # fmt: skip


def _number(extra: dict[str, str], key: str) -> float | None:
    if not extra.get(key):
        return None
    try:
        value = float(extra[key])
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidInput(f"--option {key} must be a positive number, not {extra[key]!r}",
                           field=key)  # fmt: skip
    return value


# -- building the COG ---------------------------------------------------------------


def _build(sources, existing, base_path, work: Path, options, extra, geoid) -> _Built:
    """Open the sources, mosaic them with the layer as loaded, and write the COG."""
    warnings: list[str] = []
    if sources[0].path.suffix.lower() in POINT_CLOUDS:
        classes = _classes(extra)
        gridded = grid_las([s.path for s in sources], work / "ground.tif",
                           assumed_crs=options.crs, resolution=_number(extra, "resolution"),
                           geoid=geoid.path if geoid else None, classes=classes,
                           show_progress=options.show_progress)  # fmt: skip
        tiles, rows = [gridded.tile], dict(gridded.points_per_file)
        warnings += [] if extra.get("vertical_datum") else gridded.warnings
        method = f"linear TIN of class {'/'.join(map(str, classes))} ground points, " \
                 f"{gridded.resolution:g} m"  # fmt: skip
        declared = "DVR90" if geoid else None
    else:
        tiles = []
        for i, s in enumerate(progress(sources, total=len(sources), desc="tiles", unit="tile",
                                       enabled=options.show_progress)):  # fmt: skip
            if s.path.suffix.lower() == ".xyz":
                tiles.append(read_xyz(s.path, work / f"xyz_{i}.tif", assumed_crs=options.crs))
            else:
                tiles.append(open_tile(s.path, assumed_crs=options.crs))
        rows = {t.name: t.cells for t in tiles}
        method = "mosaic" if len(tiles) > 1 else "single grid"
        declared = next((t.vertical_datum for t in tiles if t.vertical_datum), None)
    order = tiles
    if existing is not None:
        base = open_tile(base_path, name=f"{existing.id} (as loaded)")
        datum = existing.vertical_datum if existing.vertical_datum != "unknown" else None
        base = replace(base, vertical_datum=datum)
        check_mosaic([base, *tiles])
        order = [*tiles, base] if options.mode == "insert" else [base, *tiles]
    grid = check_mosaic(order)
    target = target_grid(grid, _number(extra, "resolution"))
    if target is not None:
        warnings += _outside_storage_area(tiles[0].name, grid)
        method += f", warped (bilinear) from {grid.crs.to_string()}"
    log.info("writing the COG of %d tiles (%d x %d cells)", len(order), grid.width, grid.height)
    cog = write_cog(write_vrt(order, grid, work / "mosaic.vrt"), work / "cog.tif", target)
    datum, why = _vertical_datum(extra, declared, existing, grid, sources)
    if why:
        warnings.append(why)
    return _Built(cog, tiles, rows, datum, method, warnings)


def _outside_storage_area(name: str, grid) -> list[str]:
    west, south, east, north = area_of_use(STORAGE_EPSG)
    lon0, lat0, lon1, lat1 = transformer(grid.crs.to_wkt(), 4326).transform_bounds(*grid.bounds)
    if lon0 >= west and lon1 <= east and lat0 >= south and lat1 <= north:
        return []
    return [f"{name} lies outside the area of use of EPSG:{STORAGE_EPSG} (lon {lon0:.2f} to "
            f"{lon1:.2f}); it is stored in EPSG:{STORAGE_EPSG} as everything is, but distances "
            "and cell sizes are distorted there"]  # fmt: skip


def _vertical_datum(extra, declared, existing, grid, sources) -> tuple[str, str | None]:
    """The layer's height system and, when unknown, a warning saying so."""
    if extra.get("vertical_datum"):
        return extra["vertical_datum"], None
    if declared:
        return declared, None
    if existing is not None and existing.vertical_datum not in (None, "unknown"):
        return existing.vertical_datum, None
    if sources[0].path.suffix.lower() not in POINT_CLOUDS:
        lon0, lat0, lon1, lat1 = transformer(grid.crs.to_wkt(), 4326).transform_bounds(
            *grid.bounds)  # fmt: skip
        area = _DVR90_AREA
        if lon0 >= area.west and lon1 <= area.east and lat0 >= area.south and lat1 <= area.north:
            return "DVR90", None
    return "unknown", (f"the vertical datum of {sources[0].name} is unknown; state it with "
                       "--option vertical_datum=...")  # fmt: skip


# -- registration -------------------------------------------------------------------


def _register(conn, layer_id, existing, built: _Built, new, geoid, options, extra) -> None:
    """Catalog entry, provenance and PostGIS tiles of the layer, in the caller's transaction."""
    cog = built.cog
    kept = existing.model_dump() if existing is not None else {}
    count = len(new)
    if existing is not None and options.mode != "replace":
        count += int(existing.properties.get("source_count", 0))
    properties = {
        "resolution": cog.resolution[0], "width": cog.width, "height": cog.height,
        "nodata": NODATA, "dtype": "float32", "overview_levels": cog.overviews,
        "source_count": count, "method": built.method, "compression": COG_OPTIONS["COMPRESS"],
        "blocksize": BLOCK, "source_crs": built.tiles[0].crs.to_string(),
        "geoid": geoid.name if geoid else None,
        "postgis": {"table": "data.raster_tiles", "tile_size": BLOCK},
    }  # fmt: skip
    title = extra.get("title") or kept.get("title") or (
        "Terrain model (DTM) from point cloud ground points"
        if "ground points" in built.method else "Terrain model (DTM)")  # fmt: skip
    description = extra.get("description") or (
        f"Digital terrain model, {cog.resolution[0]:g} m cells, heights in "
        f"{built.vertical_datum}; {built.method} of {count} source file(s).")  # fmt: skip
    layer = Layer(
        id=layer_id, title=title, description=description, theme="terrain", kind="raster",
        raster_path=f"terrain/{layer_id}.tif", vertical_datum=built.vertical_datum,
        extent=cog.bounds, owner_org=options.owner or kept.get("owner_org"),
        licence=options.licence or kept.get("licence") or "unknown",
        attribution=extra.get("attribution") or kept.get("attribution"), access="open",
        keywords=["terrain", "elevation", "DTM"], properties=properties,
    )  # fmt: skip
    catalog.register(conn, layer)
    with conn.cursor() as cur:
        if options.mode == "replace":
            cur.execute("DELETE FROM geoby.layer_sources WHERE layer_id = %s", (layer_id,))
        cur.execute("DELETE FROM data.raster_tiles WHERE layer_id = %s", (layer_id,))
        cur.execute(_tiles_sql(), _tile_params(layer_id, cog))
    for source in new:
        catalog.record_source(conn, Source(
            layer_id=layer_id, source_file=str(source.path), checksum=source.checksum,
            mode=options.mode, row_count=built.rows.get(source.name, 0),
        ))  # fmt: skip
    if geoid is not None:
        catalog.record_source(conn, Source(layer_id=layer_id, source_file=str(geoid.path),
                                           checksum=geoid.checksum, mode=options.mode,
                                           row_count=0))  # fmt: skip


def _tiles_sql() -> str:
    return (resources.files("layers") / "sql" / "raster_tiles.sql").read_text()


def _tile_params(layer_id: str, cog: CogInfo) -> dict:
    t = cog.transform
    return {
        "layer": layer_id, "path": str(cog.path), "tile": BLOCK, "nodata": NODATA,
        "width": cog.width, "height": cog.height, "across": -(-cog.width // BLOCK),
        "down": -(-cog.height // BLOCK), "x0": t.c, "y0": t.f, "scale_x": t.a, "scale_y": t.e,
    }  # fmt: skip
