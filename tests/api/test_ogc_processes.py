"""OGC API - Processes: terrain-profile, jobs in PostGIS, async execution, OWSLib.

A tiny terrain model is ingested with the terrain family: 1 m cells in
EPSG:25832 on the plane z = 2 + 0.01 (x - X0), with a nodata hole, so every
height a profile reports can be checked against the plane and against
``geoby.terrain_height`` in SQL. Polling waits on an event with a short
timeout and a bounded number of tries; nothing sleeps and nothing is timed.
"""

from __future__ import annotations

import math
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from fastapi.testclient import TestClient
from owslib.ogcapi.processes import Processes
from rasterio.transform import from_origin

from api.app import create_app
from api.ogc import config, jobs
from api.ogc.processes import GeobyProcessor, register
from ingest.pipelines import IngestOptions
from ingest.terrain import ingest
from layers.crs import STORAGE_EPSG, transformer
from layers.database import Database
from tests.api.live_server import serve
from tests.db_helpers import rows

LAYER = "terrain_test_jobs"
X0, Y0 = 700_000.0, 6_171_000.0  # top-left corner of the test terrain
WIDTH, HEIGHT = 1200, 800  # 1 m cells: 3 x 2 COG blocks of 512
HOLE = (slice(100, 120), slice(600, 620))  # rows, cols of nodata
EXECUTE = "/ogc/processes/terrain-profile/execution"
ASYNC = {"Prefer": "respond-async"}


def plane(x):
    """The terrain's height at x (cells hold the plane at their centres)."""
    return 2.0 + 0.01 * (np.asarray(x) - X0)


@pytest.fixture(scope="module")
def jobs_settings(settings):
    """Settings whose data directory belongs to this module alone."""
    data_dir = settings.data_dir / f"{settings.database.name}-ogc-processes"
    shutil.rmtree(data_dir, ignore_errors=True)
    return settings.model_copy(update={"data_dir": data_dir})


@pytest.fixture(scope="module")
def terrain(jobs_settings, tmp_path_factory) -> Path:
    """The plane as a GeoTIFF, ingested as layer ``terrain_test_jobs``."""
    path = tmp_path_factory.mktemp("terrain") / "plane.tif"
    xs = X0 + np.arange(WIDTH) + 0.5
    heights = np.repeat(plane(xs)[None, :], HEIGHT, axis=0).astype("float32")
    heights[HOLE] = -9999.0
    profile = dict(driver="GTiff", width=WIDTH, height=HEIGHT, count=1, dtype="float32",
                   crs="EPSG:25832", transform=from_origin(X0, Y0, 1.0, 1.0), nodata=-9999.0)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights, 1)
    database = Database(jobs_settings)
    try:
        options = IngestOptions(show_progress=False, mode="replace", extra={"layer": LAYER})
        ingest(database, [path], options)
    finally:
        database.close()
    return path


@pytest.fixture(scope="module")
def client(jobs_settings, terrain):
    with TestClient(create_app(jobs_settings)) as client:
        yield client


def _line(*points, crs: int = 0) -> dict:
    """A GeoJSON LineString of EPSG:25832 points, in CRS84 (0) or EPSG:25832."""
    if crs == STORAGE_EPSG:
        return {"type": "LineString", "coordinates": [list(p) for p in points]}
    to = transformer(STORAGE_EPSG, crs)
    return {"type": "LineString", "coordinates": [list(to.transform(*p)) for p in points]}


def _inputs(line: dict, **more) -> dict:
    return {"inputs": {"line": line, "layer": LAYER, **more}}


def _job_row(owner_conn, job_id: str) -> dict:
    found = rows(
        owner_conn,
        "SELECT status, process_id, message, progress, inputs, result, location, error"
        " FROM geoby.jobs WHERE identifier = %s",
        job_id,
    )
    keys = ("status", "process_id", "message", "progress", "inputs", "result", "location", "error")
    return dict(zip(keys, found[0], strict=True)) if found else {}


def _wait_until_done(client, job_url: str, tries: int = 400) -> dict:
    """Poll a job until it is no longer accepted or running (at most ``tries`` polls)."""
    pause = threading.Event()
    for _ in range(tries):
        job = client.get(job_url).json()
        if job["status"] not in ("accepted", "running"):
            return job
        pause.wait(0.05)
    pytest.fail(f"job {job_url} still {job['status']} after {tries} polls")


def _check_plane(profile: dict) -> None:
    """Every known height is the plane's within 1 cm; min/max/length agree."""
    samples = profile["profile"]
    heights = [s["height_m"] for s in samples if s["height_m"] is not None]
    assert heights
    for s in samples:
        if s["height_m"] is not None:
            assert abs(s["height_m"] - plane(s["x"])) <= 0.01, s
            # exactly the value of the cell the sample falls in (either one, for a
            # sample within 1 mm of a border, as a CRS84 round trip leaves it)
            cells = {math.floor(s["x"] - X0 + d) for d in (-1e-3, 1e-3)}
            assert any(s["height_m"] == pytest.approx(plane(X0 + c + 0.5), abs=1e-3)
                       for c in cells), s  # fmt: skip
    assert profile["min_height_m"] == min(heights)
    assert profile["max_height_m"] == max(heights)
    assert samples[0]["distance_m"] == 0
    assert samples[-1]["distance_m"] == pytest.approx(profile["length_m"], abs=1e-3)
    assert profile["samples"] == len(samples)


# -- description ---------------------------------------------------------------------


def test_processes_list_terrain_profile(client):
    body = client.get("/ogc/processes").json()
    found = {p["id"]: p for p in body["processes"]}
    assert "terrain-profile" in found
    assert "DVR90" in found["terrain-profile"]["description"]
    assert set(found["terrain-profile"]["jobControlOptions"]) == {"sync-execute", "async-execute"}
    process = client.get("/ogc/processes/terrain-profile").json()
    assert set(process["inputs"]) == {"line", "crs", "step_m", "layer"}
    assert process["inputs"]["step_m"]["schema"]["maximum"] == 1000
    assert "profile" in process["outputs"]


def test_conformance_and_openapi_name_processes(client):
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in classes
    paths = client.get("/ogc/openapi", params={"f": "json"}).json()["paths"]
    assert "/processes/terrain-profile/execution" in paths and "/jobs/{jobId}" in paths


# -- synchronous execution -----------------------------------------------------------


def test_sync_profile_follows_the_plane(client, owner_conn):
    a, b = (700_050.3, 6_170_500.7), (701_150.9, 6_170_300.2)
    response = client.post(EXECUTE, json=_inputs(_line(a, b), step_m=10))
    assert response.status_code == 200, response.text
    profile = response.json()
    length = math.dist(a, b)
    assert profile["length_m"] == pytest.approx(length, abs=1e-3)
    assert profile["samples"] == math.ceil(length / 10) + 1
    assert profile["crs"].endswith("/EPSG/0/25832") and profile["vertical_datum"] == "DVR90"
    first, last = profile["profile"][0], profile["profile"][-1]
    assert (first["x"], first["y"]) == pytest.approx(a, abs=1e-3)
    assert (last["x"], last["y"]) == pytest.approx(b, abs=1e-3)
    assert profile["profile"][1]["distance_m"] == pytest.approx(10)
    assert all(s["height_m"] is not None for s in profile["profile"])
    _check_plane(profile)
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    row = _job_row(owner_conn, job_id)
    assert row["status"] == "successful" and row["process_id"] == "terrain-profile"
    assert row["result"] == profile and row["location"] is None
    assert row["inputs"]["layer"] == LAYER


def test_profile_heights_equal_sql_terrain_height(client, database):
    # Integer coordinates: samples fall on cell corners and tile borders; the line
    # starts west of the terrain and crosses the nodata hole; its last leg is oblique.
    points = [
        (699_980, 6_170_890),
        (700_700, 6_170_890),
        (700_700, 6_170_190),
        (700_455.7, 6_170_333.3),
    ]
    response = client.post(EXECUTE, json=_inputs(_line(*points, crs=STORAGE_EPSG),
                                                 crs="EPSG:25832", step_m=10))  # fmt: skip
    assert response.status_code == 200, response.text
    samples = response.json()["profile"]
    with database.connection("read") as conn:
        sql_heights = rows(
            conn,
            "SELECT geoby.terrain_height(%s, x, y) FROM unnest(%s::float8[], %s::float8[])"
            " WITH ORDINALITY AS s(x, y, i) ORDER BY i",
            LAYER,
            [s["x"] for s in samples],
            [s["y"] for s in samples],
        )
    expected = [None if h is None else round(h, 3) for (h,) in sql_heights]
    assert [s["height_m"] for s in samples] == pytest.approx(expected, abs=1e-3)
    nulls = [(s["x"], s["y"]) for s in samples if s["height_m"] is None]
    assert (699_980, 6_170_890) in nulls and (699_990, 6_170_890) in nulls  # west of the terrain
    assert (700_600, 6_170_890) in nulls and (700_610, 6_170_890) in nulls  # the hole
    assert (700_620, 6_170_890) not in nulls  # the hole's east border belongs to the next cell


def test_epsg_4326_input_is_lat_lon(client):
    a, b = (700_100.0, 6_170_400.0), (700_400.0, 6_170_400.0)
    lon_lat = _line(a, b)["coordinates"]
    line = {"type": "LineString", "coordinates": [[lat, lon] for lon, lat in lon_lat]}
    response = client.post(EXECUTE, json=_inputs(line, crs="EPSG:4326", step_m=100))
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["length_m"] == pytest.approx(300, abs=1e-3) and profile["samples"] == 4
    _check_plane(profile)


# -- asynchronous execution and the job store -------------------------------------------


def test_async_job_runs_lists_and_is_dismissed(client, owner_conn):
    line = _line((700_010.0, 6_170_210.0), (700_900.0, 6_170_990.0))
    response = client.post(EXECUTE, json=_inputs(line, step_m=5), headers=ASYNC)
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    job_id = location.rsplit("/", 1)[-1]
    assert location.endswith(f"/ogc/jobs/{job_id}")
    status = response.json()
    assert status["jobID"] == job_id and status["status"] == "accepted"
    assert status["links"][0]["href"] == location
    job_url = f"/ogc/jobs/{job_id}"

    job = _wait_until_done(client, job_url)
    assert job["status"] == "successful", job
    assert job["progress"] == 100 and job["processID"] == "terrain-profile"
    result = client.get(f"{job_url}/results", params={"f": "json"})
    assert result.status_code == 200
    profile = result.json()
    _check_plane(profile)
    assert _job_row(owner_conn, job_id)["result"] == profile

    listed = client.get("/ogc/jobs", params={"f": "json"}).json()
    assert job_id in [j["jobID"] for j in listed["jobs"]]
    page = client.get("/ogc/jobs", params={"f": "json", "limit": 1}).json()
    assert len(page["jobs"]) == 1 and any(link["rel"] == "next" for link in page["links"])

    dismissed = client.delete(job_url)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert client.get(job_url).status_code == 404
    assert client.get(f"{job_url}/results").status_code == 404
    assert client.delete(job_url).status_code == 404
    row = _job_row(owner_conn, job_id)
    assert row["status"] == "dismissed" and row["result"] is None
    listed = client.get("/ogc/jobs", params={"f": "json"}).json()
    assert job_id not in [j["jobID"] for j in listed["jobs"]]


def test_large_result_goes_to_a_file_removed_on_dismissal(client, owner_conn, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_JSONB_BYTES", 100)
    line = _line((700_010.0, 6_170_500.0), (700_300.0, 6_170_500.0))
    response = client.post(EXECUTE, json=_inputs(line, step_m=1), headers=ASYNC)
    assert response.status_code == 201, response.text
    job_url = "/ogc/jobs/" + response.headers["Location"].rsplit("/", 1)[-1]
    assert _wait_until_done(client, job_url)["status"] == "successful"
    row = _job_row(owner_conn, job_url.rsplit("/", 1)[-1])
    path = Path(row["location"])
    assert row["result"] is None and path.is_file() and path.name.startswith("terrain-profile-")
    profile = client.get(f"{job_url}/results", params={"f": "json"}).json()
    assert profile["samples"] == 291
    _check_plane(profile)
    assert client.delete(job_url).status_code == 200
    assert not path.exists()


# -- bad input -----------------------------------------------------------------------

GOOD_LINE = {"type": "LineString", "coordinates": [[700_100, 6_170_100], [700_200, 6_170_200]]}
BAD = [
    ({"line": {"type": "Point", "coordinates": [700_100, 6_170_100]}}, "line", "Point"),
    ({"line": {"type": "LineString", "coordinates": [[700_100, 6_170_100]]}}, "line", "two"),
    ({"line": {"type": "LineString", "coordinates": [[1, 2], [1, 2]]}}, "line", "zero length"),
    ({"line": {"type": "LineString", "coordinates": [["a", "b"], [1, 2]]}}, "line", "number"),
    ({"line": GOOD_LINE, "step_m": 0}, "step_m", "outside 1..1000"),
    ({"line": GOOD_LINE, "step_m": "ten"}, "step_m", "number"),
    (
        {
            "line": {
                "type": "LineString",
                "coordinates": [[700_000, 6_170_000], [710_000, 6_170_000]],
            },
            "step_m": 1,
        },
        "step_m",
        "5000",
    ),  # fmt: skip
    ({"line": GOOD_LINE, "crs": "EPSG:9999"}, "crs", "not supported"),
    ({"line": GOOD_LINE, "layer": "nope"}, "layer", "not an open terrain raster"),
    ({"line": GOOD_LINE, "colour": "red"}, "colour", "unknown"),
    ({"step_m": 10}, "line", "required"),
]


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
@pytest.mark.parametrize(("inputs", "name", "message"), BAD)
def test_bad_input_is_400_naming_it_and_leaves_no_job(client, owner_conn, prefer, inputs, name,
                                                       message):  # fmt: skip
    inputs = {"crs": "EPSG:25832", "layer": LAYER, **inputs}
    before = rows(owner_conn, "SELECT count(*) FROM geoby.jobs")[0][0]
    response = client.post(EXECUTE, json={"inputs": inputs}, headers=prefer)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert f"input '{name}'" in body["description"] and message in body["description"]
    assert rows(owner_conn, "SELECT count(*) FROM geoby.jobs")[0][0] == before


def test_unknown_process_and_job_are_404(client):
    assert client.get("/ogc/processes/no-such-process").status_code == 404
    response = client.post("/ogc/processes/no-such-process/execution", json=_inputs(GOOD_LINE))
    assert response.status_code == 404
    unknown = str(uuid.uuid1())
    assert client.get(f"/ogc/jobs/{unknown}").status_code == 404
    assert client.get(f"/ogc/jobs/{unknown}/results").status_code == 404
    assert client.delete(f"/ogc/jobs/{unknown}").status_code == 404


# -- failures ------------------------------------------------------------------------

SECRET = "connect to postgresql://geoby:hunter2@db failed"


class FailingProcessor(GeobyProcessor):
    """A process that fails the way a driver error does (registered by one test only)."""

    def __init__(self, processor_def: dict) -> None:
        metadata = {"version": "1", "id": "test-fails", "title": "Fails", "description": "Fails",
                    "jobControlOptions": ["sync-execute", "async-execute"],
                    "inputs": {"n": {"schema": {"type": "integer"}, "minOccurs": 0}},
                    "outputs": {}}  # fmt: skip
        super().__init__(processor_def, metadata)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        raise RuntimeError(SECRET)


@pytest.fixture
def failing(jobs_settings, terrain):
    register("test-fails", f"{__name__}.FailingProcessor")
    try:
        with TestClient(create_app(jobs_settings)) as client:
            yield client
    finally:
        config.EXTRA_RESOURCES.pop("test-fails")


def test_a_failing_job_is_recorded_without_leaking(failing, owner_conn):
    url = "/ogc/processes/test-fails/execution"
    response = failing.post(url, json={"inputs": {"n": 1}})
    assert response.status_code == 500
    assert "hunter2" not in response.text and "logged" in response.json()["description"]
    [(job_id,)] = rows(owner_conn, "SELECT identifier FROM geoby.jobs WHERE process_id = %s",
                       "test-fails")  # fmt: skip
    row = _job_row(owner_conn, job_id)
    assert row["status"] == "failed" and SECRET in row["error"] and "hunter2" not in row["message"]

    response = failing.post(url, json={"inputs": {}}, headers=ASYNC)
    assert response.status_code == 201
    job_url = "/ogc/jobs/" + response.headers["Location"].rsplit("/", 1)[-1]
    job = _wait_until_done(failing, job_url)
    assert job["status"] == "failed" and "hunter2" not in str(job)
    assert failing.get(f"{job_url}/results").status_code == 400


# -- restarts ------------------------------------------------------------------------


def _insert_job(owner_conn, status: str, age: str) -> str:
    job_id = str(uuid.uuid1())
    with owner_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO geoby.jobs (identifier, process_id, status, created, updated)"
            " VALUES (%s, 'terrain-profile', %s, now() - %s::interval, now() - %s::interval)",
            (job_id, status, age, age),
        )
    return job_id


def test_a_restart_fails_jobs_left_unfinished(jobs_settings, terrain, owner_conn):
    old_running = _insert_job(owner_conn, "running", "1 hour")
    old_accepted = _insert_job(owner_conn, "accepted", "11 minutes")
    recent = _insert_job(owner_conn, "running", "1 minute")  # another live process's job
    finished = _insert_job(owner_conn, "successful", "2 hours")
    with TestClient(create_app(jobs_settings)) as restarted:  # its manager starts
        assert restarted.get("/ogc/jobs", params={"f": "json"}).status_code == 200
        for job_id in (old_running, old_accepted):
            job = restarted.get(f"/ogc/jobs/{job_id}", params={"f": "json"}).json()
            assert job["status"] == "failed" and job["message"] == "interrupted by a restart"
    assert _job_row(owner_conn, recent)["status"] == "running"
    assert _job_row(owner_conn, finished)["status"] == "successful"
    assert _job_row(owner_conn, old_running)["error"] == "interrupted by a restart"


def test_heartbeat_keeps_a_running_job_fresh(client, owner_conn, monkeypatch):
    job_id = _insert_job(owner_conn, "running", "1 hour")
    manager = client.app.state.ogc.refresh().manager
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.01)
    fresh = "SELECT updated > now() - interval '1 minute' FROM geoby.jobs WHERE identifier = %s"
    pause = threading.Event()
    with jobs._Heartbeat(manager, job_id):
        for _ in range(400):
            if rows(owner_conn, fresh, job_id)[0][0]:
                break
            pause.wait(0.05)
    assert rows(owner_conn, fresh, job_id)[0][0], "the heartbeat never touched the job"
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.jobs WHERE identifier = %s", (job_id,))


def test_recover_interrupted_counts_only_stale_jobs(jobs_settings, owner_conn):
    stale = _insert_job(owner_conn, "running", "30 minutes")
    fresh = _insert_job(owner_conn, "running", "30 seconds")
    database = Database(jobs_settings)
    try:
        assert jobs.recover_interrupted(database) >= 1
        assert jobs.recover_interrupted(database) == 0
    finally:
        database.close()
    assert _job_row(owner_conn, stale)["status"] == "failed"
    assert _job_row(owner_conn, fresh)["status"] == "running"
    with owner_conn.cursor() as cur:  # leave no running job for other tests' restarts
        cur.execute("DELETE FROM geoby.jobs WHERE identifier = %s", (fresh,))


# -- a real client -------------------------------------------------------------------


def test_owslib_lists_describes_and_executes(jobs_settings, terrain):
    a, b = (700_200.0, 6_170_600.0), (700_800.0, 6_170_200.0)
    with serve(jobs_settings) as url:
        processes = Processes(f"{url}/ogc")
        assert "terrain-profile" in [p["id"] for p in processes.processes()]
        described = processes.process("terrain-profile")
        assert described["inputs"]["line"]["schema"]["properties"]["type"]["enum"] == ["LineString"]
        answer = processes.execute(
            "terrain-profile", inputs={"line": _line(a, b), "layer": LAYER, "step_m": 25}
        )
        [profile] = answer["outputs"]
        assert profile["length_m"] == pytest.approx(math.dist(a, b), abs=1e-3)
        assert profile["samples"] == math.ceil(math.dist(a, b) / 25) + 1
        _check_plane(profile)
        accepted = processes.execute(
            "terrain-profile", inputs={"line": _line(a, b), "layer": LAYER}, async_=True
        )
        assert accepted == {}  # pygeoapi answers a "document" request with an empty one
        location = processes.response_headers["Location"]
        assert location.startswith(f"{url}/ogc/jobs/")
        pause = threading.Event()
        for _ in range(400):  # let the job finish before the server stops
            job = requests.get(location, params={"f": "json"}, timeout=30).json()
            if job["status"] not in ("accepted", "running"):
                break
            pause.wait(0.05)
        assert job["status"] == "successful", job
        results = requests.get(f"{location}/results", params={"f": "json"}, timeout=30).json()
        assert results["outputs"][0]["samples"] == math.ceil(math.dist(a, b) / 10) + 1
