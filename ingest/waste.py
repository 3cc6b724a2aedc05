"""The waste family: bins, recycling stations, facilities, fleet, readings, collections.

``geoby ingest waste FILE...`` loads six open layers in schema ``data``
(:mod:`ingest.waste_layers`):

==============================  ========  ====================================================
layer                           geometry  key and main columns
==============================  ========  ====================================================
``waste_bins``                  points    bin_id; fraction, capacity_l, bin_type, model,
                                          site_id, name, address, description
``waste_recycling_stations``    points    site_id; name, address, fractions, n_containers
``waste_facilities``            points    facility_id; kind (depot, disposal_site), accepts
``waste_fleet``                 none      truck_id; fraction, capacity_kg, capacity_m3
``waste_readings``              none      (bin_id, time); fill_level 0-1, temperature_c,
                                          battery_v, fire_flag, tilt_flag, quality
``waste_collections``           none      (bin_id, time); collection_id, fill_before,
                                          fill_after, volume_l, weight_kg, truck_id
==============================  ========  ====================================================

What a file is, is recognised from its content (``--option kind=KIND``
forces one): a JSON file of NGSI-LD ``WasteContainer`` entities gives bins
and readings (:mod:`ingest.waste_ngsi`); a vector file's layers are bins,
recycling stations or facilities by layer name or columns; a CSV or
spreadsheet is readings (bin, time, fill level), collections (bin, time and
fill before, weight, volume or a collection id), the fleet (truck and
capacity) or bins (coordinates in ``lon``/``lat`` columns, EPSG:4326 unless
``--crs`` says otherwise, or ``x``/``y`` with ``--crs``). Anything else is
refused with the kinds and the columns each expects. Files of one command
load bins first, then the fleet, readings and collections, so readings can
refer to bins of the same command.

Decisions (see also :mod:`ingest.waste_rows` and :mod:`ingest.waste_series`):

* Bins without an id column get ``<file stem>-<n>`` (n counts records from 1
  in file order): the same bin in ``litter-bins.geojson`` and
  ``litter-bins.csv`` gets the same id, so loading the second is refused as
  already loaded (``--mode upsert`` updates instead).
* A file without a fraction column takes ``--option fraction=...``, else a
  fraction its name says (``litter-bins`` -> ``litter``), else stays empty.
  A fraction outside the vocabulary refuses the record, naming it; the
  reported word is kept in ``properties.fraction_reported``. A list of
  recyclables (``paper,plastic``) is ``mixed_recycling``.
* Every source attribute that maps to no column is kept in ``properties``.
* Features far from all others (a point at a grid's false origin) are
  reported by the loader as warnings, and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ingest import waste_ngsi, waste_series
from ingest.field_map import generated_ids, json_records, match
from ingest.loader import LoadReport, Part, load_file
from ingest.source import SourceFile
from ingest.vector import read_chunks
from ingest.waste_files import WORKBOOKS, Job, coordinates, recognise
from ingest.waste_layers import (
    FRACTIONS,
    KINDS,
    fraction_in_name,
    normal_fraction,
    normal_fractions,
)  # fmt: skip
from ingest.waste_rows import RowChecks, keep_rejects, known_bins, numbers
from ingest.waste_tables import Column, Table, read_csv, read_xlsx
from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

RECYCLABLE = {"paper", "cardboard", "plastic", "glass", "metal", "mixed_recycling"}


def ingest(database: Database, paths: list[Path], options) -> list[LoadReport]:
    """Load waste files, one transaction per file, bins before what refers to them.

    Parameters
    ----------
    database
        Where to load.
    paths
        Vector, CSV, XLSX or NGSI-LD JSON files.
    options
        :class:`ingest.pipelines.IngestOptions`; ``extra`` may hold ``kind``,
        ``fraction``, ``fill_unit`` (``percent``), ``timezone``, ``licence``
        and ``attribution``.

    Returns
    -------
    list of LoadReport
        One per file, in the order loaded.

    Raises
    ------
    InvalidInput
        A file, record or field was refused; that file loaded nothing.
    """
    jobs = sorted((recognise(p, options.extra.get("kind")) for p in paths), key=lambda j: j.rank)
    return [_load(database, job, options) for job in jobs]


def _load(database: Database, job: Job, options) -> LoadReport:
    source = SourceFile.open(job.path)
    checks: dict[str, RowChecks] = {}

    def check(kind: str) -> RowChecks:
        return checks.setdefault(kind, RowChecks(source.name, options.skip_invalid))

    report = load_file(database, source, _parts(database, job, options, check),
                       mode=options.mode, skip_invalid=options.skip_invalid,
                       show_progress=options.show_progress)  # fmt: skip
    if report.skipped:
        return report
    for kind, found in checks.items():
        report.warnings.extend(found.warnings)
        keep_rejects(database, KINDS[kind].layer_id, source, found.rejects)
        report.rejected += len(found.rejects)
    return report


# -- parts --------------------------------------------------------------------------------


def _parts(database: Database, job: Job, options, check) -> Iterator[Part]:
    path = job.path
    if job.kind == "ngsi":
        yield from _ngsi_parts(database, path, options, check)
    elif job.kind == "vector":
        single = len(job.layers) == 1
        for layer, kind in job.layers:
            chunks = read_chunks(path, layer=layer, crs=options.crs)
            prefix = path.stem if single else f"{path.stem}-{layer}"
            yield Part(KINDS[kind].spec(options),
                       _places(chunks, kind, prefix, check(kind), options))  # fmt: skip
    else:
        workbook = path.suffix.lower() in WORKBOOKS
        table = read_xlsx(path, [KINDS[job.kind].fields]) if workbook else read_csv(path)
        spec, checks = KINDS[job.kind].spec(options), check(job.kind)
        if spec.spatial:
            points = _points(table, path, options, checks)
            yield Part(spec, _places(points, job.kind, path.stem, checks, options))
        elif job.kind == "fleet":
            yield Part(spec, waste_series.fleet(table, checks, options))
        else:
            build = getattr(waste_series, job.kind)
            yield Part(spec, build(table, checks, options, known_bins(database)))


def _ngsi_parts(database: Database, path: Path, options, check) -> Iterator[Part]:
    bins, readings, warnings = waste_ngsi.to_frames(waste_ngsi.read_entities(path), path.name)
    for warning in warnings:
        check("bins").warn(warning)
    yield Part(KINDS["bins"].spec(options),
               _places(iter([bins]), "bins", path.stem, check("bins"), options))  # fmt: skip
    if len(readings):
        known = known_bins(database) | set(bins["bin_id"].dropna().astype(str))
        table = Table([Column(k, k) for k in readings.columns if k != "_record"], iter([readings]))
        yield Part(KINDS["readings"].spec(options),
                   waste_series.readings(table, check("readings"), options, known))  # fmt: skip


def _points(table: Table, path: Path, options, checks: RowChecks) -> Iterator[gpd.GeoDataFrame]:
    """Rows of a table with coordinate columns as points in the declared CRS."""
    found = coordinates(table.keys)
    if found is None:
        raise InvalidInput(f"{path.name} has no coordinate columns (lon/lat or x/y)",
                           record=path.name, field="geometry")  # fmt: skip
    x_key, y_key, lonlat = found
    crs = options.crs or ("EPSG:4326" if lonlat else None)
    if crs is None:
        raise InvalidInput(f"{path.name} gives x/y coordinates ({x_key}, {y_key}) but no CRS; "
                           "state it with --crs EPSG:nnnn", record=path.name, field="crs")  # fmt: skip
    for frame in table.chunks:
        frame = frame.reset_index(drop=True)
        x, bad_x = numbers(frame[x_key])
        y, bad_y = numbers(frame[y_key])
        missing = (x.isna() & ~pd.Series(bad_x)) | (y.isna() & ~pd.Series(bad_y))
        faults = [(x_key, bad_x, "value {value} is not a number", frame[x_key]),
                  (y_key, bad_y, "value {value} is not a number", frame[y_key]),
                  (x_key, missing.to_numpy(), "has no coordinate", None)]  # fmt: skip
        frame = frame.assign(_x=x, _y=y)
        frame = checks.apply(frame, faults)
        points = gpd.points_from_xy(frame.pop("_x"), frame.pop("_y"))
        yield gpd.GeoDataFrame(frame.drop(columns=[x_key, y_key]), geometry=points, crs=crs)


def _places(
    chunks, kind: str, prefix: str, checks: RowChecks, options
) -> Iterator[gpd.GeoDataFrame]:
    """Point layers' rows: fields mapped, ids made where missing, fractions normalised."""
    fields = KINDS[kind].fields
    key = KINDS[kind].key[0]
    default = options.extra.get("fraction") or fraction_in_name(prefix)
    mapping, seen = None, 0
    for chunk in chunks:
        geometry = chunk.geometry.name
        if mapping is None:
            names = [c for c in chunk.columns if c not in ("_record", geometry, "_properties")]
            mapping = match(names, fields)
        out = pd.DataFrame({"_record": chunk["_record"].astype(str).to_numpy()})
        reverse = {t: s for s, t in mapping.items()}
        for f in fields:
            out[f.name] = chunk[reverse[f.name]].to_numpy() if f.name in reverse else None
        if key not in reverse:
            out[key] = generated_ids(prefix, seen, len(out))
        seen += len(chunk)
        extra = _properties(chunk, mapping, geometry)
        faults = []
        if kind == "bins":
            out["fraction"], reported, faults = _bin_fractions(out["fraction"], default)
            extra = [_merged(p, {"fraction_reported": r} if r else None)
                     for p, r in zip(extra, reported, strict=True)]  # fmt: skip
        elif kind in ("recycling_stations", "facilities"):
            name = "fractions" if kind == "recycling_stations" else "accepts"
            out[name], faults = _lists(out[name], name)
        out["properties"] = extra
        out["_geometry"] = chunk.geometry.to_numpy()
        out = checks.apply(out, faults)
        yield gpd.GeoDataFrame(out.drop(columns="_geometry"), geometry=out["_geometry"].to_numpy(),
                               crs=chunk.crs)  # fmt: skip


def _properties(chunk: pd.DataFrame, mapping: dict, geometry: str) -> list:
    rest = [c for c in chunk.columns if c not in mapping and c not in ("_record", geometry,
                                                                        "_properties")]  # fmt: skip
    records = json_records(chunk[rest]) if rest else [None] * len(chunk)
    if "_properties" in chunk:
        records = [_merged(r, p) for r, p in zip(records, chunk["_properties"], strict=True)]
    return records


def _merged(a: dict | None, b: dict | None) -> dict | None:
    merged = {**(a or {}), **(b or {})}
    return merged or None


def _bin_fractions(raw: pd.Series, default: str | None):
    """Normalised fractions, the reported word where it differs, and the faults."""
    normal, reported = [], []
    for value in raw.astype(object):
        if (
            value is None
            or (isinstance(value, float) and np.isnan(value))
            or not str(value).strip()
        ):
            normal.append(default)
            reported.append(None)
            continue
        found = normal_fraction(value)
        if found is None and "," in str(value):
            listed = normal_fractions(value)
            found = "mixed_recycling" if listed and set(listed.split(",")) <= RECYCLABLE else None
        normal.append(found)
        reported.append(None if found == str(value) else str(value))
    normal = pd.Series(normal, dtype=object)
    bad = (normal.isna() & pd.Series(reported).notna()).to_numpy()
    reason = f"value {{value}} is not a waste fraction; one of {', '.join(FRACTIONS)}"
    return normal, reported, [("fraction", bad, reason, raw)]


def _lists(raw: pd.Series, name: str):
    values = raw.astype(object).map(lambda v: None if v is None or pd.isna(v) or not str(v).strip()
                                    else normal_fractions(v))  # fmt: skip
    present = raw.astype(object).map(
        lambda v: v is not None and not pd.isna(v) and bool(str(v).strip())
    )
    bad = (present & values.isna()).to_numpy()
    reason = f"value {{value}} is not a list of waste fractions ({', '.join(FRACTIONS)})"
    return values, [(name, bad, reason, raw)]
