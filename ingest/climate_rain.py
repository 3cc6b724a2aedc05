"""Rain gauges, rain series and rain events (CSV) for :mod:`ingest.climate`.

Series are streamed in chunks; gauges and events are small and read whole.
Every value is converted here, so a bad one is refused with the file, the
row and the field as the file names it.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd

from ingest.loader import Part
from ingest.spec import TableSpec
from ingest.tabular import (
    CHUNK_ROWS,
    FileContext,
    header,
    numbers,
    pick,
    read_table,
    text_column,
    times,
)
from layers.errors import CRSMismatch, InvalidInput

TIME = ("time", "timestamp", "time_utc", "timestamp_utc", "datetime", "date_time", "hour_utc",
        "obs_time", "date")  # fmt: skip
GAUGE = ("gauge_id", "gauge", "station_id", "station", "rain_gauge", "station_name")
RAIN = ("rain_mm", "depth_mm", "precipitation_mm", "precip_mm", "rainfall_mm", "rain",
        "precipitation", "rainfall")  # fmt: skip
START = ("start", "start_time", "event_start", "begin", "start_utc")
END = ("end", "end_time", "event_end", "stop", "end_utc")
EVENT_DEPTH = ("depth_mm", "rain_sum", "rain_sum_mm", "rain_mm", "total_mm", "sum_mm", "depth")
PEAK = ("max_intensity_mm_per_h", "peak_intensity_mm_per_h", "peak_intensity_mm_h",
        "max_intensity_mm_h", "max_intensity", "peak_intensity")  # fmt: skip
DURATION = ("duration_min", "duration_minutes", "duration")
EVENT_T = ("return_period_years", "return_period_years_est", "max_return_period", "return_period")
EVENT_T_DURATION = ("return_period_duration_min", "max_return_period_duration")
EASTING = ("easting", "x", "east", "e")
NORTHING = ("northing", "y", "north", "n")
LON = ("longitude", "lon", "lng")
LAT = ("latitude", "lat")

GAUGES_EXPECTS = "gauge_id, easting/northing (+ crs column or --crs) or longitude/latitude, optionally name, resolution_mm, interval_min"
SERIES_EXPECTS = "timestamp (UTC) and rain depth in mm (rain_mm or depth_mm), optionally gauge_id and coordinates"
EVENTS_EXPECTS = "start, end and depth (depth_mm or rain_sum), optionally gauge_id, event_id, duration, max_intensity_mm_per_h, return period"

GAUGE_COLUMNS = {"gauge_id": "text", "name": "text", "resolution_mm": "double precision",
                 "interval_min": "double precision"}  # fmt: skip
SERIES_COLUMNS = {"gauge_id": "text", "time": "timestamptz", "depth_mm": "double precision"}
EVENT_COLUMNS = {
    "gauge_id": "text", "event_id": "text", "start_time": "timestamptz", "end_time": "timestamptz",
    "duration_min": "double precision", "depth_mm": "double precision",
    "peak_intensity_mm_h": "double precision", "max_60min_mm": "double precision",
    "return_period_years": "double precision", "return_period_duration_min": "double precision",
}  # fmt: skip


def _has_location(columns: list[str]) -> bool:
    return bool((pick(columns, *EASTING) and pick(columns, *NORTHING))
                or (pick(columns, *LON) and pick(columns, *LAT)))  # fmt: skip


def is_gauges(columns: list[str], lines: list[str]) -> bool:
    return bool(pick(columns, *GAUGE) and _has_location(columns) and not pick(columns, *TIME))


def is_series(columns: list[str], lines: list[str]) -> bool:
    return bool(pick(columns, *TIME) and pick(columns, *RAIN) and not pick(columns, *END))


def is_events(columns: list[str], lines: list[str]) -> bool:
    return bool(pick(columns, *START) and pick(columns, *END) and pick(columns, *EVENT_DEPTH))


# -- gauges -------------------------------------------------------------------------


def _gauge_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "climate_rain_gauges", "Rain gauges",
        "Rain gauge stations: identifier, name, resolution of the gauge (mm) and the interval "
        "of its series (minutes).", kind="vector", keywords=("rain", "gauge"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=GAUGE_COLUMNS, geometry_type="Point",
                     key=("gauge_id",), required=("gauge_id",))  # fmt: skip


def _gauge_frame(ctx: FileContext, frame: pd.DataFrame) -> gpd.GeoDataFrame:
    cols = list(frame.columns)
    source = ctx.name
    lon, lat = pick(cols, *LON), pick(cols, *LAT)
    east, north = pick(cols, *EASTING), pick(cols, *NORTHING)
    if east and north:
        x, y = numbers(frame, east, source=source), numbers(frame, north, source=source)
        crs = _gauge_crs(ctx, frame)
    else:
        x, y, crs = (
            numbers(frame, lon, source=source),
            numbers(frame, lat, source=source),
            "EPSG:4326",
        )
    out = pd.DataFrame({"_record": frame["_record"].to_numpy()})
    out["gauge_id"] = text_column(frame, pick(cols, *GAUGE))
    out["name"] = text_column(frame, pick(cols, "name", "station_name", "gauge_name"))
    for column in ("resolution_mm", "interval_min"):
        out[column] = numbers(frame, column, source=source) if column in cols else np.nan
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(x, y), crs=crs)


def _gauge_crs(ctx: FileContext, frame: pd.DataFrame) -> str:
    declared = frame["crs"].dropna().unique().tolist() if "crs" in frame.columns else []
    if len(declared) > 1:
        raise CRSMismatch(f"{ctx.name}: the crs column names several CRSs ({', '.join(declared)});"
                          " one file, one CRS", record=ctx.name, field="crs")  # fmt: skip
    crs = declared[0] if declared else ctx.options.crs
    if crs is None:
        raise CRSMismatch(f"{ctx.name} gives easting/northing but no CRS; add a crs column or "
                          "use --crs", record=ctx.name, field="crs")  # fmt: skip
    return crs


def gauge_parts(ctx: FileContext) -> Iterator[Part]:
    """The gauges of a gauge list."""
    yield Part(_gauge_spec(ctx), [_gauge_frame(ctx, read_table(ctx.path))])


# -- series -------------------------------------------------------------------------


def _series_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "climate_rain_series", "Rain gauge series",
        "Rain depth (mm) per gauge and time step; time is the start of the interval, in UTC, "
        "as the gauge file gives it.", keywords=("rain", "gauge", "time series"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=SERIES_COLUMNS, key=("gauge_id", "time"),
                     required=("gauge_id", "time", "depth_mm"))  # fmt: skip


def _series_chunks(ctx: FileContext) -> Iterator[pd.DataFrame]:
    tz = ctx.option("timezone", "UTC")
    for frame in read_table(ctx.path, chunk_rows=CHUNK_ROWS):
        cols = list(frame.columns)
        time, gaps = times(frame, pick(cols, *TIME), source=ctx.name, tz=tz, warn=ctx.warn)
        out = pd.DataFrame({
            "_record": frame["_record"].to_numpy(),
            "gauge_id": text_column(frame, pick(cols, *GAUGE), ctx.station()),
            "time": time,
            "depth_mm": numbers(frame, pick(cols, *RAIN), source=ctx.name),
        })  # fmt: skip
        _refuse_negative(ctx, out, "depth_mm", frame)
        if gaps:
            ctx.warn(f"{ctx.name}: records {', '.join(gaps[:5])} name a local time that does "
                     f"not exist in {tz} (summer-time change); dropped")  # fmt: skip
            out = out[out["time"].notna()].reset_index(drop=True)
        yield out


def _refuse_negative(ctx: FileContext, out: pd.DataFrame, column: str, frame: pd.DataFrame,
                     field: str | None = None) -> None:  # fmt: skip
    negative = (out[column] < 0).to_numpy()
    if negative.any():
        at = int(np.argmax(negative))
        record = out["_record"].iloc[at]
        raise InvalidInput(f"{ctx.name}: field '{field or column}' is negative "
                           f"({out[column].iloc[at]}) in record {record}",
                           record=f"record {record}", field=field or column)  # fmt: skip


def series_parts(ctx: FileContext) -> Iterator[Part]:
    """A rain series, and its gauges when the file has coordinates."""
    yield Part(_series_spec(ctx), _series_chunks(ctx))
    columns = header(ctx.path)
    if _has_location(columns) and pick(columns, *GAUGE):
        frames = [f.drop_duplicates(subset=[pick(columns, *GAUGE)])
                  for f in read_table(ctx.path, chunk_rows=CHUNK_ROWS)]  # fmt: skip
        gauges = pd.concat(frames).drop_duplicates(subset=[pick(columns, *GAUGE)])
        yield Part(_gauge_spec(ctx), [_gauge_frame(ctx, gauges.reset_index(drop=True))])


# -- events -------------------------------------------------------------------------


def _events_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "climate_rain_events", "Rain events",
        "Rain events per gauge: start and end (UTC), duration (min), depth (mm), peak "
        "intensity (mm/h), largest 60-minute depth (mm), and the estimated return period "
        "(years) with the duration (min) at which it was reached.",
        keywords=("rain", "events", "cloudburst"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=EVENT_COLUMNS, key=("gauge_id", "start_time"),
                     required=("gauge_id", "start_time", "end_time", "depth_mm"))  # fmt: skip


def _durations(ctx: FileContext, frame: pd.DataFrame, column: str | None) -> pd.Series | None:
    """Minutes from a ``duration_min`` number or a ``0 days 10:20:00`` text."""
    if column is None:
        return None
    raw = frame[column]
    if column.endswith(("_min", "_minutes")):
        return numbers(frame, column, source=ctx.name)
    deltas = pd.to_timedelta(raw, errors="coerce")
    plain = pd.to_numeric(raw, errors="coerce")  # a bare number is minutes
    minutes = (deltas.dt.total_seconds() / 60.0).where(plain.isna(), plain)
    bad = raw.notna().to_numpy() & minutes.isna().to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        record = frame["_record"].iloc[at]
        raise InvalidInput(f"{ctx.name}: field '{column}' value {raw.iloc[at]!r} is not a "
                           f"duration (record {record})", record=f"record {record}",
                           field=column)  # fmt: skip
    return minutes.astype("float64").reset_index(drop=True)


def _event_frame(ctx: FileContext, frame: pd.DataFrame) -> pd.DataFrame:
    cols = list(frame.columns)
    tz, src = ctx.option("timezone", "UTC"), ctx.name
    start_col, end_col, depth_col = pick(cols, *START), pick(cols, *END), pick(cols, *EVENT_DEPTH)
    start, gaps = times(frame, start_col, source=src, tz=tz, warn=ctx.warn)
    end, gaps_end = times(frame, end_col, source=src, tz=tz, warn=ctx.warn)
    if gaps or gaps_end:
        first = (gaps or gaps_end)[0]
        raise InvalidInput(f"{src}: record {first} names a local time that does not exist in {tz}",
                           record=f"record {first}", field=start_col if gaps else end_col)  # fmt: skip
    out = pd.DataFrame({"_record": frame["_record"].to_numpy()})
    out["gauge_id"] = text_column(frame, pick(cols, *GAUGE), ctx.station())
    out["event_id"] = text_column(frame, pick(cols, "event_id", "event", "id"))
    out["start_time"], out["end_time"] = start, end
    duration = _durations(ctx, frame, pick(cols, *DURATION))
    computed = (end - start).dt.total_seconds() / 60.0
    out["duration_min"] = computed if duration is None else duration.fillna(computed)
    out["depth_mm"] = numbers(frame, depth_col, source=src)
    optional = {
        "peak_intensity_mm_h": PEAK,
        "max_60min_mm": ("max_60min_mm",),
        "return_period_years": EVENT_T,
        "return_period_duration_min": EVENT_T_DURATION,
    }
    for column, aliases in optional.items():
        found = pick(cols, *aliases)
        out[column] = numbers(frame, found, source=src) if found else np.nan
    backwards = (out["end_time"] < out["start_time"]).to_numpy()
    if backwards.any():
        at = int(np.argmax(backwards))
        record = out["_record"].iloc[at]
        raise InvalidInput(f"{src}: record {record} ends before it starts",
                           record=f"record {record}", field=end_col)  # fmt: skip
    _refuse_negative(ctx, out, "depth_mm", frame, depth_col)
    return out


def event_parts(ctx: FileContext) -> Iterator[Part]:
    """The events of an event list."""
    yield Part(_events_spec(ctx), [_event_frame(ctx, read_table(ctx.path))])
