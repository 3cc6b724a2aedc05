"""Buildings and their hourly consumption for :mod:`ingest.energy`.

``energy_buildings``: footprints (any vector format) with building_id, use,
floor_area_m2, heat_installation and every other attribute of the file, plus
``annual_electricity_kwh``, ``annual_heat_kwh`` and ``consumption_hours``,
which :mod:`ingest.energy_density` derives from the consumption after each
load. Heat installations are normalised to the sample's vocabulary
(``district_heating``, ``heat_pump``, ``natural_gas``, ``oil``,
``biomass``, ``electric``; Danish names such as ``fjernvarme`` mapped).

``energy_consumption_hourly``: building_id, time (UTC), electricity_kwh,
heat_kwh; key (building_id, time). The file (millions of rows, CSV or
``.csv.gz``) is streamed with pyarrow's multi-threaded CSV reader in blocks
of about a million rows, parsed to typed columns without Python loops; a
block that does not parse is re-read as text to name the row and field.
Rows of a building that ``energy_buildings`` does not hold are refused,
naming the first such row, because consumption that no footprint carries
would silently vanish from the heat map; with ``--skip-invalid`` they are
left out and counted in a warning instead. Naive times are read in
``--option timezone`` (default Europe/Copenhagen), per building.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql

from ingest.loader import Part
from ingest.spec import TableSpec, infer_columns
from ingest.tabular import (
    FileContext,
    delimiter,
    head_lines,
    header,
    localize,
    numbers,
    pick,
    read_table,
    text_column,
    times,
    zone,
)  # fmt: skip
from ingest.vector import peek, read_chunks
from layers.database import Database
from layers.errors import InvalidInput

BUILDING = ("building_id", "bygning_id", "id_lokalid", "bbr_id", "building")
USE = ("use", "building_use", "anvendelse", "usage")
FLOOR = ("floor_area_m2", "floor_area", "area_m2", "samlet_bygningsareal", "gross_floor_area_m2")
HEAT = ("heat_installation", "heating", "heat_source", "varmeinstallation", "heating_system")
TIME = ("timestamp", "time", "hour_utc", "time_utc", "datetime", "date_time", "hour_dk")
ELECTRICITY = ("electricity_kwh", "el_kwh", "electricity")
HEAT_KWH = ("heat_kwh", "heating_kwh", "heat")
BLOCK_BYTES = 32 << 20
_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)
ANNUAL = {"annual_electricity_kwh": "double precision", "annual_heat_kwh": "double precision",
          "consumption_hours": "integer"}  # fmt: skip
_HEAT_WORDS = {
    "fjernvarme": "district_heating", "district heating": "district_heating",
    "blokvarme": "district_heating", "varmepumpe": "heat_pump", "heat pump": "heat_pump",
    "naturgas": "natural_gas", "gas": "natural_gas", "olie": "oil", "oliefyr": "oil",
    "el": "electric", "elvarme": "electric", "electricity": "electric",
    "biomasse": "biomass", "træpiller": "biomass", "wood": "biomass",
}  # fmt: skip
BUILDINGS_EXPECTS = "a vector file (GeoPackage, GeoJSON, ...) of footprints with building_id, optionally use, floor_area_m2, heat_installation"
CONSUMPTION_EXPECTS = "building_id, timestamp and electricity_kwh and/or heat_kwh (CSV or .csv.gz)"
CONSUMPTION_COLUMNS = {"building_id": "text", "time": "timestamptz",
                       "electricity_kwh": "double precision", "heat_kwh": "double precision"}  # fmt: skip


def is_consumption(columns: list[str], lines: list[str]) -> bool:
    return bool(pick(columns, *BUILDING) and pick(columns, *TIME)
                and pick(columns, *ELECTRICITY, *HEAT_KWH))  # fmt: skip


def heat_word(value: object) -> object:
    """A heat installation in the common vocabulary (``Fjernvarme`` -> ``district_heating``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower()
    return _HEAT_WORDS.get(text, text.replace(" ", "_").replace("-", "_"))


# -- buildings ----------------------------------------------------------------------


def buildings_parts(ctx: FileContext) -> Iterator[Part]:
    """Footprints into ``energy_buildings``, canonical columns first, every attribute kept."""
    first, chunks = peek(read_chunks(ctx.path, crs=ctx.options.crs))
    if first is None:
        return
    cols = list(first.columns)
    rename = {found: canon for canon, aliases in (("building_id", BUILDING), ("use", USE),
              ("floor_area_m2", FLOOR), ("heat_installation", HEAT))
              if (found := pick(cols, *aliases)) is not None}  # fmt: skip
    if "building_id" not in rename.values():
        raise InvalidInput(f"{ctx.name}: buildings need a building_id field; fields are "
                           f"{', '.join(c for c in cols if c != '_record')}", record=ctx.name,
                           field="building_id")  # fmt: skip
    others = infer_columns(first.drop(columns=["_record", *rename]))
    columns = {"building_id": "text", "use": "text", "floor_area_m2": "double precision",
               "heat_installation": "text"}  # fmt: skip
    columns.update({k: v for k, v in others.items() if k not in columns and k not in ANNUAL})
    columns.update(ANNUAL)
    layer = ctx.layer(
        "energy_buildings", "Buildings with energy use",
        "Building footprints with use, floor area (m2) and heat installation, and the annual "
        "electricity and heat (kWh) summed from energy_consumption_hourly over the 12 months "
        "up to its latest hour (consumption_hours: hours with data in that period).",
        kind="vector", keywords=("buildings", "heat", "electricity"),
    )  # fmt: skip
    spec = TableSpec(layer=layer, columns=columns, geometry_type="MultiPolygon",
                     key=("building_id",), required=("building_id",))  # fmt: skip
    yield Part(spec, (_building_chunk(chunk, rename) for chunk in chunks))


def _building_chunk(chunk, rename: dict[str, str]):
    chunk = chunk.rename(columns=rename)
    if "heat_installation" in chunk:
        chunk["heat_installation"] = chunk["heat_installation"].astype(object).map(heat_word)
    return chunk


def known_buildings(database: Database) -> set[str]:
    """The building ids ``energy_buildings`` holds (empty when it does not exist)."""
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.energy_buildings')")
        if cur.fetchone()[0] is None:
            return set()
        cur.execute(sql.SQL("SELECT building_id FROM {}").format(
            sql.Identifier("data", "energy_buildings")))  # fmt: skip
        return {row[0] for row in cur.fetchall()}


# -- consumption --------------------------------------------------------------------


def _consumption_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "energy_consumption_hourly", "Hourly energy consumption per building",
        "Metered electricity and heat (kWh) per building and hour; time is the start of the "
        "hour in UTC. Joins to energy_buildings by building_id.",
        keywords=("consumption", "heat", "electricity", "time series"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=CONSUMPTION_COLUMNS, key=("building_id", "time"),
                     required=("building_id", "time"))  # fmt: skip


def consumption_parts(ctx: FileContext, database: Database) -> Iterator[Part]:
    """Hourly consumption, streamed; rows of unknown buildings refused (or skipped)."""
    known = known_buildings(database)
    if not known:
        raise InvalidInput(f"{ctx.name}: no buildings are loaded; load the buildings first "
                           "(geoby ingest energy buildings.gpkg consumption.csv.gz)",
                           record=ctx.name, field="building_id")  # fmt: skip
    yield Part(_consumption_spec(ctx), _consumption_chunks(ctx, known))


def _raw_names(ctx: FileContext) -> dict[str, str]:
    """Canonical name -> the file's own column name."""
    line = head_lines(ctx.path, 1)[0]
    raw = [c.strip().strip('"') for c in line.split(delimiter(line))]
    snakes = header(ctx.path)
    lookup = dict(zip(snakes, raw, strict=False))
    found = {"building_id": pick(snakes, *BUILDING), "time": pick(snakes, *TIME),
             "electricity_kwh": pick(snakes, *ELECTRICITY), "heat_kwh": pick(snakes, *HEAT_KWH)}  # fmt: skip
    return {canon: lookup[name] for canon, name in found.items() if name is not None}


def _reader(ctx: FileContext, names: dict[str, str], has_offset: bool):
    types = {names["building_id"]: pa.dictionary(pa.int32(), pa.string()),
             names["time"]: pa.timestamp("s", tz="UTC") if has_offset else pa.timestamp("s")}  # fmt: skip
    types.update({names[c]: pa.float64() for c in ("electricity_kwh", "heat_kwh") if c in names})
    compression = "gzip" if ctx.path.name.lower().endswith(".gz") else None
    stream = pa.input_stream(str(ctx.path), compression=compression)
    line = head_lines(ctx.path, 1)[0]
    return pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter(line)),
        convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=list(names.values())),
    )  # fmt: skip


def _consumption_chunks(ctx: FileContext, known: set[str]) -> Iterator[pd.DataFrame]:
    names = _raw_names(ctx)
    has_offset = _has_offset(ctx, names["time"])
    tz = zone(ctx.option("timezone", "Europe/Copenhagen"))
    start, skipped = 0, _Skipped()
    try:
        for batch in _reader(ctx, names, has_offset):
            frame = _typed(batch, names, start)
            start += batch.num_rows
            if not has_offset:
                frame = _local_to_utc(ctx, frame, tz)
            frame = _check_buildings(ctx, frame, known, skipped)
            yield frame
    except pa.ArrowInvalid as exc:
        _locate_bad_value(ctx, names, tz)
        raise InvalidInput(f"{ctx.name} does not parse: {exc}", record=ctx.name) from exc
    if skipped.count:
        ctx.warn(f"{ctx.name}: {skipped.count:,} rows of buildings not in energy_buildings left "
                 f"out (first: records {', '.join(skipped.first)})")  # fmt: skip


def _has_offset(ctx: FileContext, time_field: str) -> bool:
    """Whether the first times of the file carry a UTC offset (``Z``, ``+01:00``)."""
    lines = head_lines(ctx.path, 6)
    sep = delimiter(lines[0])
    at = [c.strip().strip('"') for c in lines[0].split(sep)].index(time_field)
    values = [ln.split(sep)[at].strip().strip('"') for ln in lines[1:] if sep in ln]
    return bool(values) and all(_OFFSET.search(v) for v in values)


def _typed(batch: pa.RecordBatch, names: dict[str, str], start: int) -> pd.DataFrame:
    frame = pd.DataFrame({"_record": np.arange(start + 1, start + batch.num_rows + 1)})
    for canon in CONSUMPTION_COLUMNS:
        if canon in names:
            frame[canon] = batch.column(names[canon]).to_pandas()
        else:
            frame[canon] = np.nan
    return frame


def _local_to_utc(ctx: FileContext, frame: pd.DataFrame, tz) -> pd.DataFrame:
    utc, gap, _ = localize(frame["time"], tz, by=frame["building_id"])
    frame["time"] = utc
    if gap.any():
        records = frame["_record"][gap].astype(str).tolist()
        ctx.warn(f"{ctx.name}: records {', '.join(records[:5])} give a local time that does not "
                 f"exist in {tz} (start of summer time); dropped")  # fmt: skip
        frame = frame[~gap].reset_index(drop=True)
    return frame


@dataclass
class _Skipped:
    count: int = 0
    first: list[str] = field(default_factory=list)


def _check_buildings(ctx: FileContext, frame: pd.DataFrame, known: set[str], skipped: _Skipped):
    ids = frame["building_id"]
    categories = ids.cat.categories
    used = categories[np.unique(ids.cat.codes[ids.cat.codes >= 0])]
    unknown = [c for c in used if c not in known]
    if not unknown:
        return frame
    bad = ids.isin(unknown).to_numpy()
    at = int(np.argmax(bad))
    record = str(frame["_record"].iloc[at])
    if not ctx.options.skip_invalid:
        raise InvalidInput(
            f"{ctx.name}: record {record}: building_id {ids.iloc[at]!r} is not in "
            "energy_buildings; load its building first, or use --skip-invalid to leave such "
            "rows out", record=f"record {record}", field="building_id",
        )  # fmt: skip
    skipped.count += int(bad.sum())
    skipped.first += frame["_record"][bad].astype(str).tolist()[: 5 - len(skipped.first)]
    return frame[~bad].reset_index(drop=True)


def _locate_bad_value(ctx: FileContext, names: dict[str, str], tz) -> None:
    """Re-read the file as text to name the row and field that pyarrow refused."""
    for raw in read_table(ctx.path, chunk_rows=500_000):
        cols = list(raw.columns)
        text_column(raw, pick(cols, *BUILDING))
        times(raw, pick(cols, *TIME), source=ctx.name, tz=str(tz))
        for canon, aliases in (("electricity_kwh", ELECTRICITY), ("heat_kwh", HEAT_KWH)):
            found = pick(cols, *aliases)
            if found:
                numbers(raw, found, source=ctx.name, field=names[canon])
