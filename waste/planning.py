"""Collection planning: which bins to empty today, and a replay against a fixed schedule.

:func:`plan_day` picks, for one visit, the bins that overflow now or that the
fill forecast (:mod:`waste.forecast`) puts over the threshold before the next
possible visit. :func:`compare_with_schedule` replays a stretch of real history
workday by workday under two policies, geoby's plan and a fixed weekly round,
and counts collections and overflow risk.

Readings and collections come as one history frame (:func:`history`), from
files or from PostGIS (:func:`load_history`).

The replay keeps each bin's *accumulated* fill from its history: the sum of
fill increases between consecutive observations, restarted at each real
emptying, so waste keeps arriving as it really did whatever a policy does; a
policy's bin holds what arrived since that policy last emptied it. A sensor
that saturates at 100 % stops counting what arrives while it is full, so the
overflow of bins the real service let overflow is a lower bound.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from layers.database import Database
from layers.errors import InvalidInput
from waste.forecast import FillModel, fit, prepare

log = logging.getLogger(__name__)

OVERFLOW = 0.95
ROUND_WEEKS = (0.2, 0.5, 1.0, 2.0, 4.0)
_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")


def history(readings: pd.DataFrame, collections: pd.DataFrame) -> pd.DataFrame:
    """Readings and collections (their layer columns) as one history for
    :func:`waste.forecast.fit`.

    ``readings`` has ``bin_id, time, fill_level``; ``collections`` has ``bin_id,
    time, fill_before`` and optionally ``fill_after``. Collections without a
    ``fill_before`` tell only that the bin was emptied: their fill is taken as
    unknown and they are dropped, with a log line.
    """
    c = collections.rename(columns={"fill_before": "fill_level"})
    unknown = c["fill_level"].isna()
    if unknown.any():
        log.info("%d collections without fill_before left out of the history", int(unknown.sum()))
    cols = ["bin_id", "time", "fill_level"] + (["fill_after"] if "fill_after" in c else [])
    parts = [readings[["bin_id", "time", "fill_level"]].assign(event="reading"),
             c.loc[~unknown, cols].assign(event="collection")]  # fmt: skip
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def load_history(
    database: Database, *, since: pd.Timestamp | None = None, bin_ids: list[str] | None = None
) -> pd.DataFrame:
    """Readings and collections from ``data.waste_readings`` and ``data.waste_collections``.

    Parameters
    ----------
    database
        geoby's database (the ``read`` role).
    since
        Only events at or after this time.
    bin_ids
        Only these bins.

    Returns
    -------
    DataFrame
        A history for :func:`waste.forecast.fit`.
    """
    frames = []
    with database.connection("read") as conn, conn.cursor() as cur:
        for query in (_READINGS, _COLLECTIONS):
            cur.execute(query, {"since": since, "bins": bin_ids})
            names = [d.name for d in cur.description]
            frames.append(pd.DataFrame(cur.fetchall(), columns=names))
    for f in frames:
        f["time"] = pd.to_datetime(f["time"], utc=True)
    return history(*frames)


_READINGS = """SELECT bin_id, time, fill_level FROM data.waste_readings
 WHERE (%(since)s::timestamptz IS NULL OR time >= %(since)s)
 AND (%(bins)s::text[] IS NULL OR bin_id = ANY(%(bins)s))"""
_COLLECTIONS = """SELECT bin_id, time, fill_before, fill_after FROM data.waste_collections
 WHERE (%(since)s::timestamptz IS NULL OR time >= %(since)s)
 AND (%(bins)s::text[] IS NULL OR bin_id = ANY(%(bins)s))"""


def plan_day(
    model: FillModel,
    bins: pd.DataFrame,
    day: pd.Timestamp,
    next_visit: pd.Timestamp | pd.Series,
    threshold: float = 0.8,
    *,
    overflow: float = OVERFLOW,
    upper: bool = False,
) -> pd.DataFrame:
    """The bins to empty at the visit ``day``.

    Parameters
    ----------
    model
        A fitted fill model holding the bins' latest state.
    bins
        ``bin_id, fraction`` (further columns are carried along).
    day
        Time of the visit (tz-aware).
    next_visit
        Next possible visit after ``day``: one time, or a Series by ``bin_id``.
    threshold
        Empty a bin forecast to reach this fill before ``next_visit``.
    overflow
        Empty a bin at or above this fill now (reason ``'overflowing'``).
    upper
        Use the band's upper edge instead of the central forecast (fewer overflows,
        more collections).

    Returns
    -------
    DataFrame
        The chosen bins: the columns of ``bins`` and ``reason`` (``'overflowing'``
        or ``'forecast'``), ``fill_now``, ``fill_next``; ordered by fraction and bin.

    Raises
    ------
    InvalidInput
        For a threshold outside (0, 1] or a ``next_visit`` not after ``day``.
    """
    if not 0.0 < threshold <= 1.0:
        raise InvalidInput("threshold must lie in (0, 1]", field="threshold")
    known = bins[bins["bin_id"].isin(model.state.index)]
    if len(known) < len(bins):
        log.info("%d bins have no sensor history and are not planned", len(bins) - len(known))
    ids = known["bin_id"]
    nxt = next_visit.reindex(ids) if isinstance(next_visit, pd.Series) else next_visit
    if (pd.Series(nxt) <= day).any():
        raise InvalidInput("next_visit must lie after day", field="next_visit")
    column = "fill_hi" if upper else "fill"
    now = model.predict(ids, day)
    ahead = model.fill_between(ids, pd.DatetimeIndex([day] * len(ids)), now["fill"], nxt)
    out = known.assign(fill_now=now["fill"].to_numpy(), fill_next=ahead[column].to_numpy())
    out["reason"] = np.where(out["fill_now"] >= overflow, "overflowing",
                             np.where(out["fill_next"] >= threshold, "forecast", ""))  # fmt: skip
    chosen = out[out["reason"] != ""]
    return chosen.sort_values(["fraction", "bin_id"]).reset_index(drop=True)


def compare_with_schedule(
    history: pd.DataFrame,
    bins: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    every_weeks: float | Mapping[str, float] | None = None,
    threshold: float = 0.8,
    visit_hour: int = 6,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Replay ``[start, end)`` under geoby's daily plan and under a fixed weekly round.

    The model is fitted on the history before ``start`` only. Visits are at
    ``visit_hour`` local time on workdays (Monday-Friday). The fixed round
    empties bin *i* on workday ``i % 5`` every ``every_weeks`` weeks: one number,
    or one per ``bin_id``, ``bin_type`` or fraction (in that order); 0.5 is twice a
    week; ``None`` sizes each bin's round to its fitted rate (:func:`sized_round`).

    Parameters
    ----------
    history
        Readings and collections as :func:`waste.forecast.fit` takes them (:func:`history`).
    bins
        ``bin_id, fraction``.
    start, end
        The stretch replayed (tz-aware).
    every_weeks
        Period of the fixed round in weeks.
    threshold
        geoby's planning threshold.
    visit_hour
        Local hour of the daily visit.
    timezone
        Local zone of workdays, visit hour and weekday pattern.

    Returns
    -------
    DataFrame
        One row per policy (``fixed``, ``geoby``) and fraction (plus ``all``):
        ``collections``, ``collections_per_week``, ``overflow_bin_days`` (bin-workdays
        found at or over 100 %), ``overflow_risk`` (their share of bin-workdays),
        ``mean_fill_at_collection`` and ``collections_avoided`` (fixed - geoby).
    """
    events = prepare(history)
    model = fit(events[events["time"] < start], timezone=timezone)
    bins = bins[bins["bin_id"].isin(model.state.index)].reset_index(drop=True)
    visits = _visits(start, end, visit_hour, timezone)
    if len(visits) < 2:
        raise InvalidInput("the replay needs at least two workdays between start and end",
                           field="end")  # fmt: skip
    arrived = _accumulated(events, bins["bin_id"], visits)
    first = _accumulated(events, bins["bin_id"], pd.DatetimeIndex([start]))[0]
    initial = model.predict(bins["bin_id"], start)["fill"].to_numpy()
    base0 = first - initial
    if every_weeks is None:
        every_weeks = sized_round(model, bins["bin_id"], threshold)
    rounds = _round(bins, visits, every_weeks, timezone)
    results = {}
    for policy in ("fixed", "geoby"):
        base, stats = base0.copy(), _Stats(len(bins))
        for i, t in enumerate(visits):
            fill = np.maximum(arrived[i] - base, 0.0)
            stats.full += fill >= 1.0
            if policy == "fixed":
                empty = rounds[i]
            else:
                nxt = visits[i + 1] if i + 1 < len(visits) else t + pd.Timedelta(days=1)
                state = pd.DataFrame({"bin_id": bins["bin_id"], "time": t, "fill": fill})
                plan = plan_day(model.with_state(state), bins, t, nxt, threshold)
                empty = bins["bin_id"].isin(plan["bin_id"]).to_numpy()
            stats.count += empty
            stats.fill_sum += np.where(empty, np.minimum(fill, 1.0), 0.0)
            base = np.where(empty, arrived[i], base)
        results[policy] = stats
    weeks = (visits[-1] - visits[0]).days / 7.0 + 1.0 / 5.0
    return _table(results, bins["fraction"].to_numpy(), len(visits), weeks)


class _Stats:
    def __init__(self, n: int) -> None:
        self.count = np.zeros(n)
        self.full = np.zeros(n)
        self.fill_sum = np.zeros(n)


def _visits(start: pd.Timestamp, end: pd.Timestamp, hour: int, timezone: str) -> pd.DatetimeIndex:
    days = pd.date_range(start.tz_convert(timezone).normalize(), end.tz_convert(timezone), freq="D")
    times = (days + pd.Timedelta(hours=hour))[days.day_of_week < 5]
    times = times.tz_convert("UTC")
    return times[(times >= start) & (times < end)]


def _accumulated(events: pd.DataFrame, ids: pd.Series, times: pd.DatetimeIndex) -> np.ndarray:
    """Fill arrived in each bin up to each time (len(times) x len(ids)), from the history."""
    e = events[events["bin_id"].isin(ids)]
    same = e["bin_id"].eq(e["bin_id"].shift())
    before = e["fill_level"].shift().where(~e["event"].shift().eq("collection"),
                                           e["fill_after"].shift())  # fmt: skip
    step = (e["fill_level"] - before).where(same, e["fill_level"]).fillna(0.0)
    total = step.groupby(e["bin_id"]).cumsum()
    x = _days(times)
    out = np.zeros((len(times), len(ids)))
    for bin_id, rows in total.groupby(e["bin_id"], sort=False):
        col = np.flatnonzero(ids.to_numpy() == bin_id)
        out[:, col[0]] = np.interp(x, _days(e.loc[rows.index, "time"]), rows.to_numpy())
    return out


def sized_round(model: FillModel, bin_ids: pd.Series, threshold: float = 0.8) -> dict[str, float]:
    """A fixed round sized per bin: the longest of the usual periods (every workday,
    twice a week, every 1, 2 or 4 weeks) after which the bin's fitted mean rate
    keeps it under ``threshold``; the fairest fixed schedule the history allows."""
    rate = model.rates.reindex(bin_ids).fillna(model.pooled_rate).to_numpy()
    fill = np.outer(rate, np.array(ROUND_WEEKS) * 7.0) ** model.beta
    ok = fill < threshold
    pick = np.where(ok.any(axis=1), ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
    return dict(zip(bin_ids, np.array(ROUND_WEEKS)[pick], strict=True))


def _days(times) -> np.ndarray:  # noqa: ANN001
    return np.asarray((pd.DatetimeIndex(times) - _EPOCH) / pd.Timedelta(days=1), dtype=float)


def _round(
    bins: pd.DataFrame, visits: pd.DatetimeIndex, every: float | Mapping[str, float], timezone: str
) -> np.ndarray:
    """The fixed round: visits x bins, True where the bin is emptied.

    A period under one week empties a bin on ``round(1 / period)`` evenly spread
    workdays (0.5: Monday and Thursday, Tuesday and Friday, ...).
    """
    if isinstance(every, Mapping):
        period = bins["bin_id"].map(every)
        if "bin_type" in bins:
            period = period.fillna(bins["bin_type"].map(every))
        period = period.fillna(bins["fraction"].map(every)).fillna(1.0).astype(float)
    else:
        period = pd.Series(float(every), index=bins.index)
    local = visits.tz_convert(timezone)
    days = (local.normalize().tz_localize(None) - local[0].normalize().tz_localize(None)).days
    week = (np.asarray(days) + local[0].day_of_week)[:, None] // 7
    weekday = local.day_of_week.to_numpy()[:, None]
    index = np.arange(len(bins))
    weeks = np.maximum(np.rint(period.to_numpy()), 1).astype(int)
    per_week = np.where(period.to_numpy() < 1, np.rint(1 / period.to_numpy()), 1).astype(int)
    out = np.zeros((len(visits), len(bins)), bool)
    for j in range(int(per_week.max())):
        slot = (index - (-j * 5 // np.maximum(per_week, 1))) % 5  # j x 5 / per_week, up
        out |= (weekday == slot) & (j < per_week)
    return out & ((week - index // 5) % weeks == 0)


def _table(results: dict, fractions: np.ndarray, n_visits: int, weeks: float) -> pd.DataFrame:
    rows = []
    for policy, s in results.items():
        for fraction in ["all", *sorted(set(fractions))]:
            m = np.ones(len(fractions), bool) if fraction == "all" else fractions == fraction
            n = float(s.count[m].sum())
            rows.append({
                "policy": policy, "fraction": fraction, "collections": int(n),
                "collections_per_week": n / weeks, "overflow_bin_days": int(s.full[m].sum()),
                "overflow_risk": float(s.full[m].sum() / (m.sum() * n_visits)),
                "mean_fill_at_collection": float(s.fill_sum[m].sum() / n) if n else np.nan,
            })  # fmt: skip
    table = pd.DataFrame(rows)
    fixed = table[table["policy"] == "fixed"].set_index("fraction")["collections"]
    table["collections_avoided"] = table["fraction"].map(fixed) - table["collections"]
    return table
