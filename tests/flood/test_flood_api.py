"""Flood scenarios over HTTP: the OGC processes flood-*, and ``/api/flood``.

Runs are real jobs in ``geoby.jobs`` with progress; their results are OGC
collections (features, a depth coverage), buried-asset exposure stays out of
the open catalog, and only planners and admins may start runs over REST.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import rasterio
import shapely

from dig_coordination.users import add_user, ensure_organisation
from layers import catalog
from layers.crs import reproject
from tests.dig.conftest import bearer

ASYNC = {"Prefer": "respond-async"}


def wait(client, url: str, tries: int = 1200) -> dict:
    """Poll a job until it is no longer accepted or running."""
    pause = threading.Event()
    for _ in range(tries):
        job = client.get(url).json()
        if job["status"] not in ("accepted", "running"):
            return job
        pause.wait(0.05)
    pytest.fail(f"{url} still {job['status']} after {tries} polls")


def job_row(database, job_id: str) -> dict:
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT status, progress, message, inputs FROM geoby.jobs "
                    "WHERE identifier = %s", (job_id,))  # fmt: skip
        found = cur.fetchone()
    return (
        dict(zip(("status", "progress", "message", "inputs"), found, strict=True)) if found else {}
    )


@pytest.fixture(scope="module")
def tokens(flood_town) -> dict[str, str]:
    out = {}
    with flood_town.connection("admin") as conn:
        for role, org in (("planner", "Egevig Kommune"), ("contractor", "Graveselskabet A/S")):
            ensure_organisation(conn, org)
            out[role] = add_user(conn, org=org, role=role)[1]
    return out


def test_the_four_flood_processes_are_listed(flood_client):
    found = {p["id"]: p for p in flood_client.get("/ogc/processes?f=json").json()["processes"]}
    for kind in ("cloudburst", "sealevel", "bluespots", "flowpaths"):
        assert "async-execute" in found[f"flood-{kind}"]["jobControlOptions"]
    described = flood_client.get("/ogc/processes/flood-cloudburst?f=json").json()
    assert {"return_period_years", "duration_min", "climate_factor", "drainage_mm", "edits",
            "crs", "terrain_layer"} <= set(described["inputs"])  # fmt: skip


def test_an_async_cloudburst_job_reports_progress_and_serves_its_layers(flood_client, flood_town):
    response = flood_client.post("/ogc/processes/flood-cloudburst/execution", headers=ASYNC,
                                 json={"inputs": {"rain_mm": 60}})  # fmt: skip
    assert response.status_code == 201, response.text
    job_url = response.headers["Location"]
    job = wait(flood_client, job_url)
    assert job["status"] == "successful", job
    row = job_row(flood_town, job_url.rsplit("/", 1)[1])
    assert row["progress"] == 100 and row["inputs"] == {"rain_mm": 60}
    summary = flood_client.get(f"{job_url}/results?f=json").json()
    assert summary["rain"] == {"rain_mm": 60.0}
    assert summary["rain_m3"] == pytest.approx(summary["stored_m3"] + summary["lost_m3"])
    sid = summary["scenario_id"]
    assert any(link["href"].endswith(f"/collections/flood_{sid}_flooded")
               for link in summary["links"])  # fmt: skip
    flood_client.app.state.ogc.refresh(force=True)  # as the next catalog check would
    collections = {
        c["id"] for c in flood_client.get("/ogc/collections?f=json").json()["collections"]
    }
    assert {f"flood_{sid}_depth", f"flood_{sid}_flooded", f"flood_{sid}_bluespots",
            f"flood_exposure_{sid}"} <= collections  # fmt: skip
    assert f"flood_exposure_{sid}_assets" not in collections
    items = flood_client.get(f"/ogc/collections/flood_{sid}_flooded/items?f=json&limit=5").json()
    assert items["numberMatched"] > 0 and items["features"][0]["properties"]["label"]
    exposed = flood_client.get(f"/ogc/collections/flood_exposure_{sid}/items?f=json").json()
    assert exposed["numberMatched"] == summary["exposure"]["buildings"]["wet"] + summary[
        "exposure"]["roads"]["wet"]  # fmt: skip
    restricted = flood_client.get(f"/ogc/collections/flood_exposure_{sid}_assets/items?f=json")
    assert restricted.status_code == 404
    coverage = flood_client.get(f"/ogc/collections/flood_{sid}_depth/coverage?f=GTiff")
    assert coverage.status_code == 200
    with rasterio.open(io.BytesIO(coverage.content)) as served:
        depth = served.read(1)
    with flood_town.connection("read") as conn:
        layer = catalog.get(conn, f"flood_{sid}_depth")
    with rasterio.open(flood_town.settings.data_dir / layer.raster_path) as src:
        np.testing.assert_array_equal(depth, src.read(1))


def test_progress_is_written_while_the_job_runs(flood_town):
    from api.ogc.context import OgcContext
    from api.ogc.flood_process import BluespotsProcessor

    with flood_town.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO geoby.jobs (identifier, process_id, status) "
                    "VALUES ('0000-0000-feed', 'flood-bluespots', 'running') "
                    "ON CONFLICT (identifier) DO UPDATE SET status = 'running', progress = 0")  # fmt: skip
    processor = BluespotsProcessor({"name": "flood-bluespots"})
    processor.bind(OgcContext("test", flood_town.settings, flood_town))
    processor.set_job_id("0000-0000-feed")
    seen = []
    processor._progress(37, "finding depressions")
    seen.append(job_row(flood_town, "0000-0000-feed"))
    assert seen[0]["progress"] == 37 and seen[0]["message"] == "finding depressions"


@pytest.mark.parametrize(
    ("process", "inputs", "named"),
    [
        ("flood-cloudburst", {}, "rain_mm"),
        ("flood-cloudburst", {"rain_mm": -5}, "rain_mm"),
        ("flood-cloudburst", {"return_period_years": 100000, "duration_min": 60},
         "return_period_years"),
        ("flood-sealevel", {"year": 2050, "climate_scenario": "SSP9"}, "climate_scenario"),
        ("flood-sealevel", {"level_m": 2, "edits": {"barriers": [{"geometry": None}]}}, "edits"),
        ("flood-bluespots", {"terrain_layer": "nowhere"}, "terrain_layer"),
        ("flood-bluespots", {"flood": 1}, "flood"),
    ],
)  # fmt: skip
def test_bad_inputs_are_400_naming_the_input_and_leave_no_job(flood_client, flood_town,
                                                              process, inputs, named):  # fmt: skip
    with flood_town.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM geoby.jobs")
        before = cur.fetchone()[0]
    response = flood_client.post(f"/ogc/processes/{process}/execution", headers=ASYNC,
                                 json={"inputs": inputs})  # fmt: skip
    assert response.status_code == 400, response.text
    assert named in response.json()["description"]
    with flood_town.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM geoby.jobs")
        assert cur.fetchone()[0] == before


# -- /api/flood -------------------------------------------------------------------------------


def test_design_rain_and_sea_level_are_open(flood_client):
    rain = flood_client.get("/api/flood/rain?return_period_years=100&duration_min=60"
                            "&drainage_mm=10").json()  # fmt: skip
    assert rain["rain_mm"] == pytest.approx(rain["idf_depth_mm"] * rain["climate_factor"] - 10)
    sea = flood_client.get("/api/flood/sea-level?year=2100&surge_return_period=20").json()
    assert sea["level_m"] > sea["mean_sea_level_m"] and sea["climate_scenario"] == "SSP2-4.5"
    bad = flood_client.get("/api/flood/sea-level?year=2100&surge_return_period=7")
    assert bad.status_code == 400 and "surge_return_period" in bad.text
    outside = flood_client.get("/api/flood/rain?return_period_years=100000&duration_min=60")
    assert outside.status_code == 400


def test_only_planners_and_admins_start_runs(flood_client, tokens):
    body = {"kind": "bluespots", "parameters": {"min_depth_m": 0.2}}
    assert flood_client.post("/api/flood/scenarios", json=body).status_code == 401
    refused = flood_client.post("/api/flood/scenarios", json=body,
                                headers=bearer(tokens["contractor"]))  # fmt: skip
    assert refused.status_code == 403


def test_a_planner_runs_a_sea_level_scenario_with_a_barrier(flood_client, tokens):
    wall = reproject(shapely.LineString([(720_500, 6_169_900), (720_500, 6_174_100)]), 25832, 0)
    body = {"kind": "sealevel", "parameters": {"year": 2100, "surge_return_period": 100},
            "edits": {"barriers": [{"type": "Feature", "geometry": shapely.geometry.mapping(wall),
                                    "properties": {"crest_height_m": 5}}]}}  # fmt: skip
    started = flood_client.post("/api/flood/scenarios", json=body,
                                headers=bearer(tokens["planner"]))  # fmt: skip
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert started.headers["Location"] == f"/api/flood/scenarios/{run_id}"
    done = wait(flood_client, f"/api/flood/scenarios/{run_id}")
    assert done["status"] == "successful" and done["progress"] == 100, done
    summary = done["summary"]
    assert summary["edits"] == {"barriers": 1, "openings": 0}
    assert summary["connected_area_m2"] <= summary["bathtub_area_m2"]
    listed = flood_client.get("/api/flood/scenarios").json()["scenarios"]
    assert run_id in [s["id"] for s in listed]
    assert flood_client.get("/api/flood/scenarios/nope").status_code == 404


def test_the_same_run_without_the_barrier_floods_at_least_as_much(flood_client, tokens):
    body = {"kind": "sealevel", "parameters": {"year": 2100, "surge_return_period": 100}}
    started = flood_client.post("/api/flood/scenarios", json=body,
                                headers=bearer(tokens["planner"])).json()  # fmt: skip
    plain = wait(flood_client, f"/api/flood/scenarios/{started['id']}")["summary"]
    listed = flood_client.get("/api/flood/scenarios").json()["scenarios"]
    walled = next(flood_client.get(f"/api/flood/scenarios/{s['id']}").json()["summary"]
                  for s in listed if s["kind"] == "sealevel" and s["status"] == "successful"
                  and flood_client.get(f"/api/flood/scenarios/{s['id']}").json()["summary"]
                  ["edits"]["barriers"] == 1)  # fmt: skip
    assert plain["connected_area_m2"] >= walled["connected_area_m2"]


def test_the_watershed_of_a_point_contains_it(flood_client):
    point = reproject(shapely.Point(721_500, 6_171_500), 25832, 0)
    found = flood_client.get(f"/api/flood/watershed?x={point.x}&y={point.y}").json()
    area = shapely.geometry.shape(found["geometry"])
    assert found["properties"]["area_m2"] >= 16 and area.buffer(1e-6).contains(point)
    assert found["properties"]["area_m2"] == pytest.approx(reproject(area, 0, 25832).area, rel=1e-3)
    outside = flood_client.get("/api/flood/watershed?x=0&y=0")
    assert outside.status_code == 400
