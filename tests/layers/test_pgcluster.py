"""The private cluster's lifecycle, on a cluster of its own under var/.

These start and kill real PostgreSQL servers; nothing is mocked.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from layers.pgcluster import Cluster, free_port, port_accepts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    c = Cluster(ROOT / "var" / "test-clusters" / "lifecycle")
    c.destroy()
    yield c
    c.destroy()


def _query(c: Cluster, query: str):
    conn = psycopg2.connect(c.superuser_dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def _wait_until_gone(pid: int, timeout: float = 30) -> None:
    """Block until ``pid`` exits (a pidfd becomes readable), failing at the deadline."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"process {pid} did not exit within {timeout} s"
    finally:
        os.close(fd)


def test_up_creates_a_running_cluster_with_postgis(cluster):
    state = cluster.up()
    assert state.running and state.initialised
    assert port_accepts(state.port)
    assert (cluster.credfile.stat().st_mode & 0o777) == 0o600
    _query(cluster, "CREATE EXTENSION IF NOT EXISTS postgis")
    (version,) = _query(cluster, "SELECT postgis_lib_version()")
    assert version.startswith("3.")


def test_second_up_is_a_no_op(cluster):
    first = cluster.up()
    second = cluster.up()
    assert second.pid == first.pid
    assert second.port == first.port


def test_password_is_required_on_loopback(cluster):
    state = cluster.up()
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(host="127.0.0.1", port=state.port, user="postgres",
                         password="wrong", dbname="postgres")  # fmt: skip


def test_down_then_up_keeps_data(cluster):
    cluster.up()
    _query(cluster, "DROP TABLE IF EXISTS kept; CREATE TABLE kept AS SELECT 42 AS answer")
    stopped = cluster.down()
    assert not stopped.running
    assert not port_accepts(stopped.port)
    assert cluster.down().running is False  # a second down is harmless too
    assert cluster.up().running
    assert _query(cluster, "SELECT answer FROM kept") == (42,)


def test_up_after_the_server_was_killed(cluster):
    state = cluster.up()
    _query(cluster, "DROP TABLE IF EXISTS survivor; CREATE TABLE survivor AS SELECT 7 AS n")
    os.kill(state.pid, signal.SIGKILL)
    _wait_until_gone(state.pid)
    assert not cluster.state().running
    restarted = cluster.up()
    assert restarted.running and restarted.pid != state.pid
    assert _query(cluster, "SELECT n FROM survivor") == (7,)


def test_stale_pid_file_with_a_reused_pid(cluster):
    state = cluster.up()
    cluster.down()
    # A pid file naming a live process that is not PostgreSQL (this test runner).
    pidfile = cluster.data / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n{cluster.data}\n0\n{state.port}\n\n127.0.0.1\n")
    assert not cluster.state().running
    assert cluster.up().running


def test_busy_port_moves_to_a_free_one(cluster):
    cluster.down()
    old = cluster.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old))
        squatter.listen()
        state = cluster.up()
    assert state.running and state.port != old
    assert _query(cluster, "SELECT 1") == (1,)


def test_free_port_prefers_the_given_one():
    port = free_port()
    assert free_port(port) == port


def test_cli_db_up_twice_status_and_down(cluster):
    env = {**os.environ, "GEOBY_DATABASE_CLUSTER_DIR": str(cluster.directory),
           "GEOBY_DATABASE_NAME": "cli_lifecycle"}  # fmt: skip
    env.pop("GEOBY_DATABASE_URL", None)
    geoby = [sys.executable, "-m", "api.cli"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*geoby, *args], env=env, cwd=ROOT, capture_output=True, text=True)

    first = run("db", "up")
    assert first.returncode == 0, first.stderr
    assert "applied migrations 1, 2" in first.stdout
    second = run("db", "up")
    assert second.returncode == 0, second.stderr
    assert "schema up to date" in second.stdout
    status = run("db", "status")
    assert status.returncode == 0 and "PostGIS 3" in status.stdout
    url = run("db", "url", "--role", "read")
    assert url.stdout.startswith("postgresql://geoby_read:")
    conn = psycopg2.connect(url.stdout.strip())
    with conn.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("geoby_read",)
    conn.close()
    down = run("db", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    after = run("db", "status")
    assert after.returncode == 1
    assert "stopped" in after.stderr and "geoby db up" in after.stderr
