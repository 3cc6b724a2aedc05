"""Fill forecasts: a hand-made bin the model must recover, and real Edinburgh sensor data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layers.errors import InvalidInput
from waste import forecast

WEEKDAY = np.array([0.6, 1.0, 1.0, 1.0, 1.0, 1.4, 1.0])  # mean 1
RATE = 0.12  # of the bin per day


def _hand_made_bin() -> pd.DataFrame:
    """Readings every 2 h over 8 weeks of a bin filling at RATE x WEEKDAY, emptied at 0.9."""
    times = pd.date_range("2024-01-01", periods=8 * 7 * 12, freq="2h", tz="UTC")
    rows, fill = [], 0.05
    for t in times:
        fill += RATE * WEEKDAY[(t - pd.Timedelta(hours=1)).day_of_week] / 12  # the 2 h ending at t
        rows.append(("B1", t, fill, "reading"))
        if fill >= 0.9:
            rows.append(("B1", t, fill, "collection"))
            fill = 0.0
    return pd.DataFrame(rows, columns=["bin_id", "time", "fill_level", "event"])


def test_recovers_a_known_rate_and_weekday_pattern():
    model = forecast.fit(_hand_made_bin())
    assert model.beta == 1.0
    assert model.rates["B1"] == pytest.approx(RATE, rel=0.03)
    assert model.weekday == pytest.approx(WEEKDAY, abs=0.05)
    # last state: a reading on Sunday 24 Feb 22:00 UTC; from Monday 00:00 the bin gains 0.6 x RATE
    monday = pd.Timestamp("2024-02-26", tz="UTC")
    now = model.predict(["B1"], monday)["fill"].iloc[0]
    tuesday = model.predict(["B1"], monday + pd.Timedelta(days=1))
    assert tuesday["fill"].iloc[0] == pytest.approx(now + 0.6 * RATE, abs=0.005)
    assert tuesday["fill_lo"].iloc[0] <= tuesday["fill"].iloc[0] <= tuesday["fill_hi"].iloc[0]
    eta = model.time_to(min(now + 0.6 * RATE + 0.05, 1.0), monday)
    # Monday gives 0.6 x RATE, then 0.05 more at RATE per day on Tuesday
    expected = monday + pd.Timedelta(days=1 + 0.05 / RATE)
    assert abs(eta["eta"].iloc[0] - expected) < pd.Timedelta(minutes=90)
    assert eta["eta_lo"].iloc[0] <= eta["eta"].iloc[0] <= eta["eta_hi"].iloc[0]


def test_bad_history_names_the_field():
    h = _hand_made_bin()
    with pytest.raises(InvalidInput, match="event 'emptied'") as err:
        forecast.fit(h.assign(event="emptied"))
    assert err.value.field == "event"
    with pytest.raises(InvalidInput, match="time zone"):
        forecast.fit(h.assign(time=h["time"].dt.tz_localize(None)))
    with pytest.raises(InvalidInput, match="bins without readings"):
        forecast.fit(h).predict(["nope"], pd.Timestamp("2024-03-01", tz="UTC"))


@pytest.fixture(scope="module")
def edinburgh(shared_data) -> pd.DataFrame:
    """Edinburgh's 10,000 collection records as a history (fill just before each collection)."""
    raw = pd.read_excel(shared_data / "waste-edinburgh" / "edinburgh_raw_bin_data.xlsx", header=2)
    fill = next(c for c in raw.columns if str(c).startswith("Fill level before"))
    local = pd.to_datetime(raw["Date & Time of bin collection (Europe/London)"])
    return pd.DataFrame({
        "bin_id": raw["Site"].astype(str), "event": "collection",
        "time": local.dt.tz_localize("Europe/London").dt.tz_convert("UTC"),
        "fill_level": pd.to_numeric(raw[fill]) / 100.0,
    })  # fmt: skip


def test_edinburgh_forecast_beats_last_rate_on_held_out_collections(edinburgh):
    """Train on the first 2/3 of the period, predict each later collection's fill from the
    time since the bin's previous collection. Measured: geoby MAE 0.147; last rate of the
    training period 0.195; last rate of the previous collection (updated online) 0.192;
    80 % band covers 78 %."""
    assert len(edinburgh) == 10_000 and edinburgh["bin_id"].nunique() == 334
    cut = edinburgh["time"].min() + (edinburgh["time"].max() - edinburgh["time"].min()) * 2 / 3
    model = forecast.fit(edinburgh[edinburgh["time"] <= cut], timezone="Europe/London")
    iv = forecast.intervals(forecast.prepare(edinburgh))
    rate = iv["fill"] / ((iv["end"] - iv["start"]) / pd.Timedelta(days=1))
    pooled = rate[iv["end"] <= cut].median()
    last_in_training = rate[iv["end"] <= cut].groupby(iv["bin_id"]).last()
    previous = rate.groupby(iv["bin_id"]).shift()
    test = iv["end"] > cut
    held = iv[test]
    assert len(held) > 3000
    days = ((held["end"] - held["start"]) / pd.Timedelta(days=1)).to_numpy()
    static = last_in_training.reindex(held["bin_id"]).fillna(pooled).to_numpy()
    online = previous[test].fillna(pooled).to_numpy()
    pred = model.fill_between(held["bin_id"], held["start"], held["start_fill"], held["end"])
    truth = held["fill"].to_numpy()

    def mae(p: np.ndarray) -> float:
        return float(np.abs(np.minimum(p, 1.0) - truth).mean())

    geoby = mae(pred["fill"].to_numpy())
    baselines = {"last rate in training": mae(static * days), "previous rate": mae(online * days)}
    assert all(geoby < 0.85 * b for b in baselines.values()), (geoby, baselines)
    assert model.beta < 1.0  # Edinburgh bins do not fill linearly
    inside = (pred["fill_lo"].to_numpy() <= truth) & (truth <= pred["fill_hi"].to_numpy())
    assert 0.70 <= inside.mean() <= 0.90, inside.mean()


def test_sample_town_day_ahead_forecast_from_the_sensors(town_dir):
    """The operational question on the sample town: from a bin's latest reading at least 24 h
    before a held-out collection (last third of the 90 days), its fill at the collection.
    Measured: geoby MAE 0.014; the bin's mean training rate 0.028; no change (persistence)
    0.141; the slope of the bin's current cycle so far 0.013 (the simulated bins fill almost
    linearly, which favours that baseline; Edinburgh's real bins do not)."""
    from waste import planning

    readings = pd.read_csv(town_dir / "waste" / "sensor_readings.csv", parse_dates=["time"])
    readings = readings[readings["fill_level"].between(0, 1)]
    collections = pd.read_csv(town_dir / "waste" / "collections.csv", parse_dates=["time"])
    history = planning.history(readings, collections)
    cut = history["time"].min() + (history["time"].max() - history["time"].min()) * 2 / 3
    model = forecast.fit(history[history["time"] <= cut], timezone="Europe/Copenhagen")
    by_bin = {b: g.sort_values("time") for b, g in readings.groupby("bin_id")}
    emptied = collections.groupby("bin_id")["time"].apply(sorted).to_dict()
    rows = []
    for c in collections[collections["time"] > cut].itertuples():
        before = [t for t in emptied[c.bin_id] if t < c.time]
        g = by_bin.get(c.bin_id)
        if g is None:
            continue
        g = g[(g["time"] <= c.time - pd.Timedelta(hours=24))
              & (g["time"] > (before[-1] if before else pd.Timestamp.min.tz_localize("UTC")))]  # fmt: skip
        if len(g):
            rows.append((c.bin_id, g["time"].iloc[-1], g["fill_level"].iloc[-1], c.time,
                         c.fill_before))  # fmt: skip
    held = pd.DataFrame(rows, columns=["bin_id", "t0", "f0", "t1", "truth"])
    assert len(held) > 500
    pred = model.fill_between(held["bin_id"], pd.DatetimeIndex(held["t0"]), held["f0"],
                              pd.DatetimeIndex(held["t1"]))["fill"].to_numpy()  # fmt: skip
    train = readings[readings["time"] <= cut].sort_values(["bin_id", "time"])
    rise = train.groupby("bin_id")["fill_level"].diff().clip(lower=0)
    span = train.groupby("bin_id")["time"].diff() / pd.Timedelta(days=1)
    mean_rate = rise.groupby(train["bin_id"]).sum() / span.groupby(train["bin_id"]).sum()
    days = ((held["t1"] - held["t0"]) / pd.Timedelta(days=1)).to_numpy()

    def mae(p) -> float:
        return float(np.abs(np.clip(p, 0, 1) - held["truth"].to_numpy()).mean())

    geoby = mae(pred)
    assert geoby < 0.6 * mae(held["f0"] + mean_rate.reindex(held["bin_id"]).to_numpy() * days)
    assert geoby < 0.2 * mae(held["f0"].to_numpy())
