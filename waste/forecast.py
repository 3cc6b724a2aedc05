"""Bin fill forecasts: a per-bin fill curve with weekday seasonality and a band.

The model: on a transformed scale ``g(f) = f ** (1 / beta)`` a bin's fill grows
linearly at its own rate ``r`` times a weekday factor ``s[weekday]`` (factors
pooled over all bins, mean 1), so after an emptying at ``t0``::

    fill(t) = (g(f0) + r * E(t0, t)) ** beta,   E(t0, t) = integral of s over [t0, t]

``beta = 1`` is the plain constant rate. On Edinburgh's real sensor records
the fill just before a collection is already ~0.7 after a quarter of a day and
~0.9 after three days, so a linear rate badly over-predicts long intervals;
``beta`` is chosen from a grid by the fit itself (Edinburgh: 0.3; the sample
town, whose bins do fill linearly: about 1).

Fitting works on *intervals*: from the start of a fill cycle (the last
emptying, at ``fill_after`` or 0, or the first reading of a bin) to each later
observation in that cycle (a reading's fill, or a collection's fill just before
emptying). A bin's rate is the median of its intervals' rates, shrunk to the
pooled median for bins with few intervals; weekday factors come from
non-negative least squares given the rates. The band is the empirical
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of interval rate / bin
rate, applied to the rate. Readings that drop by more than ``RESET_DROP`` start
a new cycle (an emptying nobody logged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from layers.errors import InvalidInput

log = logging.getLogger(__name__)

BETAS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
RESET_DROP = 0.3
PRIOR_INTERVALS = 3.0
_MONDAY = pd.Timestamp("2000-01-03")
_EVENTS = ("reading", "collection")


@dataclass(frozen=True)
class FillModel:
    """A fitted fill model: pooled weekday factors, per-bin rates, the band, the state.

    Attributes
    ----------
    beta
        Exponent of the fill curve (1: constant rate).
    weekday
        Seven rate factors, Monday first, mean 1.
    rates
        Rate per bin on the ``g`` scale per effective day (index ``bin_id``).
    pooled_rate
        Rate for bins the model has not seen.
    band
        Multipliers of the rate at the band's low and high edge.
    level
        Nominal coverage of the band (0.8: an 80 % band).
    state
        Per bin (index ``bin_id``): ``time`` and ``fill`` of the last known state.
    timezone
        Zone whose local weekday the factors follow.
    """

    beta: float
    weekday: np.ndarray
    rates: pd.Series
    pooled_rate: float
    band: tuple[float, float]
    level: float
    state: pd.DataFrame
    timezone: str = "UTC"

    def fill_between(self, bin_ids, start, start_fill, end) -> pd.DataFrame:  # noqa: ANN001
        """Fill at ``end`` of bins known to hold ``start_fill`` at ``start`` (vectorised).

        Parameters
        ----------
        bin_ids, start, start_fill, end
            Equal-length array-likes (times tz-aware); ``end`` may be one time.

        Returns
        -------
        DataFrame
            ``bin_id, fill, fill_lo, fill_hi`` (0-1).
        """
        ids = pd.Index(bin_ids)
        rate = self._rate(ids)
        days = self._exposure(start, end)
        g0 = np.clip(np.asarray(start_fill, dtype=float), 0.0, 1.0) ** (1.0 / self.beta)
        out = {"bin_id": ids.to_numpy()}
        for name, k in (("fill", 1.0), ("fill_lo", self.band[0]), ("fill_hi", self.band[1])):
            out[name] = np.clip(np.maximum(g0 + rate * k * days, 0.0), 0.0, 1.0) ** self.beta
        return pd.DataFrame(out)

    def predict(self, bin_ids, at: pd.Timestamp) -> pd.DataFrame:  # noqa: ANN001
        """Predicted fill of ``bin_ids`` at ``at``, with the band.

        Parameters
        ----------
        bin_ids
            Bins to predict; each must have a state (a reading or collection).
        at
            Time of the prediction (tz-aware), at or after the bins' last state.

        Returns
        -------
        DataFrame
            ``bin_id, fill, fill_lo, fill_hi``.

        Raises
        ------
        InvalidInput
            For a bin without history.
        """
        state = self._state(bin_ids)
        at = _utc(pd.Timestamp(at), "at")
        start = pd.DatetimeIndex(pd.to_datetime(state["time"], utc=True))
        start = start.where(start <= at, at)
        return self.fill_between(state.index, start, state["fill"], at)

    def time_to(self, threshold: float, now: pd.Timestamp) -> pd.DataFrame:
        """When each known bin reaches ``threshold`` (``now`` if it is already there).

        Parameters
        ----------
        threshold
            Fill level (0-1].
        now
            Time from which to look ahead (tz-aware).

        Returns
        -------
        DataFrame
            ``bin_id, eta, eta_lo, eta_hi`` (``eta_lo`` from the fast edge of the
            band); ``NaT`` for a bin that never fills.
        """
        if not 0.0 < threshold <= 1.0:
            raise InvalidInput("threshold must lie in (0, 1]", field="threshold")
        now = _utc(pd.Timestamp(now), "now")
        current = self.predict(self.state.index, now)
        rate = self._rate(self.state.index)
        need = threshold ** (1.0 / self.beta) - current["fill"].to_numpy() ** (1.0 / self.beta)
        need = np.maximum(need, 0.0)
        start = float(self._local_days(now)[0])
        out = {"bin_id": self.state.index.to_numpy()}
        for name, k in (("eta", 1.0), ("eta_lo", self.band[1]), ("eta_hi", self.band[0])):
            with np.errstate(divide="ignore", invalid="ignore"):
                days = np.where(rate * k > 0, need / (rate * k), np.inf)
            out[name] = self._after(start, days, now)
        return pd.DataFrame(out)

    def with_state(self, state: pd.DataFrame) -> FillModel:
        """The same model with bins' states replaced (``bin_id, time, fill``)."""
        new = state.set_index("bin_id")[["time", "fill"]]
        merged = pd.concat([self.state.drop(new.index, errors="ignore"), new])
        return replace(self, state=merged)

    def _rate(self, ids: pd.Index) -> np.ndarray:
        return self.rates.reindex(ids).fillna(self.pooled_rate).to_numpy(dtype=float)

    def _state(self, bin_ids) -> pd.DataFrame:  # noqa: ANN001
        ids = pd.Index(bin_ids)
        missing = ids.difference(self.state.index)
        if len(missing):
            raise InvalidInput(
                f"bins without readings or collections: {', '.join(map(str, missing[:5]))}",
                field="bin_id",
            )
        return self.state.loc[ids]

    def _local_days(self, times) -> np.ndarray:  # noqa: ANN001
        return _local_days(times, self.timezone)

    def _exposure(self, start, end) -> np.ndarray:  # noqa: ANN001
        a, b = self._local_days(start), self._local_days(end)
        return _cumulative(b, self.weekday) - _cumulative(a, self.weekday)

    def _after(self, start: float, days: np.ndarray, now: pd.Timestamp) -> pd.Series:
        """Times at which the exposure since ``start`` (local days) reaches ``days``."""
        finite = np.isfinite(days)
        target = _cumulative(np.array([start]), self.weekday)[0] + np.where(finite, days, 0.0)
        local = _inverse_cumulative(target, self.weekday) - start
        eta = now + pd.to_timedelta(local, unit="D")
        return pd.Series(eta).where(finite, pd.NaT).to_numpy()


def fit(
    history: pd.DataFrame,
    *,
    timezone: str = "UTC",
    level: float = 0.8,
    betas: tuple[float, ...] = BETAS,
) -> FillModel:
    """Fit a :class:`FillModel` to bins' readings and collections.

    Parameters
    ----------
    history
        ``bin_id, time (tz-aware), fill_level (0-1), event`` (``'reading'`` or
        ``'collection'``; a collection's ``fill_level`` is the fill just before
        emptying) and optionally ``fill_after`` (default 0).
    timezone
        Zone of the weekday pattern (e.g. ``"Europe/Copenhagen"``).
    level
        Nominal coverage of the uncertainty band.
    betas
        Candidate curve exponents; the one with the lowest training MAE is kept.

    Returns
    -------
    FillModel

    Raises
    ------
    InvalidInput
        For missing columns, unknown events, times without a zone, or no interval to fit.

    Examples
    --------
    >>> t = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")
    >>> h = pd.DataFrame({"bin_id": "b", "time": t, "fill_level": [i / 10 for i in range(8)],
    ...                   "event": "reading"})
    >>> round(float(fit(h, betas=(1.0,)).predict(["b"], t[-1] + pd.Timedelta("2D"))["fill"][0]), 2)
    0.9
    """
    events = prepare(history)
    iv = intervals(events)
    if iv.empty:
        raise InvalidInput("history has no bin with two observations to fit a rate", field="time")
    end = _local_days(iv["end"], timezone)
    per_day = _day_exposure(_local_days(iv["start"], timezone), end)
    best = None
    for beta in betas:
        model = _fit_beta(iv, per_day, end, beta, timezone, level)
        g = iv["start_fill"].to_numpy() ** (1 / beta) + model._rate(iv["bin_id"]) * (
            per_day @ model.weekday
        )
        mae = float(np.abs(np.clip(g, 0.0, 1.0) ** beta - iv["fill"].to_numpy()).mean())
        log.debug("beta %.2f: training MAE %.4f", beta, mae)
        if best is None or mae < best[0]:
            best = (mae, model)
    model = best[1]
    log.info("fill model: beta %.2f, %d bins, %d intervals, training MAE %.3f",
             model.beta, len(model.rates), len(iv), best[0])  # fmt: skip
    return replace(model, state=_last_state(events))


def intervals(events: pd.DataFrame) -> pd.DataFrame:
    """Fill-cycle intervals: ``bin_id, start, start_fill, end, fill``.

    One interval runs from the start of a cycle to each later observation in
    it (checked, sorted events as :func:`fit` takes them).
    """
    e = events
    new_bin = e["bin_id"].ne(e["bin_id"].shift())
    prev_collection = e["event"].shift().eq("collection") & ~new_bin
    drop = (e["fill_level"].shift() - e["fill_level"] > RESET_DROP) & ~new_bin
    drop &= e["event"].eq("reading") & ~prev_collection
    starts = new_bin | prev_collection | drop
    start_time = e["time"].shift().where(prev_collection, e["time"]).where(starts)
    start_fill = e["fill_after"].shift().where(prev_collection, e["fill_level"]).where(starts)
    cycle = starts.cumsum()
    start_time = start_time.groupby(cycle).transform("first")
    start_fill = start_fill.groupby(cycle).transform("first")
    keep = (e["time"] > start_time).to_numpy()
    return pd.DataFrame({
        "bin_id": e["bin_id"].to_numpy()[keep], "start": start_time.to_numpy()[keep],
        "start_fill": start_fill.to_numpy()[keep], "end": e["time"].to_numpy()[keep],
        "fill": e["fill_level"].to_numpy()[keep],
    })  # fmt: skip


def _fit_beta(
    iv: pd.DataFrame, per_day: np.ndarray, end: np.ndarray, beta: float, timezone: str, level: float
) -> FillModel:
    y = iv["fill"].to_numpy() ** (1.0 / beta) - iv["start_fill"].to_numpy() ** (1.0 / beta)
    bins = iv["bin_id"].to_numpy()
    full = iv["fill"].to_numpy() >= 1.0  # censored: the bin may have been full for a while
    s = np.ones(7)
    for _ in range(3):
        ratio = y / np.maximum(per_day @ s, 1e-9)
        rates, pooled = _rates(ratio, bins)
        r = rates.reindex(bins).to_numpy()
        design = per_day[~full] * r[~full, None]
        weight = 1.0 / np.maximum(design.sum(axis=1), 0.05)
        s, _ = nnls(design * weight[:, None], y[~full] * weight)
        s = s / s.mean() if s.sum() > 0 else np.ones(7)
    edges = _band(y / np.maximum(per_day @ s, 1e-9), bins, end, level)
    empty = pd.DataFrame({"time": pd.Series(dtype="datetime64[ns, UTC]"), "fill": []})
    return FillModel(beta, s, rates.rename_axis("bin_id"), pooled, edges, level, empty, timezone)


def _rates(ratio: np.ndarray, bins: np.ndarray) -> tuple[pd.Series, float]:
    """Per-bin median rates shrunk to the pooled median (``PRIOR_INTERVALS`` pseudo-intervals)."""
    pooled = float(np.median(ratio))
    stats = pd.Series(ratio).groupby(bins).agg(["median", "size"])
    shrunk = (stats["median"] * stats["size"] + pooled * PRIOR_INTERVALS) / (
        stats["size"] + PRIOR_INTERVALS
    )
    return shrunk, pooled


def _band(
    ratio: np.ndarray, bins: np.ndarray, end: np.ndarray, level: float
) -> tuple[float, float]:
    """Rate multipliers of the band, measured out of sample: rates from the first two thirds
    of the intervals (by end time), quantiles of later intervals' rate over them."""
    late = end > np.quantile(end, 2.0 / 3.0)
    if late.all() or not late.any():
        late = np.ones_like(late)
        early = late
    else:
        early = ~late
    rates, pooled = _rates(ratio[early], bins[early])
    known = rates.reindex(bins[late]).fillna(pooled).to_numpy()
    scaled = ratio[late] / np.where(known > 0, known, np.nan)
    lo, hi = np.nanquantile(scaled, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def prepare(history: pd.DataFrame) -> pd.DataFrame:
    """A checked history: times in UTC, fills clipped to 0-1, sorted by bin and time."""
    missing = {"bin_id", "time", "fill_level", "event"} - set(history.columns)
    if missing:
        raise InvalidInput(f"history lacks columns {', '.join(sorted(missing))}", field="history")
    e = history.copy()
    bad = ~e["event"].isin(_EVENTS)
    if bad.any():
        raise InvalidInput(f"event {e['event'][bad].iloc[0]!r} is not reading or collection",
                           field="event", record=f"row {bad.idxmax()}")  # fmt: skip
    e["time"] = _utc_series(e["time"])
    e["fill_level"] = pd.to_numeric(e["fill_level"]).clip(0.0, 1.0)
    after = e["fill_after"] if "fill_after" in e else pd.Series(0.0, index=e.index)
    e["fill_after"] = pd.to_numeric(after).fillna(0.0).clip(0.0, 1.0)
    e = e.dropna(subset=["bin_id", "time", "fill_level"])
    e["_order"] = e["event"].eq("collection").astype(int)  # a reading at the same time comes first
    e = e.sort_values(["bin_id", "time", "_order"], kind="stable").drop(columns="_order")
    return e.reset_index(drop=True)


def _last_state(events: pd.DataFrame) -> pd.DataFrame:
    last = events.groupby("bin_id").tail(1).set_index("bin_id")
    fill = last["fill_level"].where(last["event"].eq("reading"), last["fill_after"])
    return pd.DataFrame({"time": last["time"], "fill": fill})


def _utc(t: pd.Timestamp, field: str) -> pd.Timestamp:
    if t.tzinfo is None:
        raise InvalidInput(f"{field} must carry a time zone", field=field)
    return t.tz_convert("UTC")


def _utc_series(values: pd.Series) -> pd.Series:
    times = pd.to_datetime(values)
    if times.dt.tz is None:
        raise InvalidInput("history times must carry a time zone", field="time")
    return times.dt.tz_convert("UTC")


def _local_days(times, timezone: str) -> np.ndarray:  # noqa: ANN001
    """Local wall-clock days since a Monday, as floats."""
    idx = pd.DatetimeIndex(np.atleast_1d(pd.DatetimeIndex(pd.Series(times))))
    if idx.tz is None:
        raise InvalidInput("times must carry a time zone", field="time")
    local = idx.tz_convert(timezone).tz_localize(None)
    return np.asarray((local - _MONDAY) / pd.Timedelta(days=1), dtype=float)


def _cumulative(days: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Integral of the weekday factors from the epoch Monday to ``days``."""
    weeks = np.floor(days / 7.0)
    rest = days - 7.0 * weeks
    return weeks * s.sum() + (np.clip(rest[:, None] - np.arange(7), 0.0, 1.0) * s).sum(axis=1)


def _day_exposure(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Days of each weekday inside each interval ``[a, b]`` (n x 7)."""
    eye = np.eye(7)
    return np.stack([_cumulative(b, eye[k]) - _cumulative(a, eye[k]) for k in range(7)], axis=1)


def _inverse_cumulative(target: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Local days at which :func:`_cumulative` reaches ``target``."""
    week = s.sum()
    weeks = np.floor(target / week)
    rest = target - weeks * week
    edges = np.concatenate([[0.0], np.cumsum(s)])
    k = np.clip(np.searchsorted(edges, rest, side="right") - 1, 0, 6)
    within = np.where(s[k] > 0, (rest - edges[k]) / np.where(s[k] > 0, s[k], 1.0), 0.0)
    return weeks * 7.0 + k + within
