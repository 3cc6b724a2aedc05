"""The ``geoby`` command, run as a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from layers import catalog
from layers.catalog import Layer
from layers.pgcluster import free_port
from tests.api.live_server import wait_for_line

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOBY_")}
    env.update(
        GEOBY_DATABASE_NAME=settings.database.name,
        GEOBY_DATABASE_CLUSTER_DIR=str(settings.database.cluster_dir),
        GEOBY_ENVIRONMENT="test",
    )
    return env


def geoby(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_layers_list_prints_the_catalog(env, database):
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = 'cli_dem'")
        catalog.register(conn, Layer(
            id="cli_dem", title="Terrain", theme="terrain", kind="raster",
            raster_path="terrain/dem.tif", owner_org="Kystby Kommune", row_count=1000000,
        ))  # fmt: skip
    result = geoby(env, "layers", "list")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("cli_dem"))
    assert "terrain" in line and "raster" in line and "1,000,000" in line
    assert "Kystby Kommune" in line
    assert result.stdout.strip().splitlines()[-1].endswith("layers in the catalog")
    as_json = json.loads(geoby(env, "layers", "list", "--json").stdout)
    assert any(layer["id"] == "cli_dem" for layer in as_json)
    terrain_only = geoby(env, "layers", "list", "--theme", "terrain").stdout
    assert "cli_dem" in terrain_only and "(theme terrain)" in terrain_only


def test_bad_option_fails_with_a_clear_message(env):
    result = geoby(env, "layers", "list", "--theme", "weather")
    assert result.returncode == 2
    assert "weather" in result.stderr and "terrain" in result.stderr


def test_db_status_and_url(env):
    status = geoby(env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "PostGIS 3" in status.stdout and "layers in the catalog" in status.stdout
    url = geoby(env, "db", "url").stdout.strip()
    assert url.startswith("postgresql://geoby_read:")
    assert url.endswith("/" + env["GEOBY_DATABASE_NAME"])


def test_unreachable_database_is_a_one_line_error(env):
    bad = {**env, "GEOBY_DATABASE_URL": "postgresql://u:topsecret@127.0.0.1:1/x"}
    result = geoby(bad, "layers", "list")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: The database is not reachable")
    assert "topsecret" not in result.stderr and "Traceback" not in result.stderr


def test_demo_prepares_and_serves_the_landing_page(env, tmp_path):
    sample_dir = tmp_path / "sample"
    prepared = geoby(env, "demo", "--dir", str(sample_dir), "--no-serve")
    assert prepared.returncode == 0, prepared.stderr
    assert "sample: generated" in prepared.stdout
    assert (sample_dir / "manifest.json").exists()
    again = geoby(env, "demo", "--dir", str(sample_dir), "--no-serve")
    assert "already in" in again.stdout  # the second run reuses the sample

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_line(server, "Uvicorn running on", timeout=60)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
        assert "open layers" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/status").json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
