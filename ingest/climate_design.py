"""Design rain from the ingested IDF table and climate factors.

:func:`rain_depth` is what the flood analytics call for a cloudburst: the
rain depth (mm) of a return period and duration at a station, times the
climate factor of that return period. Callers write no SQL. Between
tabulated durations and return periods the depth is interpolated linearly
in log(duration) and log(return period) (bilinear on the four surrounding
table entries), the climate factor linearly in log(return period); values
outside the table are refused, never extrapolated.

Examples
--------
>>> with database.connection("read") as conn:              # doctest: +SKIP
...     rain_depth(conn, return_period=100, duration_min=60)
67.2
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from layers import catalog
from layers.errors import InvalidInput, NotFound

IDF_LAYER = "climate_idf"
FACTORS_LAYER = "climate_factors"


def rain_depth(
    conn: Connection,
    *,
    return_period: float,
    duration_min: float,
    station: str | None = None,
    climate_factor: float | None = None,
    scenario: str | None = None,
    horizon_years: int | None = None,
) -> float:
    """Design rain depth (mm) for a return period and duration, with the climate factor.

    Parameters
    ----------
    conn
        Any connection that can read the open layers (``read`` role suffices).
    return_period
        Years.
    duration_min
        Minutes.
    station
        IDF station; may be omitted when the table holds one station only.
    climate_factor
        Factor to apply; when omitted, the ingested factor for this return
        period (interpolated in log(return period) between tabulated ones).
        Pass ``1.0`` for today's climate.
    scenario, horizon_years
        Which ingested climate factors, where several scenarios or horizons
        are loaded.

    Returns
    -------
    float
        Depth in mm.

    Raises
    ------
    InvalidInput
        Non-positive arguments, an unknown or ambiguous station, scenario or
        horizon, or a duration or return period outside the table.
    NotFound
        No IDF table (or, without ``climate_factor``, no climate factors) ingested.
    """
    for name, value in (("return_period", return_period), ("duration_min", duration_min),
                        ("climate_factor", climate_factor)):  # fmt: skip
        if value is not None and not (np.isfinite(value) and value > 0):
            raise InvalidInput(f"{name} must be a positive number, got {value!r}", field=name)
    table = idf_table(conn, station=station)
    depth = interpolate_depth(table, return_period=return_period, duration_min=duration_min)
    if climate_factor is None:
        climate_factor = factor_for(conn, return_period=return_period, scenario=scenario,
                                    horizon_years=horizon_years)  # fmt: skip
    return float(depth * climate_factor)


def _read(conn: Connection, layer_id: str, columns: list[str], what: str) -> pd.DataFrame:
    try:
        layer = catalog.get(conn, layer_id)
    except NotFound as exc:
        raise NotFound(f"no {what} has been ingested (layer {layer_id}); load one with "
                       "`geoby ingest climate FILE`", field=layer_id) from exc  # fmt: skip
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), layer.qualified_table
    )
    with conn.cursor() as cur:
        cur.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=columns)


def idf_table(conn: Connection, *, station: str | None = None) -> pd.DataFrame:
    """The IDF rows of one station: ``duration_min, return_period_years, depth_mm``.

    Raises
    ------
    InvalidInput
        ``station`` is not in the table, or omitted while several are.
    """
    rows = _read(conn, IDF_LAYER, ["station", "duration_min", "return_period_years", "depth_mm"],
                 "IDF table")  # fmt: skip
    stations = sorted(rows["station"].unique())
    if station is None:
        if len(stations) != 1:
            raise InvalidInput(f"the IDF table holds stations {', '.join(stations) or '(none)'};"
                               " name one (station=...)", field="station")  # fmt: skip
        station = stations[0]
    if station not in stations:
        raise InvalidInput(f"no IDF station {station!r}; the table holds "
                           f"{', '.join(stations) or '(none)'}", field="station")  # fmt: skip
    return rows[rows["station"] == station].drop(columns="station").reset_index(drop=True)


def _bracket(values: np.ndarray, x: float, name: str, unit: str) -> tuple[float, float, float]:
    """Neighbours of ``x`` among ``values`` and the weight of the upper one in log space."""
    lo, hi = float(values.min()), float(values.max())
    if not lo <= x <= hi:
        raise InvalidInput(f"{name} {x:g} {unit} is outside the tabulated {lo:g}-{hi:g} {unit};"
                           " extrapolation is refused", field=name)  # fmt: skip
    below, above = values[values <= x].max(), values[values >= x].min()
    if below == above:
        return float(below), float(above), 0.0
    weight = (np.log(x) - np.log(below)) / (np.log(above) - np.log(below))
    return float(below), float(above), float(weight)


def interpolate_depth(table: pd.DataFrame, *, return_period: float, duration_min: float) -> float:
    """Depth (mm), bilinear in log(duration) and log(return period).

    Parameters
    ----------
    table
        Columns ``duration_min``, ``return_period_years``, ``depth_mm``.

    Raises
    ------
    InvalidInput
        The point lies outside the table, or a surrounding entry is missing.

    Examples
    --------
    >>> t = pd.DataFrame({"duration_min": [10, 10, 60, 60], "return_period_years": [2, 10, 2, 10],
    ...                   "depth_mm": [7.0, 13.0, 14.0, 28.0]})
    >>> interpolate_depth(t, return_period=10, duration_min=60)
    28.0
    """
    grid = table.pivot_table(index="duration_min", columns="return_period_years",
                             values="depth_mm", aggfunc="first")  # fmt: skip
    d0, d1, wd = _bracket(grid.index.to_numpy(float), duration_min, "duration_min", "min")
    t0, t1, wt = _bracket(grid.columns.to_numpy(float), return_period, "return_period", "years")
    corners = grid.loc[[d0, d1], [t0, t1]].to_numpy(float)
    if np.isnan(corners).any():
        raise InvalidInput(f"the IDF table lacks an entry around {duration_min:g} min and "
                           f"{return_period:g} years", field="duration_min")  # fmt: skip
    low = corners[0, 0] + wt * (corners[0, 1] - corners[0, 0])
    high = corners[1, 0] + wt * (corners[1, 1] - corners[1, 0])
    return float(low + wd * (high - low))


def factor_for(
    conn: Connection,
    *,
    return_period: float,
    scenario: str | None = None,
    horizon_years: int | None = None,
) -> float:
    """The ingested climate factor for a return period (log-interpolated, never extrapolated).

    Raises
    ------
    InvalidInput
        No factors match, several scenarios/horizons match, or the return
        period is outside the tabulated ones.
    """
    rows = _read(conn, FACTORS_LAYER,
                 ["scenario", "horizon_years", "return_period_years", "climate_factor"],
                 "climate factors table")  # fmt: skip
    if scenario is not None:
        rows = rows[rows["scenario"] == scenario]
    if horizon_years is not None:
        rows = rows[rows["horizon_years"] == horizon_years]
    sets = sorted(
        {(s, int(h)) for s, h in zip(rows["scenario"], rows["horizon_years"], strict=True)}
    )
    if not sets:
        raise InvalidInput(f"no climate factors for scenario {scenario!r}, horizon {horizon_years!r};"
                           " pass climate_factor=... (1.0 for today's climate)",
                           field="scenario")  # fmt: skip
    if len(sets) > 1:
        shown = ", ".join(f"{s} / {h} years" for s, h in sets)
        raise InvalidInput(f"climate factors exist for {shown}; choose scenario= and "
                           "horizon_years=", field="scenario")  # fmt: skip
    periods = rows["return_period_years"].to_numpy(float)
    factors = rows["climate_factor"].to_numpy(float)
    t0, t1, w = _bracket(periods, return_period, "return_period", "years")
    f0, f1 = factors[periods == t0][0], factors[periods == t1][0]
    return float(f0 + w * (f1 - f0))
