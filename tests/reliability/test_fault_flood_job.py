"""Faults: an API process is killed while a flood job runs; the job fails cleanly, a rerun works.

An API process (``geoby serve``) on the test database, with the sample town
loaded, runs a ``flood-cloudburst`` job asynchronously. It is killed
(``kill -9``) once the job has registered its first layer (progress 78: the
depth COG is in the catalog, the other layers follow one after another). A new API process is started and, at once (not after
``STALE_AFTER``: the dead job's advisory lock is gone, see ``api/ogc/jobs.py``):

* the job is ``failed`` with "interrupted by a restart";
* nothing of the scenario is left: no catalog entry, no table, no COG (nor a
  hidden half-written one) under the data directory;
* running the same scenario again succeeds and gives the result of an
  uninterrupted run (same scenario id, same summary, same depth raster,
  cell for cell).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import rasterio

from dig_coordination.users import add_user, ensure_organisation
from flood.scenario import Scenario, run
from flood.store import drop_layers
from layers import catalog
from layers.database import Database, connect
from layers.errors import NotFound
from tests.dig.conftest import bearer, reset
from tests.flood.conftest import load_town
from tests.reliability.polling import wait_for
from tests.reliability.record import record, scale

# make test runs the quick subset; this file runs in make reliability.
pytestmark = pytest.mark.reliability_full

ROOT = Path(__file__).resolve().parents[2]
ASYNC = {"Prefer": "respond-async"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def town(settings, tmp_path_factory, town_dir) -> Database:
    """The sample town loaded with a data directory of this module's own."""
    own = settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("h6-data")})
    database = Database(own)
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=True)
        with conn.cursor() as cur:
            cur.execute("DELETE FROM geoby.jobs")
    finally:
        conn.close()
    load_town(database, town_dir)
    yield database
    database.close()


@pytest.fixture(scope="module")
def token(town) -> str:
    with town.connection("admin") as conn:
        ensure_organisation(conn, "Egevig Kommune")
        return add_user(conn, org="Egevig Kommune", role="planner")[1]


class Api:
    """``geoby serve`` on a free port, as its own process."""

    def __init__(self, database: Database) -> None:
        s = database.settings
        self.port = free_port()
        env = {**os.environ, "GEOBY_DATABASE_NAME": s.database.name,
               "GEOBY_DATABASE_CLUSTER_DIR": str(s.database.cluster_dir.resolve()),
               "GEOBY_DATA_DIR": str(s.data_dir), "GEOBY_NOTIFY_WORKER_IN_APP": "false",
               "GEOBY_BROKER_SUBSCRIBE_IN_APP": "false"}  # fmt: skip
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "geoby"), "serve", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=60)
        assert wait_for(self._up, 90), f"the API did not start ({self.process.poll()=})"

    def _up(self) -> bool:
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.client.close()


def job_row(database: Database, job_id: str) -> dict:
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT status, progress, message, error FROM geoby.jobs"
                    " WHERE identifier = %s", (job_id,))  # fmt: skip
        status, progress, message, error = cur.fetchone()
    return {"status": status, "progress": progress, "message": message, "error": error}


def left_over(database: Database, scenario: Scenario) -> dict[str, list[str]]:
    """What of a scenario exists: catalog entries, tables, files under the data directory."""
    ids = scenario.layer_ids()
    found: dict[str, list[str]] = {"catalog": [], "tables": [], "files": []}
    with database.connection("admin") as conn, conn.cursor() as cur:
        for layer_id in ids:
            try:
                catalog.get(conn, layer_id)
                found["catalog"].append(layer_id)
            except NotFound:
                pass
        cur.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables"
                    " WHERE table_name = ANY(%s)", (ids,))  # fmt: skip
        found["tables"] = sorted(r[0] for r in cur.fetchall())
    found["files"] = sorted(str(p.name) for p in database.settings.data_dir.rglob(
        f"*{scenario.id}*"))  # fmt: skip
    return found


def _past(seen: dict, database: Database, job_id: str) -> bool:
    """Whether the job has registered its first layer (progress 78: the depth COG) or is over."""
    seen.update(job_row(database, job_id))
    return seen["progress"] >= 78 or seen["status"] in ("successful", "failed", "dismissed")


def depth_checksum(database: Database, sid: str) -> str:
    with database.connection("read") as conn:
        layer = catalog.get(conn, f"flood_{sid}_depth")
    with rasterio.open(database.settings.data_dir / layer.raster_path) as src:
        return hashlib.sha256(src.read(1).tobytes()).hexdigest()


COMPARED = ("scenario_id", "rain", "rain_m3", "stored_m3", "lost_m3", "depressions",
            "full_depressions", "wet_area_m2", "max_depth_m", "exposure", "layers")  # fmt: skip


def test_a_flood_job_killed_mid_run_fails_leaves_nothing_and_reruns(town, token):
    attempts = scale(6, 8)
    rain = 47.0
    scenario = Scenario("cloudburst", {"rain_mm": rain})
    sid = scenario.id
    reference = run(town, scenario)  # uninterrupted, in this process
    reference_depth = depth_checksum(town, sid)
    drop_layers(town, scenario.layer_ids())
    auth = bearer(token)

    api = Api(town)
    killed_at: dict | None = None
    tried = 0
    try:
        while tried < attempts:  # the kill must land while the job runs
            tried += 1
            response = api.client.post("/ogc/processes/flood-cloudburst/execution",
                                       json={"inputs": {"rain_mm": rain}},
                                       headers={**ASYNC, **auth})  # fmt: skip
            assert response.status_code == 201, response.text
            job_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
            seen: dict = {}
            wait_for(lambda: _past(seen, town, job_id), 120)  # noqa: B023
            row = job_row(town, job_id)
            if row["status"] == "running":
                api.kill()
                partial = left_over(town, scenario)  # what the killed job had written
                killed_at = {**row, "registered_at_kill": len(partial["catalog"])}
                break
            drop_layers(town, scenario.layer_ids())  # finished first: clear and try again
    finally:
        if killed_at is None:
            api.stop()
    assert killed_at is not None, f"the job finished before the kill in {tried} attempts"
    assert job_row(town, job_id)["status"] == "running"  # the dead process could not say

    started = time.monotonic()
    restarted = Api(town)
    try:
        job = restarted.client.get(f"/ogc/jobs/{job_id}", params={"f": "json"}).json()
        noticed_s = time.monotonic() - started
        after_restart = left_over(town, scenario)
        rerun = restarted.client.post("/ogc/processes/flood-cloudburst/execution",
                                      json={"inputs": {"rain_mm": rain}}, headers=auth)  # fmt: skip
    finally:
        restarted.stop()
    assert rerun.status_code == 200, rerun.text
    summary = rerun.json()
    summary = summary.get("outputs", [summary])[0] if "outputs" in summary else summary
    same = all(summary.get(k) == reference.get(k) for k in COMPARED)
    same_depth = depth_checksum(town, sid) == reference_depth
    failures = sum([job["status"] != "failed", job.get("message") != "interrupted by a restart",
                    any(after_restart.values()), not same, not same_depth])  # fmt: skip
    record("faults", "flood_job_killed", cases=1, failures=failures, faults_injected=1,
           attempts=tried, killed_at_progress=killed_at["progress"],
           layers_registered_at_kill=killed_at["registered_at_kill"],
           noticed_after_restart_s=round(noticed_s, 1), left_over=after_restart,
           rerun_same_result=same and same_depth, data_lost=0)  # fmt: skip
    assert killed_at["registered_at_kill"] >= 1, "the kill landed before any layer was written"
    assert job["status"] == "failed" and job["message"] == "interrupted by a restart", job
    assert not any(after_restart.values()), f"left behind by the killed job: {after_restart}"
    assert same, {k: (summary.get(k), reference.get(k)) for k in COMPARED
                  if summary.get(k) != reference.get(k)}  # fmt: skip
    assert same_depth, "the rerun's depth raster differs from the uninterrupted run's"
