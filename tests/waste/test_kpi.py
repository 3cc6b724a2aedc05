"""KPIs on hand-made numbers with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from layers.errors import InvalidInput
from waste import kpi


def _collections() -> pd.DataFrame:
    return pd.DataFrame({
        "time": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-08", "2024-01-10",
                                "2024-01-22"], utc=True),
        "fraction": ["residual", "paper", "residual", "glass", "residual"],
        "weight_kg": [300.0, 100.0, 200.0, 150.0, 250.0],
        "fill_before": [0.9, 0.4, 1.0, 0.6, 0.8],
    })  # fmt: skip


def test_kg_per_inhabitant_by_fraction_and_per_year():
    out = kpi.kg_per_inhabitant(_collections(), 100)  # 1,000 kg over 22 days
    assert out.loc["total", "kg"] == 1000.0
    assert out.loc["residual", "kg_per_inhabitant"] == 7.5
    assert out.loc["total", "kg_per_inhabitant_year"] == pytest.approx(10.0 * 365 / 22)
    assert (
        kpi.kg_per_inhabitant(_collections(), 50, days=365).loc["glass", "kg_per_inhabitant_year"]
        == 3.0
    )
    with pytest.raises(InvalidInput, match="population"):
        kpi.kg_per_inhabitant(_collections(), 0)


def test_recycling_rate_against_eu_targets():
    rate = kpi.recycling_rate(_collections())
    assert rate == pytest.approx(0.25)  # (100 + 150) / 1000
    by = kpi.recycling_by_fraction(_collections())
    assert by.loc["residual", "share"] == 0.75 and not by.loc["residual", "recycled"]
    table = kpi.against_targets(0.58)
    assert table["met"].to_dict() == {2025: True, 2030: False, 2035: False}
    assert table.loc[2035, "gap"] == pytest.approx(0.07)
    assert kpi.EU_TARGETS == {2025: 0.55, 2030: 0.60, 2035: 0.65}
    with pytest.raises(InvalidInput, match="fraction"):
        kpi.recycling_rate(_collections().drop(columns="fraction"))


def test_collections_and_km_per_week_count_empty_weeks():
    per_week = kpi.collections_per_week(_collections())  # ISO weeks 1-4, week 3 empty
    assert per_week.to_dict() == {"glass": 0.25, "paper": 0.25, "residual": 0.75}
    routes = pd.DataFrame({"date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-15"]),
                           "km": [40.0, 20.0, 30.0]})  # fmt: skip
    assert kpi.km_per_week(routes) == pytest.approx(30.0)  # (60 + 0 + 30) / 3


def test_fill_at_collection():
    out = kpi.fill_at_collection(_collections())
    assert out.loc["residual", "mean"] == pytest.approx(0.9)
    assert out.loc["residual", "full_share"] == pytest.approx(1 / 3)
    assert out.loc["paper", "low_share"] == 1.0
