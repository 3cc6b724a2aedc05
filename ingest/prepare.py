"""Turning one chunk of source records into rows for the staging table.

:func:`prepare_chunk` coerces every attribute to its column's type, checks
and repairs geometries, reprojects them to EPSG:25832, and writes the rows as
CSV for ``COPY``. Everything it refuses is named: the record (row number or
GML id), the field, and the value or coordinate at fault.

Geometry rules:

- a missing or empty geometry is rejected;
- coordinates that cannot be in the declared CRS (outside its area of use by
  more than half its extent, or lon/lat values in a projected CRS) are
  rejected, with the coordinate and the CRS in the message;
- an invalid geometry is repaired with ``make_valid`` when the repair keeps
  its meaning (same dimension, area within 1 %), counted as repaired, and
  rejected otherwise (a bow-tie polygon's repair invents area);
- a geometry of another kind than the layer's (a point in a line layer) is
  rejected; 3D coordinates are kept.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import shapely
from pyproj import CRS

from ingest.spec import TableSpec
from layers.crs import STORAGE_EPSG, transformer
from layers.errors import CRSMismatch, InvalidInput

REPAIR_AREA_TOLERANCE = 0.01
#: Most vertices one feature may have. The largest real features geoby loads (a
#: municipality's coastline, a long transmission line) have tens of thousands; a
#: feature of millions is a data error (an unsplit national outline, a runaway
#: digitiser) that makes validation, every tile and every query touching it slow.
MAX_VERTICES = 500_000
_TRUE = {"true", "t", "yes", "y", "1", "ja", "j", "sand"}
_FALSE = {"false", "f", "no", "n", "0", "nej", "falsk"}
_DIMENSION = {"Point": 0, "LineString": 1, "Polygon": 2}
# shapely type ids 0..7 by kind; index -1 (missing) is excluded before use
_TYPE_NAMES = np.array(
    ["Point", "LineString", "LineString", "Polygon", "Point", "LineString", "Polygon",
     "GeometryCollection"], dtype=object,
)  # fmt: skip


@dataclass
class Reject:
    """A record refused by the checks."""

    record: str
    reason: str
    field: str | None = None


@dataclass
class Prepared:
    """One chunk, ready for ``COPY``."""

    csv: bytes
    rows: int
    repaired: int = 0
    rejects: list[Reject] = field(default_factory=list)
    has_z: bool = False
    #: centres of the kept features' boxes in EPSG:25832, and their records
    centres: np.ndarray | None = None
    records: np.ndarray | None = None


def prepare_chunk(chunk: pd.DataFrame, spec: TableSpec, *, source: str) -> Prepared:
    """Validate, coerce, repair and reproject one chunk of records.

    Parameters
    ----------
    chunk
        Records with the spec's column names and a ``_record`` column; for a
        spatial spec, a GeoDataFrame whose CRS is the one the file declares.
    spec
        The target.
    source
        The file name, for messages.

    Returns
    -------
    Prepared
        CSV rows ``_record, <columns>, geom`` and what was repaired or rejected.

    Raises
    ------
    InvalidInput
        An attribute cannot be converted to its column's type, or a required
        one is missing (naming the file, record, field and value).
    CRSMismatch
        The file declares no CRS.
    """
    records = chunk["_record"].astype(str).to_numpy()
    out = pd.DataFrame({"_record": records})
    for name, pg_type in spec.columns.items():
        values = chunk[name] if name in chunk.columns else pd.Series([None] * len(chunk))
        out[name] = _coerce(values.reset_index(drop=True), pg_type, name, records, source)
        if name in spec.required:
            missing = out[name].isna().to_numpy()
            if missing.any():
                at = int(np.argmax(missing))
                raise InvalidInput(
                    f"{source}: required field '{name}' is empty",
                    record=f"record {records[at]}", field=name,
                )  # fmt: skip
    prepared = Prepared(csv=b"", rows=len(out))
    if spec.spatial:
        keep, wkb, prepared = _geometries(chunk, spec, records, source, prepared)
        out = out[keep].reset_index(drop=True)
        out["geom"] = wkb
        prepared.rows = len(out)
    prepared.csv = _to_csv(out)
    return prepared


# -- attributes ---------------------------------------------------------------------


def _bad(values: pd.Series, coerced: pd.Series, pg_type: str, name: str, records, source: str):
    bad = values.notna().to_numpy() & coerced.isna().to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        raise InvalidInput(
            f"{source}: field '{name}' value {values.iloc[at]!r} is not a valid {pg_type}",
            record=f"record {records[at]}", field=name,
        )  # fmt: skip


def _coerce(values: pd.Series, pg_type: str, name: str, records, source: str) -> pd.Series:
    if pg_type == "jsonb":  # dicts and lists as JSON; strings are taken as JSON text already
        missing = values.map(lambda v: v is None or v is pd.NA or (isinstance(v, float) and v != v))
        text = values.map(lambda v: v if isinstance(v, str) else json.dumps(v, default=str))
        return text.astype("string").mask(missing)
    textual = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
    if textual:
        text = values.astype("string")
        values = text.mask(text.str.strip().eq("").fillna(False))  # blank means missing
    if pg_type in ("integer", "bigint", "smallint"):
        coerced = pd.to_numeric(values, errors="coerce")
        _bad(values, coerced, pg_type, name, records, source)
        fractional = coerced.notna() & (coerced != np.floor(coerced.fillna(0)))
        _bad(values, coerced.mask(fractional), pg_type, name, records, source)
        return coerced.astype("Int64")
    if pg_type in ("double precision", "real", "numeric"):
        if textual:  # decimal commas, as Danish spreadsheets write them
            values = values.str.strip().str.replace(",", ".", regex=False)
        coerced = pd.to_numeric(values, errors="coerce").astype("float64")
        coerced = coerced.mask(~np.isfinite(coerced.fillna(0.0)))
        _bad(values, coerced, pg_type, name, records, source)
        return coerced
    if pg_type == "boolean":
        coerced = values.astype(object).map(_to_bool).astype("boolean")
        _bad(values, coerced, pg_type, name, records, source)
        return coerced
    if pg_type in ("timestamptz", "date"):
        coerced = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        _bad(values, coerced, pg_type, name, records, source)
        text = coerced.dt.strftime("%Y-%m-%d" if pg_type == "date" else "%Y-%m-%dT%H:%M:%S.%fZ")
        return text.astype("string").mask(coerced.isna())
    if textual:
        return values
    return values.astype("string").mask(values.isna())


def _to_bool(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return pd.NA
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else pd.NA


# -- geometries ---------------------------------------------------------------------


@lru_cache(maxsize=32)
def plausible_bounds(crs_wkt: str) -> tuple[tuple[float, float, float, float], bool] | None:
    """Coordinates a CRS can hold: its area of use widened by half its extent."""
    crs = CRS.from_wkt(crs_wkt)
    if crs.is_geographic:
        return (-180.0, -90.0, 180.0, 90.0), True
    area = crs.area_of_use
    if area is None:
        return None
    xmin, ymin, xmax, ymax = transformer(4326, crs_wkt).transform_bounds(
        area.west, area.south, area.east, area.north, densify_pts=21
    )
    dx, dy = (xmax - xmin) / 2, (ymax - ymin) / 2
    return (xmin - dx, ymin - dy, xmax + dx, ymax + dy), False


def _crs_rejects(geoms: np.ndarray, crs: CRS, records, source: str) -> dict[int, Reject]:
    bounds = plausible_bounds(crs.to_wkt())
    if bounds is None:
        return {}
    (xmin, ymin, xmax, ymax), geographic = bounds
    box = shapely.bounds(geoms)
    outside = (box[:, 0] < xmin) | (box[:, 1] < ymin) | (box[:, 2] > xmax) | (box[:, 3] > ymax)
    rejects = {}
    name = crs.to_string()
    for i in np.flatnonzero(outside):
        x, y = box[i, 0], box[i, 1]
        if geographic:
            hint = "; it looks like projected metres, not longitude/latitude"
        elif abs(x) <= 180 and abs(y) <= 90:
            hint = "; it looks like longitude/latitude"
        else:
            hint = ""
        rejects[int(i)] = Reject(
            records[i], f"{source}: coordinate ({x:.6g}, {y:.6g}) cannot be in {name}{hint}"
        )
    return rejects


def _shape_rejects(geoms: np.ndarray, present: np.ndarray, records, source: str) -> dict:
    """Geometries with a NaN or infinite coordinate, or more than :data:`MAX_VERTICES`."""
    rejects: dict[int, Reject] = {}
    counts = shapely.get_num_coordinates(geoms)
    for i in np.flatnonzero(present & (counts > MAX_VERTICES)):
        rejects[int(i)] = Reject(records[i], f"{source}: the geometry has {counts[i]:,} vertices, "
                                 f"more than the {MAX_VERTICES:,} a feature may have; split it")  # fmt: skip
    ok = present & (counts <= MAX_VERTICES)
    coords, index = shapely.get_coordinates(geoms[ok], include_z=True, return_index=True)
    bad = ~np.isfinite(coords[:, :2]).all(axis=1)
    where = np.flatnonzero(ok)
    for j in np.unique(index[bad]):
        i = int(where[j])
        x, y = coords[bad & (index == j)][0, :2]
        rejects[i] = Reject(records[i], f"{source}: a coordinate is not a finite number "
                            f"(e.g. {x}, {y})", field="geometry")  # fmt: skip
    return rejects


def _geometries(chunk, spec: TableSpec, records, source: str, prepared: Prepared):
    if not isinstance(chunk, gpd.GeoDataFrame) or chunk.crs is None:
        raise CRSMismatch(f"{source} declares no coordinate reference system; state it (--crs)")
    geoms = chunk.geometry.to_numpy(copy=True)
    rejects: dict[int, Reject] = {}
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        rejects[int(i)] = Reject(records[i], f"{source}: the geometry is missing or empty")
    present = ~missing
    for i, reject in _shape_rejects(geoms, present, records, source).items():
        rejects[i] = reject
        present[i] = False
    rejects.update({i: r for i, r in _crs_rejects(geoms, chunk.crs, records, source).items()
                    if present[i]})  # fmt: skip
    if spec.geometry_type not in ("Geometry", "GeometryCollection"):
        wanted = spec.geometry_type.removeprefix("Multi")
        kinds = _TYPE_NAMES[shapely.get_type_id(geoms)]
        for i in np.flatnonzero(present & (kinds != wanted)):
            rejects.setdefault(
                int(i), Reject(records[i], f"{source}: a {kinds[i]} in a {wanted} layer")
            )
    invalid = np.zeros(len(geoms), dtype=bool)
    invalid[present] = ~shapely.is_valid(geoms[present])
    for i in np.flatnonzero(invalid):
        if int(i) in rejects:
            continue
        repaired = _repair(geoms[i])
        if repaired is None:
            reason = shapely.is_valid_reason(geoms[i])
            rejects[int(i)] = Reject(records[i], f"{source}: invalid geometry ({reason})")
        else:
            geoms[i] = repaired
            prepared.repaired += 1
    keep = np.ones(len(geoms), dtype=bool)
    keep[list(rejects)] = False
    prepared.rejects = [rejects[i] for i in sorted(rejects)]
    kept = geoms[keep]
    prepared.has_z = bool(shapely.has_z(kept).any()) if len(kept) else False
    if chunk.crs.to_epsg() != STORAGE_EPSG:
        kept = shapely.transform(
            kept, _reproject(chunk.crs.to_wkt()), include_z=prepared.has_z
        ) if len(kept) else kept  # fmt: skip
    bad = ~np.isfinite(shapely.bounds(kept)).all(axis=1) if len(kept) else np.zeros(0, bool)
    if bad.any():
        at = int(np.flatnonzero(keep)[np.argmax(bad)])
        raise CRSMismatch(f"{source}: the geometry cannot be reprojected to EPSG:{STORAGE_EPSG}",
                          record=f"record {records[at]}")  # fmt: skip
    box = shapely.bounds(kept) if len(kept) else np.zeros((0, 4))
    prepared.centres = np.column_stack([(box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2])
    prepared.records = records[keep]
    # plain WKB: the merge sets the storage SRID, cheaper than EWKB per geometry
    binary = shapely.to_wkb(kept, output_dimension=3 if prepared.has_z else 2)
    wkb = np.array([b.hex() for b in binary], dtype=object)  # faster than GEOS' hex writer
    return keep, wkb, prepared


def _reproject(crs_wkt: str):
    t = transformer(crs_wkt, STORAGE_EPSG)

    def apply(coords: np.ndarray) -> np.ndarray:
        if coords.shape[1] == 3:
            x, y, z = t.transform(coords[:, 0], coords[:, 1], coords[:, 2])
            return np.column_stack([x, y, z])
        x, y = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return apply


def _repair(geom) -> object | None:
    """A valid geometry with the same meaning, or ``None`` when repair would change it."""
    fixed = shapely.make_valid(geom)
    dimension = _DIMENSION.get(geom.geom_type.removeprefix("Multi"))
    if dimension is None:
        return None
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if _DIMENSION.get(
        g.geom_type.removeprefix("Multi")) == dimension]  # fmt: skip
    if not parts:
        return None
    fixed = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    if dimension == 2:
        before = abs(_shoelace_area(geom))
        if before == 0 or abs(fixed.area - before) / before > REPAIR_AREA_TOLERANCE:
            return None
    return fixed


def _shoelace_area(geom) -> float:
    """Signed-ring area as the source drew it (a bow-tie cancels to near zero)."""
    polygons = getattr(geom, "geoms", [geom])
    total = 0.0
    for polygon in polygons:
        for k, ring in enumerate([polygon.exterior, *polygon.interiors]):
            xy = np.asarray(ring.coords)[:, :2]
            area = 0.5 * abs(np.dot(xy[:-1, 0], xy[1:, 1]) - np.dot(xy[1:, 0], xy[:-1, 1]))
            total += area if k == 0 else -area
    return total


def _to_csv(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")
    pa_csv.write_csv(table, buffer, write_options=options)
    return buffer.getvalue()
