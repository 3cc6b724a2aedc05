"""Collection planning: hand-made bins, and a replay of the sample town's history."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from layers.errors import InvalidInput
from waste import forecast, planning

DAY = pd.Timestamp("2024-03-04 06:00", tz="UTC")  # a Monday


def _model() -> forecast.FillModel:
    """Constant rates, no weekday pattern, every bin last seen at DAY."""
    rates = pd.Series({"full": 0.01, "crosses": 0.10, "just_under": 0.09, "slow": 0.02,
                       "at_threshold": 0.0})  # fmt: skip
    fills = {"full": 0.97, "crosses": 0.75, "just_under": 0.70, "slow": 0.10, "at_threshold": 0.8}
    state = pd.DataFrame({"time": DAY, "fill": pd.Series(fills)})
    return forecast.FillModel(1.0, np.ones(7), rates.rename_axis("bin_id"), 0.05, (0.5, 1.5),
                              0.8, state)  # fmt: skip


def _bins() -> pd.DataFrame:
    ids = ["full", "crosses", "just_under", "slow", "at_threshold", "no_sensor"]
    return pd.DataFrame({"bin_id": ids, "fraction": ["residual", "paper", "paper", "glass",
                         "glass", "paper"], "capacity_l": 1000})  # fmt: skip


def test_plan_day_picks_exactly_the_bins_that_cross_the_threshold():
    plan = planning.plan_day(_model(), _bins(), DAY, DAY + pd.Timedelta(days=1), threshold=0.8)
    # crosses: 0.75 + 0.10 = 0.85; just_under: 0.70 + 0.09 = 0.79; slow: 0.12; full: now 0.97
    assert plan.set_index("bin_id")["reason"].to_dict() == {
        "at_threshold": "forecast", "crosses": "forecast", "full": "overflowing"}  # fmt: skip
    assert plan.set_index("bin_id").loc["crosses", "fill_next"] == pytest.approx(0.85)
    assert list(plan.columns[:3]) == ["bin_id", "fraction", "capacity_l"]
    # two days ahead, just_under crosses too; the band's upper edge picks it a day early
    later = planning.plan_day(_model(), _bins(), DAY, DAY + pd.Timedelta(days=2))
    assert "just_under" in set(later["bin_id"])
    upper = planning.plan_day(_model(), _bins(), DAY, DAY + pd.Timedelta(days=1), upper=True)
    assert set(upper["bin_id"]) - set(plan["bin_id"]) == {"just_under"}


def test_plan_day_refuses_bad_input():
    with pytest.raises(InvalidInput, match="threshold"):
        planning.plan_day(_model(), _bins(), DAY, DAY + pd.Timedelta(days=1), threshold=1.5)
    with pytest.raises(InvalidInput) as err:
        planning.plan_day(_model(), _bins(), DAY, DAY)
    assert err.value.field == "next_visit"


def test_fixed_round_weekly_and_twice_a_week():
    visits = pd.date_range("2024-03-04 06:00", periods=14, freq="D", tz="UTC")
    visits = visits[visits.day_of_week < 5]
    bins = pd.DataFrame({"bin_id": ["a", "b", "c"], "fraction": "paper",
                         "bin_type": ["surface", "street_litter", "surface"]})  # fmt: skip
    rounds = planning._round(bins, visits, {"street_litter": 0.5, "paper": 2}, "UTC")
    days = [[str(visits[i].date()) for i in np.flatnonzero(rounds[:, j])] for j in range(3)]
    assert days == [["2024-03-04"], ["2024-03-05", "2024-03-08", "2024-03-12", "2024-03-15"],
                    ["2024-03-06"]]  # fmt: skip


@pytest.fixture(scope="module")
def town(town_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = town_dir / "waste"
    readings = pd.read_csv(folder / "sensor_readings.csv")
    collections = pd.read_csv(folder / "collections.csv")
    for frame in (readings, collections):
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
    bins = gpd.read_file(folder / "bins.gpkg", layer="bins")
    return planning.history(readings, collections), bins[["bin_id", "fraction", "bin_type"]]


def test_sample_town_replay_needs_fewer_collections_than_a_fixed_round(town):
    """Fit on the first 30 days, replay days 30-90. Measured (seed 42): geoby 2,752
    collections with 0.5 % of bin-workdays found full; a fixed round sized per bin to its
    fitted rate 3,894 with 2.8 %; a flat weekly round 1,962 with 19 % full."""
    history, bins = town
    start = history["time"].min() + pd.Timedelta(days=30)
    end = history["time"].min() + pd.Timedelta(days=90)
    table = planning.compare_with_schedule(history, bins, start, end, timezone="Europe/Copenhagen")
    both = table[table["fraction"] == "all"].set_index("policy")
    assert both.loc["geoby", "collections"] < 0.8 * both.loc["fixed", "collections"]
    assert both.loc["geoby", "collections_avoided"] > 0
    assert both.loc["geoby", "overflow_risk"] < both.loc["fixed", "overflow_risk"]
    assert 0.0 <= both.loc["geoby", "overflow_risk"] < 0.02
    assert set(table["fraction"]) == {"all", *bins["fraction"]}
    assert (
        both.loc["geoby", "mean_fill_at_collection"] > both.loc["fixed", "mean_fill_at_collection"]
    )
