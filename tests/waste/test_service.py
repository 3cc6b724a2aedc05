"""Forecasts, the day's plan and the KPIs on the platform: the sample town's waste history
loaded through the real pipeline, served by /api/waste."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from waste import kpi, service
from waste.forecast import fit
from waste.planning import load_history, plan_day


@pytest.fixture(scope="module")
def client(settings, history_town):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_the_model_is_fitted_once_per_data_and_plans_what_plan_day_plans(history_town):
    first = service.model(history_town)
    assert service.model(history_town) is first  # kept until the data changes
    plan = service.plan(history_town, threshold=0.8)
    visit = pd.Timestamp(plan["visit"])
    assert visit > first.latest and visit.weekday() < 5
    history = load_history(history_town, since=first.latest - pd.Timedelta(days=42))
    bins = service._bins(history_town)  # noqa: SLF001 - the same bins the service plans
    expected = plan_day(fit(history, timezone=service.TIMEZONE), bins, visit,
                        service.next_workday(visit), 0.8)  # fmt: skip
    assert [b["bin_id"] for b in plan["bins"]] == expected["bin_id"].tolist()
    assert sum(sum(v.values()) for v in plan["by_fraction"].values()) == len(plan["bins"]) > 0
    assert all(b["reason"] in ("forecast", "overflowing") for b in plan["bins"])
    assert all(b["fill_at_next_visit"] >= 0.8 or b["reason"] == "overflowing"
               for b in plan["bins"])  # fmt: skip


def test_a_higher_threshold_plans_fewer_bins(history_town):
    low = service.plan(history_town, threshold=0.6)
    high = service.plan(history_town, threshold=0.95)
    assert len(high["bins"]) < len(low["bins"])
    assert {b["bin_id"] for b in high["bins"]} <= {b["bin_id"] for b in low["bins"]}


def test_kpis_agree_with_the_kpi_functions(history_town):
    doc = service.kpis(history_town, population=5000)
    with history_town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT b.fraction, c.weight_kg FROM data.waste_collections AS c "
                    "JOIN data.waste_bins AS b USING (bin_id) WHERE c.weight_kg IS NOT NULL")  # fmt: skip
        frame = pd.DataFrame(cur.fetchall(), columns=["fraction", "weight_kg"])
    assert doc["recycling_rate"] == pytest.approx(kpi.recycling_rate(frame))
    assert [t["year"] for t in doc["eu_targets"]] == [2025, 2030, 2035]
    total = next(r for r in doc["kg_per_inhabitant"] if r["fraction"] == "total")
    assert total["kg"] == pytest.approx(frame["weight_kg"].sum())
    assert total["kg_per_inhabitant"] == pytest.approx(frame["weight_kg"].sum() / 5000)
    estimated = service.kpis(history_town)
    assert estimated["population"] > 0 and "homes" in estimated["population_source"]


def test_the_waste_endpoints(client, history_town):
    forecast = client.get("/api/waste/forecast?threshold=0.9").json()
    assert len(forecast["bins"]) > 100
    row = forecast["bins"][0]
    assert row["fill_lo"] <= row["fill"] <= row["fill_hi"]
    plan = client.get("/api/waste/plan").json()
    assert plan["bins"] and {"lon", "lat", "reason", "fill_now"} <= set(plan["bins"][0])
    day = client.get(f"/api/waste/plan?day={plan['day']}").json()
    assert day["bins"] == plan["bins"]
    assert client.get("/api/waste/plan?day=someday").status_code == 400
    assert client.get("/api/waste/forecast?at=2023-11-30T06:00:00").status_code == 400  # no zone
    kpis = client.get("/api/waste/kpis?population=4000").json()
    assert kpis["population"] == 4000 and 0 < kpis["recycling_rate"] < 1


def test_routes_for_the_day_visit_every_planned_bin_once_within_capacity(client, history_town):
    from dig_coordination.users import add_user, ensure_organisation
    from tests.dig.conftest import bearer

    with history_town.connection("admin") as conn:
        ensure_organisation(conn, "Egevig Kommune, Affald")
        planner = add_user(conn, org="Egevig Kommune, Affald", role="planner")[1]
        ensure_organisation(conn, "Graveselskabet A/S")
        contractor = add_user(conn, org="Graveselskabet A/S", role="contractor")[1]
    body = {"seconds": 2}
    assert client.post("/api/waste/routes", json=body).status_code == 401
    assert client.post("/api/waste/routes", json=body,
                       headers=bearer(contractor)).status_code == 403  # fmt: skip
    response = client.post("/api/waste/routes", json=body, headers=bearer(planner))
    assert response.status_code == 200, response.text
    doc = response.json()
    plan = service.plan(history_town)
    assert doc["day"] == plan["day"] and doc["summary"]["unassigned"] == []
    # Checked from the stored rows alone, not from the solver's answer:
    with history_town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT s.truck_id, s.stop_order, s.kind, s.bin_id, s.load_after_kg, "
                    "f.capacity_kg, f.fraction, b.fraction FROM data.waste_route_stops AS s "
                    "JOIN data.waste_fleet AS f USING (truck_id) LEFT JOIN data.waste_bins AS b "
                    "USING (bin_id) WHERE s.day = %s ORDER BY s.truck_id, s.stop_order",
                    (plan["day"],))  # fmt: skip
        rows = cur.fetchall()
    visited = [r[3] for r in rows if r[2] == "bin"]
    assert sorted(visited) == sorted(b["bin_id"] for b in plan["bins"])  # each exactly once
    for truck, _, kind, _, load, capacity, truck_fraction, bin_fraction in rows:
        assert load <= capacity, truck
        assert kind == "disposal" or bin_fraction == truck_fraction
    last = {}
    for truck, _order, kind, *_ in rows:
        last[truck] = kind
    assert set(last.values()) == {"disposal"}  # every route ends by emptying
    for truck, _, kind, _, load, *_ in rows:
        if kind == "disposal":
            assert load == 0, truck
    again = client.get(f"/api/waste/routes?day={plan['day']}").json()
    assert again["routes"] == doc["routes"] and again["stops"] == doc["stops"]
    assert len(doc["stops"]["features"]) == len(rows)
    km = sum(f["properties"]["distance_km"] for f in doc["routes"]["features"])
    assert km == pytest.approx(doc["summary"]["distance_km"], abs=1e-3)
    assert service.kpis(history_town)["km_per_week"] > 0
