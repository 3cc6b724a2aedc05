"""Waste-service KPIs over plain frames: kg per inhabitant, recycling rate, effort, fill.

Inputs are the layers' columns: collections ``time, fraction, weight_kg,
fill_before`` (``fill_before`` 0-1), routes ``date, km``. The recycling rate
is the weight of the separately collected recyclable fractions over all
municipal waste collected, compared with the EU's targets for preparing for
re-use and recycling of municipal waste (Directive 2008/98/EC as amended by
2018/851, Art. 11(2)(c)-(e)).

Examples
--------
>>> c = pd.DataFrame({"fraction": ["residual", "paper"], "weight_kg": [60.0, 40.0]})
>>> recycling_rate(c)
0.4
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layers.errors import InvalidInput

EU_TARGETS: dict[int, float] = {2025: 0.55, 2030: 0.60, 2035: 0.65}
RECYCLED = frozenset({"paper", "plastic", "glass", "metal", "organic", "textile"})


def _need(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = set(columns) - set(frame.columns)
    if missing:
        raise InvalidInput(f"{name} lacks columns {', '.join(sorted(missing))}", field=name)


def kg_per_inhabitant(
    collections: pd.DataFrame, population: int, *, days: float | None = None
) -> pd.DataFrame:
    """Collected kg per inhabitant by fraction (and ``total``), also per year.

    Parameters
    ----------
    collections
        ``fraction, weight_kg`` and, unless ``days`` is given, ``time``.
    population
        Inhabitants served (> 0).
    days
        Length of the period; by default the span of ``time`` plus one day.

    Returns
    -------
    DataFrame
        Index fraction: ``kg``, ``kg_per_inhabitant``, ``kg_per_inhabitant_year``.
    """
    _need(collections, ("fraction", "weight_kg"), "collections")
    if population <= 0:
        raise InvalidInput("population must be positive", field="population")
    if days is None:
        _need(collections, ("time",), "collections")
        span = pd.to_datetime(collections["time"]).max() - pd.to_datetime(collections["time"]).min()
        days = span / pd.Timedelta(days=1) + 1.0
    kg = collections.groupby("fraction")["weight_kg"].sum()
    kg["total"] = kg.sum()
    out = pd.DataFrame({"kg": kg, "kg_per_inhabitant": kg / population})
    out["kg_per_inhabitant_year"] = out["kg_per_inhabitant"] * 365.0 / days
    return out


def recycling_rate(collections: pd.DataFrame, *, recycled: frozenset[str] = RECYCLED) -> float:
    """Share of collected weight in recyclable fractions (0-1)."""
    _need(collections, ("fraction", "weight_kg"), "collections")
    total = collections["weight_kg"].sum()
    if total <= 0:
        raise InvalidInput("collections weigh nothing; no recycling rate", field="weight_kg")
    return float(collections.loc[collections["fraction"].isin(recycled), "weight_kg"].sum() / total)


def recycling_by_fraction(
    collections: pd.DataFrame, *, recycled: frozenset[str] = RECYCLED
) -> pd.DataFrame:
    """Each fraction's weight and share of all collected weight, flagged recycled or not."""
    _need(collections, ("fraction", "weight_kg"), "collections")
    kg = collections.groupby("fraction")["weight_kg"].sum()
    return pd.DataFrame({"kg": kg, "share": kg / kg.sum(), "recycled": kg.index.isin(recycled)})


def against_targets(rate: float, targets: dict[int, float] = EU_TARGETS) -> pd.DataFrame:
    """A recycling rate against the EU targets by year: ``target, rate, gap, met``.

    ``gap`` is target - rate (percentage points as a fraction; <= 0 when met).
    """
    years = sorted(targets)
    target = np.array([targets[y] for y in years])
    return pd.DataFrame(
        {"target": target, "rate": rate, "gap": target - rate, "met": rate >= target},
        index=pd.Index(years, name="year"),
    )


def collections_per_week(collections: pd.DataFrame) -> pd.Series:
    """Mean collections per ISO week by fraction (weeks without any count as zero)."""
    _need(collections, ("time", "fraction"), "collections")
    weeks = _weeks(collections["time"])
    counts = collections.groupby([weeks, collections["fraction"]]).size().unstack(fill_value=0)
    return counts.reindex(_all_weeks(weeks), fill_value=0).mean()


def km_per_week(routes: pd.DataFrame) -> float:
    """Mean km driven per ISO week (``date, km``; weeks without routes count as zero)."""
    _need(routes, ("date", "km"), "routes")
    weeks = _weeks(routes["date"])
    per_week = routes.groupby(weeks)["km"].sum()
    return float(per_week.reindex(_all_weeks(weeks), fill_value=0.0).mean())


def fill_at_collection(collections: pd.DataFrame, *, low: float = 0.5) -> pd.DataFrame:
    """Fill just before emptying by fraction: ``mean, median, low_share, full_share``.

    ``low_share`` is the share of trips to bins under ``low`` (trips the service
    could have skipped), ``full_share`` the share at or above 100 %.
    """
    _need(collections, ("fraction", "fill_before"), "collections")
    fill = collections.dropna(subset=["fill_before"])
    grouped = fill.groupby("fraction")["fill_before"]
    return pd.DataFrame({
        "mean": grouped.mean(), "median": grouped.median(),
        "low_share": grouped.apply(lambda f: float((f < low).mean())),
        "full_share": grouped.apply(lambda f: float((f >= 1.0).mean())),
    })  # fmt: skip


def _weeks(times: pd.Series) -> pd.Series:
    t = pd.to_datetime(times)
    return (t.dt.tz_localize(None) if t.dt.tz is not None else t).dt.to_period("W-SUN")


def _all_weeks(weeks: pd.Series) -> pd.PeriodIndex:
    return pd.period_range(weeks.min(), weeks.max(), freq="W-SUN")
