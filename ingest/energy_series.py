"""Hourly energy series and weather (Energi Data Service layout, JSON and CSV).

A series file is a table of times, optionally an area, and value columns:
Energi Data Service API answers (``{"records": [{"HourUTC": ..., "HourDK":
..., "PriceArea": "DK1", "SpotPriceDKK": ...}]}``), their CSV downloads
(``;`` and decimal comma allowed), and derived tables such as energy-dk's
``output_file.csv`` and ``EL_price_interpolated.csv``. It becomes:

- ``energy_series`` (long): area, time, quantity, value, unit; one row per
  value column and time, key (area, time, quantity). Empty values are not
  stored. Text columns other than time and area (``ProductionType``) are
  folded into the quantity (``production_mwh:wind``).
- ``energy_weather`` (wide): station, time, temperature_c, humidity_pct,
  wind_speed_m_s, global_radiation_w_m2; key (station, time), for the
  weather columns of the same file (DMI's ``temp_mean_past1h`` etc.) or a
  weather file (the sample's ``temperature_hourly.csv``). Weather is kept
  wide because it is used as covariates: one row per hour joins to demand.

Time: ``*UTC`` columns are UTC (``HourUTC`` wins over ``HourDK``); ``*DK``
columns are Danish local time; other time columns (``DateTime``,
``timestamp``) are read in ``--option timezone`` (default
``Europe/Copenhagen``: both real energy-dk files are local time, as their
repeated October hour and filled March hour show), unless they carry an
offset. Area: a ``PriceArea``-like column, else a suffix of the value
column (``EL_price_DK1`` -> quantity ``el_price``, area ``DK1``), else
``--option area`` (default ``DK``, the whole country). Units come from the
column name (``...MWh`` -> MWh, ``SpotPriceDKK`` -> DKK/MWh, ``EL_price*`` ->
DKK/kWh as in energy-dk, checked against Nord Pool's 2022 peak of about
6.5 DKK/kWh) or ``--option unit.QUANTITY=UNIT``; unknown stays empty.
``DayOfWeek`` and ``Hour`` are dropped: they follow from the time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ingest.loader import Part
from ingest.spec import TableSpec
from ingest.tabular import FileContext, numbers, pick, read_table, snake, text_column, times
from layers.errors import InvalidInput

UTC_TIMES = ("hour_utc", "minutes5_utc", "minutes15_utc", "time_utc", "timestamp_utc", "utc")
DK_TIMES = ("hour_dk", "minutes5_dk", "minutes15_dk", "time_dk")
TIMES = ("time", "timestamp", "date_time", "datetime", "date")
AREA = ("price_area", "area", "bidding_zone", "municipality_no", "municipality_code",
        "municipality", "grid_area", "region")  # fmt: skip
STATION = ("station", "station_id", "weather_station")
DERIVED = {"day_of_week", "hour", "weekday", "hour_of_day"}
AREA_SUFFIX = re.compile(r"^(.+?)_(dk1|dk2|dk|se[1-4]|no[1-5]|de|de_lu|nl|system)$")
WEATHER = {
    "temperature_c": ("temperature_c", "temp_mean_past1h", "temp_dry", "temperature",
                      "temp_mean", "air_temperature"),
    "humidity_pct": ("humidity_pct", "humidity_past1h", "humidity", "relative_humidity"),
    "wind_speed_m_s": ("wind_speed_m_s", "wind_speed_past1h", "wind_speed", "wind_speed_ms"),
    "global_radiation_w_m2": ("global_radiation_w_m2", "radia_glob_past1h", "radia_glob",
                              "global_radiation"),
}  # fmt: skip
_WEATHER_NAMES = {alias for aliases in WEATHER.values() for alias in aliases}
SERIES_EXPECTS = ("a time (HourUTC, HourDK, DateTime, timestamp...) and numeric value columns, "
                  "optionally PriceArea; JSON {\"records\": [...]} or CSV")  # fmt: skip
WEATHER_EXPECTS = "a time and weather columns only (temperature_c, humidity_pct, wind_speed_m_s), optionally station_id"
SERIES_COLUMNS = {"area": "text", "time": "timestamptz", "quantity": "text",
                  "value": "double precision", "unit": "text"}  # fmt: skip
WEATHER_COLUMNS = {
    "station": "text",
    "time": "timestamptz",
    **{k: "double precision" for k in WEATHER},
}


def _time_columns(columns: list[str]) -> list[str]:
    return [c for c in (*UTC_TIMES, *DK_TIMES, *TIMES) if c in columns]


def is_series(columns: list[str], lines: list[str]) -> bool:
    values = [c for c in columns if c not in _skip(columns) and c not in _WEATHER_NAMES]
    return bool(_time_columns(columns)) and bool(values)


def is_weather(columns: list[str], lines: list[str]) -> bool:
    rest = [c for c in columns if c not in _skip(columns)]
    return bool(_time_columns(columns) and rest and all(c in _WEATHER_NAMES for c in rest))


def _skip(columns: list[str]) -> set[str]:
    return {*_time_columns(columns), *AREA, *STATION, *DERIVED}


def read_records(ctx: FileContext) -> pd.DataFrame:
    """The file as a frame with snake-case columns and ``_record`` (JSON or CSV)."""
    if not ctx.path.name.lower().endswith(".json"):
        return read_table(ctx.path)
    try:
        with open(ctx.path, encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{ctx.name} is not valid JSON: {exc}", record=ctx.name) from exc
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInput(f"{ctx.name}: expected {{\"records\": [{{...}}, ...]}} as Energi Data "
                           "Service answers", record=ctx.name)  # fmt: skip
    frame = pd.DataFrame.from_records(records)
    raw = list(frame.columns)
    frame.columns = [snake(c) for c in raw]
    frame["_record"] = np.arange(1, len(frame) + 1).astype(str)
    frame.attrs["fields"] = dict(zip(frame.columns, raw, strict=False))
    return frame


def _utc(ctx: FileContext, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """UTC times of the rows (rows at a non-existent local time dropped and reported)."""
    cols = list(frame.columns)
    column = pick(cols, *UTC_TIMES) or pick(cols, *DK_TIMES) or pick(cols, *TIMES)
    if column in UTC_TIMES:
        tz = "UTC"
    elif column in DK_TIMES:
        tz = "Europe/Copenhagen"
    else:
        tz = ctx.option("timezone", "Europe/Copenhagen")
    time, gaps = times(frame, column, source=ctx.name, tz=tz, warn=ctx.warn)
    if gaps:
        ctx.warn(f"{ctx.name}: records {', '.join(gaps[:5])} give a local time that does not "
                 f"exist in {tz} (start of summer time); dropped")  # fmt: skip
        keep = time.notna() | frame[column].isna().reset_index(drop=True)
        frame, time = (
            frame[keep.to_numpy()].reset_index(drop=True),
            time[keep].reset_index(drop=True),
        )
    return frame, time


def _is_numeric(values: pd.Series) -> bool:
    if values.dtype.kind in "ifb":
        return True
    present = values.dropna()
    if present.empty:
        return False
    text = present.astype(str).str.strip().str.replace(",", ".", regex=False)
    return bool(pd.to_numeric(text, errors="coerce").notna().mean() > 0.5)


def _unit(ctx: FileContext, quantity: str) -> str | None:
    forced = ctx.option(f"unit.{quantity}")
    if forced:
        return forced
    if quantity.endswith(("_mwh", "_gwh", "_kwh")):
        return {"mwh": "MWh", "gwh": "GWh", "kwh": "kWh"}[quantity.rsplit("_", 1)[1]]
    if "price" in quantity and quantity.endswith(("_dkk", "_eur")):
        return quantity.rsplit("_", 1)[1].upper() + "/MWh"  # Energi Data Service prices
    if quantity.startswith("el_price"):
        return "DKK/kWh"
    return None


def _long(ctx: FileContext, frame: pd.DataFrame, time: pd.Series) -> Iterator[pd.DataFrame]:
    cols = [c for c in frame.columns if c != "_record"]
    area_col = pick(cols, *AREA)
    default_area = ctx.option("area", "DK")
    area = text_column(frame, area_col, default_area)
    skip = _skip(cols) | _WEATHER_NAMES
    candidates = [c for c in cols if c not in skip and frame[c].notna().any()]  # empty: no data
    dims = [c for c in candidates if not _is_numeric(frame[c])]
    label = text_column(frame, dims[0]) if dims else None
    for extra in dims[1:]:
        label = label + "," + text_column(frame, extra)
    for column in (c for c in candidates if c not in dims):
        value = numbers(frame, column, source=ctx.name)
        quantity, column_area = column, area
        suffix = AREA_SUFFIX.match(column)
        if suffix and area_col is None:
            quantity, column_area = (
                suffix.group(1),
                pd.Series([suffix.group(2).upper()] * len(frame)),
            )
        names = pd.Series([quantity] * len(frame), dtype=object)
        if label is not None:
            names = names + ":" + label.fillna("")
        out = pd.DataFrame({"_record": frame["_record"].to_numpy(), "area": column_area,
                            "time": time, "quantity": names, "value": value,
                            "unit": _unit(ctx, quantity)})  # fmt: skip
        yield out[out["value"].notna()].reset_index(drop=True)


def _weather(ctx: FileContext, frame: pd.DataFrame, time: pd.Series) -> pd.DataFrame | None:
    cols = list(frame.columns)
    found = {name: pick(cols, *aliases) for name, aliases in WEATHER.items()}
    if not any(found.values()):
        return None
    station = pick(cols, *STATION) or pick(cols, *AREA)
    out = pd.DataFrame({"_record": frame["_record"].to_numpy()})
    out["station"] = text_column(frame, station, ctx.option("station") or ctx.option("area", "DK"))
    out["time"] = time
    for name, column in found.items():
        out[name] = numbers(frame, column, source=ctx.name) if column else np.nan
    return out


def _series_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "energy_series", "Energy time series",
        "Hourly (or finer) energy quantities per area in long form: consumption, production "
        "and prices from Energi Data Service style files. time is the start of the interval "
        "in UTC; area is a price area (DK1, DK2) or DK for the whole country; unit as the "
        "source names it (empty when unknown).", keywords=("electricity", "time series"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=SERIES_COLUMNS, key=("area", "time", "quantity"),
                     required=("area", "time", "quantity", "value"), indexes=("time",))  # fmt: skip


def _weather_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "energy_weather", "Weather for energy analysis",
        "Hourly weather per station or area (UTC): temperature (degC), relative humidity (%), "
        "wind speed (m/s), global radiation (W/m2). DMI 'past1h' values describe the hour "
        "ending at the time given by the source.", keywords=("weather", "temperature"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=WEATHER_COLUMNS, key=("station", "time"),
                     required=("station", "time"))  # fmt: skip


def series_parts(ctx: FileContext) -> Iterator[Part]:
    """``energy_series`` from the value columns, ``energy_weather`` from weather columns."""
    frame, time = _utc(ctx, read_records(ctx))
    dropped = sorted(DERIVED & set(frame.columns))
    if dropped:
        ctx.warnings.append(f"{ctx.name}: columns {', '.join(dropped)} not stored (they follow "
                            "from the time)")  # fmt: skip
    yield Part(_series_spec(ctx), _long(ctx, frame, time))
    weather = _weather(ctx, frame, time)
    if weather is not None:
        yield Part(_weather_spec(ctx), [weather])


def weather_parts(ctx: FileContext) -> Iterator[Part]:
    """``energy_weather`` from a weather-only file."""
    frame, time = _utc(ctx, read_records(ctx))
    yield Part(_weather_spec(ctx), [_weather(ctx, frame, time)])
