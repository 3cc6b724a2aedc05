"""Sea-level series and sea-level scenarios for :mod:`ingest.climate`.

Series: a CSV with a time and a level column (``level_m``, ``sea_level_mm``,
``water_level_cm_dvr90``...; the unit and datum are read from the name), or
the UHSLC/NOAA hourly ASCII layout of UTide's test file ``HNL2010.asc``:
whitespace-separated days since 1700-01-01 (UTC) and millimetres above the
station datum. Scenarios: year, scenario and a mean level, with optional
storm-surge return levels ``surge_<T>y_m`` that become columns of the same
name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ingest.loader import Part
from ingest.spec import TableSpec
from ingest.tabular import (
    CHUNK_ROWS,
    FileContext,
    head_lines,
    numbers,
    pick,
    read_table,
    read_whitespace,
    text_column,
    times,
)  # fmt: skip
from layers.errors import InvalidInput

TIME = ("time", "timestamp", "time_utc", "timestamp_utc", "datetime", "date_time", "date")
STATION = ("station", "station_id", "station_name", "gauge_id", "tide_gauge")
SCENARIO = ("scenario", "ssp", "rcp", "emission_scenario")
DATUM = ("datum", "vertical_datum", "height_datum")
_LEVEL = re.compile(r"^(?:mean_)?(?:sea_|water_|tide_)?level(?:_(m|cm|mm))?(?:_([a-z0-9]+))?$")
_MEAN = re.compile(
    r"^(?:mean_sea_level|msl|sea_level|mean_level|level)(?:_(m|cm|mm))?(?:_([a-z0-9]+))?$"
)
_SURGE = re.compile(r"^(?:storm_)?surge_(\d+)_?y(?:ears?)?(?:_(m|cm|mm))?(?:_([a-z0-9]+))?$")
_UNITS = {None: 1.0, "m": 1.0, "cm": 0.01, "mm": 0.001}
DAYS_1700_TO_1970 = int((np.datetime64("1970-01-01") - np.datetime64("1700-01-01")).astype(int))
UHSLC_MISSING = -32767.0
STATION_DATUM = "station datum"

SERIES_EXPECTS = ("time and level (level_m, sea_level_mm, ...; datum from the name, a datum "
                  "column or --option datum), optionally station; or whitespace-separated days "
                  "since 1700-01-01 and mm above station datum (UHSLC/NOAA hourly ASCII)")  # fmt: skip
SCENARIOS_EXPECTS = ("year, scenario and mean sea level (mean_sea_level_m_dvr90), optionally "
                     "storm-surge levels surge_<T>y_m_dvr90")  # fmt: skip
SERIES_COLUMNS = {"station": "text", "time": "timestamptz", "level_m": "double precision",
                  "datum": "text"}  # fmt: skip


def _level_column(columns: list[str], pattern: re.Pattern) -> str | None:
    return next((c for c in columns if pattern.match(c)), None)


def _is_days_1700(lines: list[str]) -> bool:
    cells = lines[0].split() if lines else []
    try:
        values = [float(c) for c in cells]
    except ValueError:
        return False
    return len(values) >= 2 and 36_500 <= values[0] <= 200_000  # 1800 to 2247


def is_series(columns: list[str], lines: list[str]) -> bool:
    csv_like = pick(columns, *TIME) and _level_column(columns, _LEVEL)
    return bool(csv_like) or _is_days_1700(lines)


def is_scenarios(columns: list[str], lines: list[str]) -> bool:
    return bool("year" in columns and pick(columns, *SCENARIO) and _level_column(columns, _MEAN))


def _datum(ctx: FileContext, suffix: str | None, default: str) -> str:
    forced = ctx.option("datum")
    if forced:
        return forced
    return suffix.upper() if suffix else default


# -- series -------------------------------------------------------------------------


def _series_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "climate_sea_level", "Sea level observations",
        "Observed sea level (m) per tide gauge and time (UTC), above the vertical datum named "
        "in each row: DVR90, or 'station datum' where the source gives levels above the "
        "gauge's own zero (not comparable with DVR90 without the gauge's datum offset).",
        keywords=("sea level", "tide gauge"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=SERIES_COLUMNS, key=("station", "time"),
                     required=("station", "time", "level_m", "datum"))  # fmt: skip


def series_parts(ctx: FileContext) -> Iterator[Part]:
    """A sea-level series (CSV or UHSLC ASCII)."""
    chunks = _days_1700(ctx) if _is_days_1700(head_lines(ctx.path, 1)) else _csv_series(ctx)
    yield Part(_series_spec(ctx), chunks)


def _days_1700(ctx: FileContext) -> Iterator[pd.DataFrame]:
    raw = read_whitespace(ctx.path)
    days = numbers(raw, "c1", source=ctx.name, field="column 1 (days since 1700-01-01)")
    level = numbers(raw, "c2", source=ctx.name, field="column 2 (mm above station datum)")
    seconds = np.rint((days.to_numpy() - DAYS_1700_TO_1970) * 86_400.0).astype("int64")
    out = pd.DataFrame({"_record": raw["_record"].to_numpy()})
    out["station"] = ctx.station()
    out["time"] = pd.to_datetime(seconds, unit="s", utc=True)
    out["level_m"] = level / 1000.0
    out["datum"] = ctx.option("datum", STATION_DATUM)
    missing = (level == UHSLC_MISSING).to_numpy()
    if missing.any():
        ctx.warn(f"{ctx.name}: {int(missing.sum())} records hold the missing-value flag "
                 f"{UHSLC_MISSING:.0f}; dropped")  # fmt: skip
        out = out[~missing].reset_index(drop=True)
    yield out


def _csv_series(ctx: FileContext) -> Iterator[pd.DataFrame]:
    tz = ctx.option("timezone", "UTC")
    warned = False
    for raw in read_table(ctx.path, chunk_rows=CHUNK_ROWS):
        cols = list(raw.columns)
        level_col = _level_column(cols, _LEVEL)
        unit, suffix = _LEVEL.match(level_col).groups()
        time, gaps = times(raw, pick(cols, *TIME), source=ctx.name, tz=tz, warn=ctx.warn)
        out = pd.DataFrame({"_record": raw["_record"].to_numpy()})
        out["station"] = text_column(raw, pick(cols, *STATION), ctx.station())
        out["time"] = time
        out["level_m"] = numbers(raw, level_col, source=ctx.name) * _UNITS[unit]
        datum = _datum(ctx, suffix, "unknown")
        out["datum"] = text_column(raw, pick(cols, *DATUM), datum)
        if (out["datum"] == "unknown").any() and not warned:
            warned = True
            ctx.warn(f"{ctx.name}: the vertical datum of the levels is not stated (no datum "
                     "column, no datum in the column name); stored as 'unknown': give "
                     "--option datum=DVR90 if that is what it is")  # fmt: skip
        if gaps:
            ctx.warn(f"{ctx.name}: records {', '.join(gaps[:5])} name a local time that does "
                     f"not exist in {tz}; dropped")  # fmt: skip
            out = out[out["time"].notna()].reset_index(drop=True)
        yield out


# -- scenarios ----------------------------------------------------------------------


def _scenario_spec(ctx: FileContext, surge_columns: list[str]) -> TableSpec:
    surges = ", ".join(c.removeprefix("surge_").removesuffix("_m") for c in surge_columns)
    layer = ctx.layer(
        "climate_sea_level_scenarios", "Sea level scenarios",
        "Projected mean sea level (m) per scenario and year, above the datum in column datum "
        "(DVR90 unless stated)" + (f", with storm-surge return levels ({surges}) in columns "
        "surge_<T>y_m" if surges else "") + ".", keywords=("sea level", "scenario"),
        vertical_datum="DVR90",
    )  # fmt: skip
    columns = {"scenario": "text", "year": "integer", "mean_sea_level_m": "double precision"}
    columns.update({c: "double precision" for c in surge_columns})
    columns["datum"] = "text"
    return TableSpec(layer=layer, columns=columns, key=("scenario", "year"),
                     required=("scenario", "year", "mean_sea_level_m", "datum"))  # fmt: skip


def scenario_parts(ctx: FileContext) -> Iterator[Part]:
    """Sea-level scenarios, with a column per storm-surge return period."""
    raw = read_table(ctx.path)
    cols, src = list(raw.columns), ctx.name
    mean_col = _level_column(cols, _MEAN)
    unit, suffix = _MEAN.match(mean_col).groups()
    out = pd.DataFrame({"_record": raw["_record"].to_numpy()})
    out["scenario"] = text_column(raw, pick(cols, *SCENARIO))
    out["year"] = numbers(raw, "year", source=src)
    out["mean_sea_level_m"] = numbers(raw, mean_col, source=src) * _UNITS[unit]
    surge_columns = []
    for col in cols:
        match = _SURGE.match(col)
        if match:
            period, s_unit, s_suffix = match.groups()
            if s_suffix and suffix and s_suffix != suffix:
                raise InvalidInput(f"{src}: {col} and {mean_col} name different datums",
                                   record=src, field=col)  # fmt: skip
            name = f"surge_{int(period)}y_m"
            out[name] = numbers(raw, col, source=src) * _UNITS[s_unit]
            surge_columns.append(name)
    out["datum"] = text_column(raw, pick(cols, *DATUM), _datum(ctx, suffix, "DVR90"))
    yield Part(_scenario_spec(ctx, surge_columns), [out])
