"""Exposure: the buildings, roads and buried assets under water in a flood result.

:func:`exposure` takes a water-depth raster (metres, EPSG:25832, NaN or a mask for
no data) and reads from PostGIS, with bound parameters and only inside the box of
the wet cells (``geom && ST_MakeEnvelope(...)``), the buildings (``energy_buildings``),
road segments (``water_roads``) and buried assets (``restricted.utilities_lines``,
``utilities_points``, ``utilities_areas``, read with the ``admin`` role). The depths
per object are computed here with numpy and rasterio, not by SQL per object:

* **Polygons** (buildings, asset areas): the cells whose centre lies inside the
  polygon (GDAL's rasterisation rule). A polygon that holds no cell centre (a shed
  or a cabinet smaller than a cell) takes every cell it touches instead
  (``all_touched``), so no object slips between cell centres; its flooded area is
  then exact: the area of the polygon inside the flooded cells. Otherwise the
  flooded area is the number of flooded cells times the cell area.
* **Lines** (roads, cables, pipes): samples at the vertices of each part densified
  to at most half a cell apart (``shapely.segmentize``; its own vertices and ends
  included); each sample stands for the stretch of line around it (half the piece
  on either side, so the weights add up to the length). The mean depth and the
  flooded length are weighted by those stretches; the flooded length is exact to
  within half a piece (a quarter cell) at each wet/dry change.
* **Points** (cabinets, valves, manholes): the cell the point lies in.

Cells without data (NaN or masked) and parts outside the raster are left out; the
mean depth is taken over the covered cells with data, dry ones included. An object
is *flooded* when its maximum depth reaches ``threshold_m`` (default 0.05 m, below
which water on terrain is noise of the DEM). The result lists every object with
some water on it (max depth > 0), flagged ``flooded`` or not, and totals per class
over the flooded ones.

:func:`store_exposure` writes the result as two layers through the ``ingest`` role,
in one transaction: buildings and roads as an open layer in schema ``data``, the
buried assets as a restricted layer in schema ``restricted`` (which ``geoby_read``
cannot read), both theme ``analysis`` in the catalog. The tables follow the
loader's conventions (``fid``, typed columns, ``geom`` in EPSG:25832, ``_source``,
``_record``, ``_loaded_at``, a GiST index); a rerun of the same scenario replaces them.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extras import execute_values

from layers import catalog
from layers.crs import STORAGE_EPSG
from layers.database import Database
from layers.errors import CRSMismatch, InvalidInput, NotFound

log = logging.getLogger(__name__)

__all__ = ["CLASSES", "Exposure", "assets_layer_id", "exposure", "store_exposure"]

DEFAULT_THRESHOLD_M = 0.05


@dataclass(frozen=True)
class ObjectClass:
    """One class of exposed objects: where they live and which attributes are kept."""

    name: str
    layers: tuple[str, ...]
    key: str
    attributes: dict[str, str]  # column -> PostgreSQL type of the stored layer


CLASSES: dict[str, ObjectClass] = {
    c.name: c
    for c in (
        ObjectClass("buildings", ("energy_buildings",), "building_id",
                    {"use": "text", "name": "text", "height_m": "double precision",
                     "storeys": "double precision", "floor_area_m2": "double precision"}),
        ObjectClass("roads", ("water_roads",), "road_id",
                    {"name": "text", "road_class": "text"}),
        ObjectClass("assets", ("utilities_lines", "utilities_points", "utilities_areas"),
                    "asset_id",
                    {"owner": "text", "utility_type": "text", "subtype": "text",
                     "asset_kind": "text", "hazard_class": "text", "depth_m": "double precision"}),
    )
}  # fmt: skip
MEASURES = ("max_depth_m", "mean_depth_m", "flooded", "flooded_length_m", "flooded_area_m2")
_POINT, _LINE, _POLYGON = 0, 1, 2
# shapely type id -> kind (GeometryCollection, 7, is not an asset shape)
_KINDS = {0: _POINT, 4: _POINT, 1: _LINE, 2: _LINE, 5: _LINE, 3: _POLYGON, 6: _POLYGON}


@dataclass
class Exposure:
    """Objects with water on them, one GeoDataFrame per class, and totals.

    Each frame has ``id`` (the layer's natural key, else its fid), ``layer``, the
    class's attributes (:data:`CLASSES`, NULL where the layer lacks them),
    ``max_depth_m``, ``mean_depth_m``, ``flooded`` (max depth >= ``threshold_m``),
    ``flooded_length_m`` (lines) and ``flooded_area_m2`` (polygons), and the
    geometry in EPSG:25832.
    """

    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    assets: gpd.GeoDataFrame
    threshold_m: float
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def frame(self, name: str) -> gpd.GeoDataFrame:
        return getattr(self, name)


def exposure(
    database: Database,
    depth: np.ndarray,
    transform: Affine,
    *,
    nodata: np.ndarray | None = None,
    threshold_m: float = DEFAULT_THRESHOLD_M,
    crs: int = STORAGE_EPSG,
    classes: tuple[str, ...] = tuple(CLASSES),
) -> Exposure:
    """The objects under water in a depth raster (see the module notes for the rules).

    Parameters
    ----------
    database
        Open layers are read as ``read``, restricted ones (buried assets) as ``admin``.
    depth
        Water depth (m), row 0 north; NaN where there is no data.
    transform
        North-up transform of ``depth``.
    nodata
        Optional boolean mask, True = no data (as NaN).
    threshold_m
        Depth from which an object counts as flooded.
    crs
        EPSG code of the raster; only EPSG:25832, the storage CRS, is accepted.
    classes
        Which of ``buildings``, ``roads``, ``assets`` to look at.

    Returns
    -------
    Exposure

    Raises
    ------
    InvalidInput
        Not a 2-D raster, a rotated grid, a bad threshold or an unknown class.
    CRSMismatch
        The raster or a layer is not in EPSG:25832.
    """
    grid = _Grid.of(depth, transform, nodata, crs)
    if not (math.isfinite(threshold_m) and threshold_m > 0):
        raise InvalidInput(f"threshold_m must be a positive depth, got {threshold_m!r}",
                           field="threshold_m")  # fmt: skip
    unknown = set(classes) - set(CLASSES)
    if unknown:
        raise InvalidInput(f"unknown exposure class(es) {', '.join(sorted(unknown))}; "
                           f"one of {', '.join(CLASSES)}", field="classes")  # fmt: skip
    box = grid.wet_bounds()
    frames = {}
    for name, spec in CLASSES.items():
        parts = []
        if name in classes and box is not None:
            for layer_id in spec.layers:
                objects = _read_objects(database, layer_id, spec, box)
                if objects is not None and len(objects):
                    parts.append(_measure(objects, grid, threshold_m))
        frames[name] = _concat(parts, spec)
    result = Exposure(frames["buildings"], frames["roads"], frames["assets"], threshold_m)
    result.totals = totals(result)
    return result


# -- the raster ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    depth: np.ndarray  # float, NaN = no data; the caller's array, never written to
    transform: Affine

    @classmethod
    def of(cls, depth, transform: Affine, nodata, crs: int) -> _Grid:
        if crs != STORAGE_EPSG:
            raise CRSMismatch(f"the depth raster must be in EPSG:{STORAGE_EPSG}, not EPSG:{crs}",
                              field="crs")  # fmt: skip
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise InvalidInput(f"the depth raster must be 2-D, got shape {depth.shape}",
                               field="depth")  # fmt: skip
        if transform.b or transform.d or transform.a <= 0 or transform.e >= 0:
            raise InvalidInput(f"the depth raster is not a north-up grid: {transform}",
                               field="transform")  # fmt: skip
        if not np.issubdtype(depth.dtype, np.floating):
            depth = depth.astype(np.float64)
        if nodata is not None:  # a copy only where a mask must be applied
            depth = np.where(np.asarray(nodata, dtype=bool), np.nan, depth)
        return cls(depth, transform)

    @property
    def cell_area(self) -> float:
        return self.transform.a * -self.transform.e

    @property
    def step(self) -> float:
        """Spacing of the samples along lines: half a cell."""
        return min(self.transform.a, -self.transform.e) / 2

    def wet_bounds(self) -> tuple[float, float, float, float] | None:
        """Box (xmin, ymin, xmax, ymax) of the cells with water, None when all are dry."""
        wet = self.depth > 0  # NaN compares False
        rows, cols = np.flatnonzero(wet.any(axis=1)), np.flatnonzero(wet.any(axis=0))
        if rows.size == 0:
            return None
        t = self.transform
        box = (t.c + t.a * cols[0], t.f + t.e * (rows[-1] + 1),
               t.c + t.a * (cols[-1] + 1), t.f + t.e * rows[0])  # fmt: skip
        return tuple(float(v) for v in box)  # plain floats bind as SQL numbers

    def values_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Depth of the cells holding the points; NaN outside the raster."""
        t = self.transform
        col = np.floor((x - t.c) / t.a).astype(np.int64)
        row = np.floor((y - t.f) / t.e).astype(np.int64)
        rows, cols = self.depth.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        out = np.full(x.shape, np.nan)
        out[inside] = self.depth[row[inside], col[inside]]
        return out

    def window(self, bounds) -> tuple[slice, slice] | None:
        """Row and column slices of the cells a box touches, None when outside."""
        t = self.transform
        xmin, ymin, xmax, ymax = bounds
        c0 = max(int(math.floor((xmin - t.c) / t.a)), 0)
        c1 = min(int(math.floor((xmax - t.c) / t.a)) + 1, self.depth.shape[1])
        r0 = max(int(math.floor((ymax - t.f) / t.e)), 0)
        r1 = min(int(math.floor((ymin - t.f) / t.e)) + 1, self.depth.shape[0])
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)


# -- reading the objects ------------------------------------------------------------


def _table_columns(conn: Connection, layer: catalog.Layer) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s)"
            " AND a.attnum > 0 AND NOT a.attisdropped",
            (f'"{layer.table_schema}"."{layer.table_name}"',),
        )
        return {row[0] for row in cur.fetchall()}


def _read_objects(
    database: Database, layer_id: str, spec: ObjectClass, box: tuple[float, ...]
) -> gpd.GeoDataFrame | None:
    """Objects of one layer whose box meets ``box``: fid, id, attributes, geometry."""
    with database.connection("read") as conn:
        try:
            layer = catalog.get(conn, layer_id)
        except NotFound:
            log.info("exposure: layer %s is not loaded; no %s from it", layer_id, spec.name)
            return None
    if layer.kind != "vector":
        raise InvalidInput(f"layer {layer_id} is a {layer.kind} layer, not vector", field="layer")
    if layer.storage_srid != STORAGE_EPSG:
        raise CRSMismatch(f"layer {layer_id} is stored in EPSG:{layer.storage_srid}, not "
                          f"EPSG:{STORAGE_EPSG}", field="layer")  # fmt: skip
    role = "admin" if layer.access == "restricted" else "read"
    geom = layer.properties.get("geometry_column", "geom")
    with database.connection(role) as conn:
        present = _table_columns(conn, layer)
        if geom not in present:
            log.warning("exposure: layer %s has no table or no %s column", layer_id, geom)
            return None
        wanted = [c for c in ("fid", spec.key, *spec.attributes) if c in present]
        query = sql.SQL(
            "SELECT {cols}, ST_AsBinary(ST_Force2D({g})) FROM {t}"
            " WHERE {g} && ST_MakeEnvelope(%s, %s, %s, %s, %s)"
        ).format(cols=sql.SQL(", ").join(map(sql.Identifier, wanted)), g=sql.Identifier(geom),
                 t=layer.qualified_table)  # fmt: skip
        with conn.cursor() as cur:
            cur.execute(query, (*box, STORAGE_EPSG))
            rows = cur.fetchall()
    frame = pd.DataFrame([r[:-1] for r in rows], columns=wanted)
    geometry = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else []
    ids = frame[spec.key] if spec.key in frame else pd.Series([None] * len(frame))
    fids = frame["fid"] if "fid" in frame else pd.Series(range(1, len(frame) + 1))
    out = pd.DataFrame({"id": [str(i) if i is not None else f"fid {f}"
                               for i, f in zip(ids, fids, strict=True)],
                        "layer": layer_id})  # fmt: skip
    for column in spec.attributes:
        out[column] = frame[column].to_numpy() if column in frame else None
    return gpd.GeoDataFrame(out, geometry=geometry, crs=STORAGE_EPSG)


def _concat(parts: list[pd.DataFrame], spec: ObjectClass) -> gpd.GeoDataFrame:
    columns = ["id", "layer", *spec.attributes, *MEASURES]
    if not parts:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=STORAGE_EPSG)
    frame = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(frame[[*columns, "geometry"]], geometry="geometry", crs=STORAGE_EPSG)


# -- measuring ----------------------------------------------------------------------


def _measure(objects: gpd.GeoDataFrame, grid: _Grid, threshold: float) -> gpd.GeoDataFrame:
    """Add the depth measures; keep the objects with water on them."""
    geoms = objects.geometry.to_numpy()
    kinds = np.array([_KINDS.get(int(t), -1) for t in shapely.get_type_id(geoms)], dtype=int)
    n = len(objects)
    stats = {
        "max_depth_m": np.full(n, np.nan), "mean_depth_m": np.full(n, np.nan),
        "flooded_length_m": np.full(n, np.nan), "flooded_area_m2": np.full(n, np.nan),
    }  # fmt: skip
    if (kinds < 0).any():
        log.warning("exposure: %d objects of %s are neither points, lines nor polygons; skipped",
                    int((kinds < 0).sum()), objects["layer"].iloc[0])  # fmt: skip
    for kind, measure in ((_POINT, _points), (_LINE, _lines), (_POLYGON, _polygons)):
        index = np.flatnonzero(kinds == kind)
        if index.size:
            for name, values in measure(geoms[index], grid, threshold).items():
                stats[name][index] = values
    out = objects.copy()
    for name, values in stats.items():
        out[name] = values
    out["flooded"] = out["max_depth_m"] >= threshold
    return out[out["max_depth_m"] > 0]


def _points(geoms: np.ndarray, grid: _Grid, threshold: float) -> dict[str, np.ndarray]:
    parts, owner = shapely.get_parts(geoms, return_index=True)
    xy = shapely.get_coordinates(parts)
    values = grid.values_at(xy[:, 0], xy[:, 1])
    return _aggregate(owner, values, np.ones_like(values), len(geoms))


def _lines(geoms: np.ndarray, grid: _Grid, threshold: float) -> dict[str, np.ndarray]:
    parts, owner = shapely.get_parts(geoms, return_index=True)
    # samples: the vertices of the line densified to at most half a cell apart
    dense = shapely.segmentize(parts, grid.step)
    xy, part = shapely.get_coordinates(dense, return_index=True)
    pieces = np.hypot(*np.diff(xy, axis=0).T)
    pieces[part[1:] != part[:-1]] = 0.0  # no piece between two parts
    weights = np.zeros(len(xy))
    weights[:-1] += pieces / 2  # a sample stands for half the piece on either side
    weights[1:] += pieces / 2
    values = grid.values_at(xy[:, 0], xy[:, 1])
    stats = _aggregate(owner[part], values, weights, len(geoms))
    wet = np.where(values >= threshold, weights, 0.0)
    stats["flooded_length_m"] = np.bincount(owner[part], weights=wet, minlength=len(geoms))
    return stats


def _polygons(geoms: np.ndarray, grid: _Grid, threshold: float) -> dict[str, np.ndarray]:
    n = len(geoms)
    out = {"max_depth_m": np.full(n, np.nan), "mean_depth_m": np.full(n, np.nan),
           "flooded_area_m2": np.full(n, np.nan)}  # fmt: skip
    for i, geom in enumerate(geoms):
        window = grid.window(geom.bounds)
        if window is None or geom.is_empty:
            continue
        rows, cols = window
        values = grid.depth[rows, cols]
        wt = grid.transform @ Affine.translation(cols.start, rows.start)
        covered = rasterio.features.geometry_mask([geom], values.shape, wt, invert=True)
        small = not covered.any()
        if small:
            covered = rasterio.features.geometry_mask([geom], values.shape, wt, invert=True,
                                                      all_touched=True)  # fmt: skip
        cells = values[covered].astype(np.float64)
        known = ~np.isnan(cells)
        if not known.any():
            continue
        out["max_depth_m"][i] = cells[known].max()
        out["mean_depth_m"][i] = cells[known].mean()
        wet = covered & (values >= threshold)
        if small:
            out["flooded_area_m2"][i] = _area_in_cells(geom, wet, wt)
        else:
            out["flooded_area_m2"][i] = wet.sum() * grid.cell_area
    return out


def _area_in_cells(geom, cells: np.ndarray, transform: Affine) -> float:
    """Area of ``geom`` inside the marked cells (exact; used for the few cells of small polygons)."""
    rows, cols = np.nonzero(cells)
    if rows.size == 0:
        return 0.0
    x0, y0 = transform @ (cols, rows)
    x1, y1 = transform @ (cols + 1, rows + 1)
    boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1),
                        np.maximum(y0, y1))  # fmt: skip
    return float(shapely.area(shapely.intersection(boxes, geom)).sum())


def _aggregate(owner: np.ndarray, values: np.ndarray, weights: np.ndarray, n: int) -> dict:
    """Per object: max and weighted mean of the samples with data (NaN where none has)."""
    known = ~np.isnan(values)
    w = np.where(known, weights, 0.0)
    total = np.bincount(owner, weights=w, minlength=n)
    summed = np.bincount(owner, weights=np.where(known, values * weights, 0.0), minlength=n)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, owner[known], values[known])
    has = np.bincount(owner[known], minlength=n) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, summed / total, np.nan)
    # objects whose samples all have zero weight (a zero-length line) but data: plain mean
    flat = has & (total == 0)
    if flat.any():
        counts = np.bincount(owner[known], minlength=n)
        sums = np.bincount(owner[known], weights=values[known], minlength=n)
        mean[flat] = sums[flat] / counts[flat]
    return {"max_depth_m": np.where(has, peak, np.nan), "mean_depth_m": np.where(has, mean, np.nan)}


# -- totals -------------------------------------------------------------------------


def totals(result: Exposure) -> dict[str, dict[str, Any]]:
    """Totals per class over the flooded objects (JSON-ready).

    ``count`` flooded objects, ``wet`` objects with any water, ``max_depth_m``,
    ``flooded_length_m`` (lines) and ``flooded_area_m2`` (polygons); for assets also
    the same per ``utility_type`` and per ``hazard_class``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in CLASSES:
        frame = result.frame(name)
        out[name] = _sums(frame)
        if name == "assets":
            flooded = frame[frame["flooded"].astype(bool)]
            for column in ("utility_type", "hazard_class"):
                keys = flooded[column].fillna("unknown")
                out[name][f"by_{column}"] = {
                    str(key): _sums(group) for key, group in flooded.groupby(keys, sort=True)
                }
    return out


def _sums(frame: pd.DataFrame) -> dict[str, Any]:
    flooded = frame[frame["flooded"].astype(bool)] if len(frame) else frame
    peak = flooded["max_depth_m"].max() if len(flooded) else None
    return {
        "count": int(len(flooded)),
        "wet": int(len(frame)),
        "max_depth_m": None if peak is None or pd.isna(peak) else float(peak),
        "flooded_length_m": float(np.nansum(flooded["flooded_length_m"].to_numpy(float))),
        "flooded_area_m2": float(np.nansum(flooded["flooded_area_m2"].to_numpy(float))),
    }


# -- storing ------------------------------------------------------------------------

_LAYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PREFIX = "flood_exposure_"
_COMMON = {"source_layer": "text", "object_id": "text"}
_MEASURE_TYPES = {"max_depth_m": "double precision", "mean_depth_m": "double precision",
                  "flooded": "boolean", "flooded_length_m": "double precision",
                  "flooded_area_m2": "double precision"}  # fmt: skip
OPEN_COLUMNS = {"object_class": "text", **_COMMON, **CLASSES["buildings"].attributes,
                **CLASSES["roads"].attributes, **_MEASURE_TYPES}  # fmt: skip
ASSET_COLUMNS = {**_COMMON, **CLASSES["assets"].attributes, **_MEASURE_TYPES}


def assets_layer_id(layer_id: str) -> str:
    """The restricted layer's id: ``flood_exposure_X`` -> ``flood_exposure_assets_X``.

    Examples
    --------
    >>> assets_layer_id("flood_exposure_cloudburst_100y")
    'flood_exposure_assets_cloudburst_100y'
    >>> assets_layer_id("pond_test")
    'pond_test_assets'
    """
    if layer_id.startswith(_PREFIX):
        return _PREFIX + "assets_" + layer_id.removeprefix(_PREFIX)
    return layer_id + "_assets"


def store_exposure(
    database: Database,
    result: Exposure,
    layer_id: str,
    title: str,
    *,
    description: str = "",
    properties: dict[str, Any] | None = None,
) -> tuple[catalog.Layer, catalog.Layer]:
    """Store an exposure as an open layer (buildings, roads) and a restricted one (assets).

    Parameters
    ----------
    database
        Written as the ``ingest`` role, in one transaction.
    result
        From :func:`exposure`.
    layer_id
        Id (and table name) of the open layer, e.g. ``flood_exposure_<scenario_id>``;
        the restricted layer is :func:`assets_layer_id` of it.
    title
        Title of the open layer; the restricted one gets "... : buried assets".
    description, properties
        Further catalog text and properties (the scenario's parameters); the
        threshold and the totals are added.

    Returns
    -------
    tuple of Layer
        The open and the restricted layer as registered.

    Raises
    ------
    InvalidInput
        A layer id that is not a valid id (lowercase, digits, ``_``, <= 63 characters).
    """
    assets_id = assets_layer_id(layer_id)
    for candidate in (layer_id, assets_id):
        if not _LAYER_ID.match(candidate):
            raise InvalidInput(f"'{candidate}' is not a valid layer id (a-z, 0-9, _; at most 63 "
                               "characters, starting with a letter)", field="layer_id")  # fmt: skip
    common = {"threshold_m": result.threshold_m, **(properties or {})}
    open_rows = pd.concat(
        [_stored_rows(result.buildings, "building"), _stored_rows(result.roads, "road")],
        ignore_index=True,
    )
    open_layer = catalog.Layer(
        id=layer_id, title=title, theme="analysis", kind="vector", table_schema="data",
        table_name=layer_id, geometry_type="Geometry", access="open",
        description=description or "Buildings and road segments under water in a flood "
        "scenario, with the maximum and mean water depth per object.",
        keywords=["flood", "exposure", "buildings", "roads"],
        properties={**common, "derived_from": ["energy_buildings", "water_roads"],
                    "totals": {k: result.totals.get(k) for k in ("buildings", "roads")},
                    "restricted_layer": assets_id},
    )  # fmt: skip
    assets_layer = catalog.Layer(
        id=assets_id, title=f"{title}: buried assets", theme="analysis", kind="vector",
        table_schema="restricted", table_name=assets_id, geometry_type="Geometry",
        access="restricted", keywords=["flood", "exposure", "utilities", "buried infrastructure"],
        description="Buried cables, pipes and utility objects under water in a flood scenario, "
        "with the maximum and mean water depth per object.",
        properties={**common, "derived_from": list(CLASSES["assets"].layers),
                    "totals": {"assets": result.totals.get("assets")}, "open_layer": layer_id},
    )  # fmt: skip
    asset_rows = _stored_rows(result.assets, None)
    with database.connection("ingest") as conn:
        _write_table(conn, open_layer, OPEN_COLUMNS, open_rows)
        _write_table(conn, assets_layer, ASSET_COLUMNS, asset_rows)
        stored = []
        for layer in (open_layer, assets_layer):
            catalog.register(conn, layer)
            stored.append(catalog.refresh_statistics(conn, layer.id))
    log.info("stored exposure layers %s (%d rows) and %s (%d rows)", layer_id, len(open_rows),
             assets_id, len(asset_rows))  # fmt: skip
    return stored[0], stored[1]


def _stored_rows(frame: gpd.GeoDataFrame, object_class: str | None) -> pd.DataFrame:
    out = pd.DataFrame(frame.drop(columns="geometry"))
    out = out.rename(columns={"layer": "source_layer", "id": "object_id"})
    if object_class is not None:
        out.insert(0, "object_class", object_class)
    out["wkb"] = shapely.to_wkb(frame.geometry.to_numpy()) if len(frame) else []
    return out


def _value(value: Any, pg_type: str) -> Any:
    if value is None or (np.isscalar(value) and pd.isna(value)):
        return None
    if pg_type == "boolean":
        return bool(value)
    if pg_type == "double precision":
        return float(value)
    return str(value)


def _write_table(conn: Connection, layer: catalog.Layer, columns: dict[str, str],
                 rows: pd.DataFrame) -> None:  # fmt: skip
    table = layer.qualified_table
    defs = [sql.SQL("fid bigserial PRIMARY KEY")]
    defs += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items()]
    defs += [sql.SQL("geom geometry(Geometry, {})").format(sql.Literal(STORAGE_EPSG)),
             sql.SQL("_source text NOT NULL"), sql.SQL("_record text NOT NULL"),
             sql.SQL("_loaded_at timestamptz NOT NULL DEFAULT now()")]  # fmt: skip
    names = [*columns, "geom", "_source", "_record"]
    values = [
        tuple(_value(row.get(c), t) for c, t in columns.items())
        + (bytes(row["wkb"]), str(row["source_layer"]), str(row["object_id"]))
        for row in rows.to_dict("records")
    ]
    template = sql.SQL("({}, ST_GeomFromWKB(%s, {}), %s, %s)").format(
        sql.SQL(", ").join(sql.Placeholder() * len(columns)), sql.Literal(STORAGE_EPSG)
    )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(defs)))
        insert = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
            table, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        if values:
            execute_values(cur, insert.as_string(conn), values,
                           template=template.as_string(conn), page_size=1000)  # fmt: skip
        cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(table))
        cur.execute(sql.SQL("ANALYZE {}").format(table))
