"""IDF tables and climate factors (CSV) for :mod:`ingest.climate`.

Every IDF layout becomes the long table ``climate_idf`` with depth and both
intensities filled. Units: depth in mm, intensity in mm/h and l/s/ha
(1 mm/h = 1/0.36 l/s/ha; 1 um/s = 3.6 mm/h = 10 l/s/ha).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ingest.loader import Part
from ingest.spec import TableSpec
from ingest.tabular import (
    FileContext,
    delimiter,
    head_lines,
    numbers,
    pick,
    read_table,
    text_column,
)
from layers.errors import InvalidInput

DURATION = ("duration_min", "duration_minutes", "duration", "d_min", "varighed_min")
RETURN_PERIOD = ("return_period_years", "return_period", "return_period_a", "t_years",
                 "return_period_yr", "gentagelsesperiode_aar", "gentagelsesperiode")  # fmt: skip
DEPTH = ("depth_mm", "rain_depth_mm", "depth", "height_mm")
MM_H = ("intensity_mm_per_h", "intensity_mm_h", "mm_per_h", "mm_h")
L_S_HA = ("intensity_l_s_ha", "intensity_l_per_s_per_ha", "l_s_ha")
UM_S = ("intensity_um_per_s", "intensity_um_s", "um_s", "my_m_s")
FACTOR = ("climate_factor", "factor", "klimafaktor", "cf")
SCENARIO = ("scenario", "ssp", "rcp", "emission_scenario")
HORIZON = ("horizon_years", "horizon", "planning_horizon_years")
STATION = ("station", "station_id", "gauge_id", "source")

IDF_EXPECTS = (
    "duration_min, return_period_years and depth_mm and/or an intensity (intensity_mm_per_h, "
    "intensity_l_s_ha, intensity_um_per_s); or a wide table whose first header cell names the "
    "return period, other header cells return periods in years, first column durations in min"
)
FACTORS_EXPECTS = "return_period_years and climate_factor, optionally scenario and horizon_years"
IDF_VALUES = ("depth_mm", "intensity_mm_h", "intensity_l_s_ha", "intensity_um_s")
CONSISTENCY = 0.05
_NUMBER = re.compile(r"^\s*\d+(?:[.,]\d+)?\s*$")

IDF_COLUMNS = {
    "station": "text", "duration_min": "double precision", "return_period_years": "double precision",
    "depth_mm": "double precision", "intensity_mm_h": "double precision",
    "intensity_l_s_ha": "double precision",
}  # fmt: skip
FACTOR_COLUMNS = {"scenario": "text", "horizon_years": "integer",
                  "return_period_years": "double precision", "climate_factor": "double precision"}  # fmt: skip


def _wide_header(lines: list[str]) -> list[str] | None:
    if not lines:
        return None
    cells = next(csv.reader([lines[0]], delimiter=delimiter(lines[0])))
    first = cells[0].strip().lower()
    numeric = sum(bool(_NUMBER.match(c)) for c in cells[1:])
    named = any(w in first for w in ("return", "period", "duration", "varighed", "gentag", "dauer",
                                     "wiederkehr")) or first in ("t", "d", "")  # fmt: skip
    return cells if named and numeric >= 2 and numeric == len(cells) - 1 else None


def is_idf(columns: list[str], lines: list[str]) -> bool:
    long = pick(columns, *DURATION) and pick(columns, *RETURN_PERIOD) and pick(
        columns, *DEPTH, *MM_H, *L_S_HA, *UM_S)  # fmt: skip
    return bool(long) or _wide_header(lines) is not None


def is_factors(columns: list[str], lines: list[str]) -> bool:
    return bool(pick(columns, *RETURN_PERIOD) and pick(columns, *FACTOR)
                and not pick(columns, *DURATION))  # fmt: skip


def _idf_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "climate_idf", "Design rain (IDF)",
        "Intensity-duration-frequency table: rain depth (mm) and mean intensity (mm/h and "
        "l/s/ha) for a duration (min) and return period (years), per station. Without "
        "climate factor; see climate_factors.", keywords=("rain", "IDF", "design rain"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=IDF_COLUMNS,
                     key=("station", "duration_min", "return_period_years"),
                     required=("station", "duration_min", "return_period_years", "depth_mm"))  # fmt: skip


def idf_parts(ctx: FileContext) -> Iterator[Part]:
    """An IDF table, long or wide, as the long ``climate_idf`` table."""
    lines = head_lines(ctx.path, 1)
    wide = _wide_header(lines)
    frame = _from_wide(ctx, wide) if wide is not None else _from_long(ctx)
    yield Part(_idf_spec(ctx), [_complete(ctx, frame)])


def _from_long(ctx: FileContext) -> pd.DataFrame:
    raw = read_table(ctx.path)
    cols, src = list(raw.columns), ctx.name
    out = pd.DataFrame({"_record": raw["_record"].to_numpy()})
    out["station"] = text_column(raw, pick(cols, *STATION), ctx.station())
    out["duration_min"] = numbers(raw, pick(cols, *DURATION), source=src)
    out["return_period_years"] = numbers(raw, pick(cols, *RETURN_PERIOD), source=src)
    for column, aliases in (("depth_mm", DEPTH), ("intensity_mm_h", MM_H),
                            ("intensity_l_s_ha", L_S_HA), ("intensity_um_s", UM_S)):  # fmt: skip
        found = pick(cols, *aliases)
        out[column] = numbers(raw, found, source=src) if found else np.nan
        out.attrs[column] = found
    return out


def _from_wide(ctx: FileContext, cells: list[str]) -> pd.DataFrame:
    """Rows of durations x columns of return periods (or the transpose), one value each."""
    body = read_table(ctx.path)
    body.columns = list(range(body.shape[1] - 1)) + ["_record"]  # _record comes last
    first = body[0].astype(object).map(lambda v: isinstance(v, str) and bool(_NUMBER.match(v)))
    body = body[first.to_numpy(dtype=bool)].reset_index(drop=True)  # label rows skipped
    transposed = any(w in cells[0].lower() for w in ("duration", "varighed", "dauer"))
    heads = [c.strip() for c in cells[1:]]
    rows = numbers(body, 0, source=ctx.name, field=cells[0].strip() or "first column")
    value = _wide_value(ctx, body, heads, rows, transposed)
    frames = []
    for i, head in enumerate(heads, start=1):
        values = numbers(body, i, source=ctx.name, field=head)
        across = float(head.replace(",", "."))
        frame = pd.DataFrame({"_record": body["_record"].to_numpy(), value: values})
        frame["duration_min"] = across if transposed else rows
        frame["return_period_years"] = rows if transposed else across
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["_record"] = out["_record"] + " (" + np.repeat(heads, len(body)) + ")"
    out["station"] = ctx.station()
    for column in IDF_VALUES:
        if column not in out:
            out[column] = np.nan
    return out[out[value].notna()].reset_index(drop=True)


def _wide_value(ctx, body, heads, rows, transposed) -> str:
    forced = ctx.option("idf_value")
    if forced is not None:
        if forced not in IDF_VALUES:
            raise InvalidInput(f"--option idf_value={forced}: one of {', '.join(IDF_VALUES)}",
                               field="idf_value")  # fmt: skip
        return forced
    grid = np.column_stack([numbers(body, i, source=ctx.name, field=h).to_numpy()
                            for i, h in enumerate(heads, start=1)])  # fmt: skip
    durations = rows.to_numpy()
    if transposed:
        grid, durations = grid.T, np.array([float(h.replace(",", ".")) for h in heads])
    steps = np.diff(grid[np.argsort(durations)], axis=0)
    if np.all(steps[np.isfinite(steps)] >= 0):
        return "depth_mm"  # depths grow with duration, intensities fall
    raise InvalidInput(
        f"{ctx.name}: the values fall with duration, so they are intensities; name their unit "
        f"with --option idf_value=intensity_mm_h, intensity_l_s_ha or intensity_um_s",
        record=ctx.name, field="idf_value",
    )  # fmt: skip


_TO_MM_H = {"intensity_mm_h": 1.0, "intensity_l_s_ha": 0.36, "intensity_um_s": 3.6}


def _complete(ctx: FileContext, out: pd.DataFrame) -> pd.DataFrame:
    """Fill depth and intensities from whichever the file gives; refuse disagreements."""
    hours = out["duration_min"] / 60.0
    given = {name: out[name] * factor for name, factor in _TO_MM_H.items()}
    given["depth_mm"] = out["depth_mm"] / hours
    mm_h = given["intensity_mm_h"]
    for name in ("intensity_l_s_ha", "intensity_um_s", "depth_mm"):
        mm_h = mm_h.fillna(given[name])
    for name, value in given.items():
        _agree(ctx, out, name, value, mm_h)
    _positive(ctx, out, ("duration_min", "return_period_years"))
    result = out[["_record", "station", "duration_min", "return_period_years"]].copy()
    result["depth_mm"] = out["depth_mm"].fillna(mm_h * hours)
    result["intensity_mm_h"] = mm_h
    result["intensity_l_s_ha"] = mm_h / 0.36
    _positive(ctx, result, ("depth_mm",))
    return result


def _agree(ctx: FileContext, out: pd.DataFrame, field: str, value: pd.Series, mm_h: pd.Series):
    """``value`` (in mm/h) within 5 % (+ rounding) of ``mm_h``, the first intensity given."""
    both = value.notna() & mm_h.notna() & (mm_h > 0)
    off = both & ((value - mm_h).abs() > CONSISTENCY * mm_h + 0.06)
    if off.any():
        at = int(np.argmax(off.to_numpy()))
        record = out["_record"].iloc[at]
        raise InvalidInput(
            f"{ctx.name}: record {record}: {field} disagrees with the other depth/intensity "
            f"columns by more than {CONSISTENCY:.0%} ({value.iloc[at]:.3g} vs {mm_h.iloc[at]:.3g}"
            " mm/h); check the units", record=f"record {record}", field=field,
        )  # fmt: skip


def _positive(ctx: FileContext, out: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for column in columns:
        bad = ~(out[column] > 0).to_numpy()
        if bad.any():
            at = int(np.argmax(bad))
            record = out["_record"].iloc[at]
            raise InvalidInput(f"{ctx.name}: record {record}: {column} must be positive, "
                               f"got {out[column].iloc[at]}", record=f"record {record}",
                               field=column)  # fmt: skip


# -- climate factors ----------------------------------------------------------------


def _factor_spec(ctx: FileContext) -> TableSpec:
    layer = ctx.layer(
        "climate_factors", "Climate factors on design rain",
        "Factor by which design rain depths of a return period (years) grow under a climate "
        "scenario at a planning horizon (years).", keywords=("rain", "climate factor"),
    )  # fmt: skip
    return TableSpec(layer=layer, columns=FACTOR_COLUMNS,
                     key=("scenario", "horizon_years", "return_period_years"),
                     required=tuple(FACTOR_COLUMNS))  # fmt: skip


def factor_parts(ctx: FileContext) -> Iterator[Part]:
    """Climate factors per return period (and scenario, horizon)."""
    raw = read_table(ctx.path)
    cols, src = list(raw.columns), ctx.name
    horizon_col = pick(cols, *HORIZON)
    horizon = ctx.option("horizon_years")
    if horizon_col is None and horizon is None:
        raise InvalidInput(f"{src}: climate factors need a planning horizon; add a horizon_years "
                           "column or give --option horizon_years=N", record=src,
                           field="horizon_years")  # fmt: skip
    out = pd.DataFrame({"_record": raw["_record"].to_numpy()})
    out["scenario"] = text_column(raw, pick(cols, *SCENARIO), ctx.option("scenario", "default"))
    if horizon_col:
        out["horizon_years"] = numbers(raw, horizon_col, source=src)
    else:
        out["horizon_years"] = numbers(pd.DataFrame({"_record": ["option"], "h": [horizon]}),
                                       "h", source=src, field="horizon_years").iloc[0]  # fmt: skip
    out["return_period_years"] = numbers(raw, pick(cols, *RETURN_PERIOD), source=src)
    out["climate_factor"] = numbers(raw, pick(cols, *FACTOR), source=src)
    _positive(ctx, out, ("return_period_years", "climate_factor"))
    yield Part(_factor_spec(ctx), [out])
