"""Faults: PostgreSQL restarted (cleanly, and crashed) in the middle of a load and of an ingest.

Both run against a PRIVATE cluster (:mod:`tests.reliability.cluster`), never
the shared ``var/pg``.

Mid-load: locust drives the API (``geoby serve``, a real process) while the
test stops PostgreSQL (``immediate``: a crash with WAL replay; ``fast``: a
clean shutdown that cuts every session), keeps it down a moment and starts it
again on the same port. During the outage clients must get 503 with
``Retry-After`` (not 500, no dropped connection, no hang past the pool wait);
after it the API must answer again within seconds WITHOUT being restarted;
every write answered 2xx must be in the database exactly once, and no dig
request half-written.

Mid-ingest: ``geoby ingest waste sensor_readings.csv`` (245,604 rows) runs as a
subprocess; when its ``COPY`` is seen in ``pg_stat_activity`` PostgreSQL is
crashed. The ingest must exit non-zero naming the database, leave no row, no
catalog source and no staging table behind, and a rerun must load exactly what
a clean ingest into a fresh database loads.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from ingest.pipelines import IngestOptions, ingest
from layers.database import Database
from layers.errors import GeobyError
from layers.migrate import migrate
from tests.reliability.cluster import ROOT, ApiProcess, PrivateTown, private_town
from tests.reliability.load.helpers import (
    build_config,
    check_writes,
    read_stats,
    start_locust,
    summary,
    wait_locust,
)
from tests.reliability.record import record, scale

POOL_WAIT_S = 10
OUTAGE_S = 2.0
RECOVERY_LIMIT_S = 15.0
FAULTS = scale(("immediate", "fast"), ("immediate", "fast", "immediate", "fast"))
GAP_S = scale(5.0, 7.0)
USERS = scale(30, 60)
DURATION_S = scale(25, 40)
READINGS = "sensor_readings.csv"


@pytest.fixture(scope="module")
def town(town_dir: Path) -> PrivateTown:
    return private_town(town_dir)


@pytest.fixture(scope="module")
def api(town: PrivateTown) -> Iterator[ApiProcess]:
    with town.api(GEOBY_DATABASE_POOL_WAIT_S=str(POOL_WAIT_S)) as server:
        yield server


def _inject(town: PrivateTown, api: ApiProcess, modes: tuple[str, ...]) -> list[dict]:
    """Stop PostgreSQL with each mode in turn, start it again, time the API's recovery."""
    faults = []
    for mode in modes:
        threading.Event().wait(GAP_S)
        stopped = time.monotonic()
        town.restart(mode, outage_s=OUTAGE_S)
        started = time.monotonic()
        recovery = api.wait_healthy("/api/layers", timeout=60)
        faults.append({"mode": mode, "down_s": round(started - stopped, 2),
                       "recovery_s": round(recovery, 2)})  # fmt: skip
    return faults


def _writes_work(town: PrivateTown, api: ApiProcess, config: dict) -> list[int]:
    """One dig request and one reading after the faults, on the same API process."""
    with httpx.Client(base_url=api.url, timeout=30) as client:
        dig = client.post("/api/dig-requests", json={**config["digs"][0], "description": "after"},
                          headers={"Authorization": f"Bearer {town.tokens['contractor']}"})  # fmt: skip
        reading = client.post(
            "/api/waste/readings",
            json={"bin_id": town.bins[0], "time": "2003-01-01T00:00:00Z", "fill_level": 0.5},
            headers={"Authorization": f"Bearer {town.tokens['utility']}"},
        )
    return [dig.status_code, reading.status_code]


def test_pg_restart_mid_load(town: PrivateTown, api: ApiProcess, tmp_path: Path) -> None:
    config = build_config(town, api.url, tmp_path, run=f"restart-{uuid.uuid4().hex[:8]}",
                          timeout_s=POOL_WAIT_S + 20)  # fmt: skip
    locust = start_locust(api.url, tmp_path, users=USERS, duration_s=DURATION_S)
    try:
        faults = _inject(town, api, FAULTS)
    finally:
        wait_locust(locust, tmp_path, timeout_s=DURATION_S + 120)
    stats = read_stats(tmp_path)
    writes = check_writes(town, config)
    after = _writes_work(town, api, config)
    recovery_s = max(f["recovery_s"] for f in faults)
    failures = stats.non_retryable + writes.problems + (after != [201, 200])
    record("faults", "pg_restart_mid_load", cases=stats.requests, failures=failures,
           faults_injected=len(faults), data_lost=len(writes.lost), recovery_s=recovery_s,
           faults=faults, users=USERS, duration_s=DURATION_S, writes_after=after,
           **summary(stats, writes))  # fmt: skip

    assert api.process.poll() is None, f"the API died: {api.log[-3000:]}"
    assert stats.retryable > 0, f"no client saw the outage: {stats.errors}"
    assert stats.non_retryable == 0, f"errors other than 503 + Retry-After: {stats.errors_by_type}"
    assert stats.max_ms < (POOL_WAIT_S + 10) * 1000, f"a request hung {stats.max_ms} ms"
    assert recovery_s < RECOVERY_LIMIT_S, f"slow recovery without an API restart: {faults}"
    assert after == [201, 200], f"writes after the restarts answered {after}"
    assert writes.digs_accepted > 0 and writes.readings_accepted > 0, summary(stats, writes)
    assert not writes.lost, f"accepted writes lost: {writes.lost[:10]}"
    assert not writes.duplicated, f"writes stored more than once: {writes.duplicated[:10]}"
    assert not writes.incomplete, f"half-written dig requests: {writes.incomplete[:10]}"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_pool_recovers_from_a_restart(town: PrivateTown, mode: str) -> None:
    """Pooled connections killed by a restart: the first use answers 503 (retryable), the
    pool drops the dead idle ones with it, and the next requests succeed."""
    database = Database(town.settings)
    held = 4
    try:
        with ExitStack() as stack:  # fill the pool with ``held`` idle connections
            for _ in range(held):
                conn = stack.enter_context(database.connection("read"))
                conn.cursor().execute("SELECT 1")
        town.restart(mode)
        outcomes = []
        for _ in range(held + 1):
            try:
                with database.connection("read") as conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
                outcomes.append("ok")
            except GeobyError as exc:
                outcomes.append(f"{exc.status} {type(exc).__name__}")
    finally:
        database.close()
    expected = ["503 DatabaseUnavailable"] + ["ok"] * held
    record("faults", f"pool_after_restart_{mode}", cases=len(outcomes),
           failures=sum(a != b for a, b in zip(outcomes, expected, strict=True)),
           faults_injected=1, outcomes=outcomes)  # fmt: skip
    assert outcomes == expected


# -- mid-ingest ----------------------------------------------------------------------------


def _footprint(town: PrivateTown) -> dict:
    """What an ingest of the readings file leaves: rows, catalog sources, staging tables."""
    rows = town.query("SELECT count(*) FROM data.waste_readings WHERE _source = %s", (READINGS,))
    sources = town.query(
        "SELECT count(*), coalesce(sum(row_count), 0) FROM geoby.layer_sources"
        " WHERE layer_id = 'waste_readings' AND source_file LIKE %s",
        ("%" + READINGS,),
    )
    staging = town.query("SELECT count(*) FROM pg_class WHERE relname LIKE %s", (r"\_stage\_%",))
    layer = town.query("SELECT count(*) FROM geoby.layers WHERE id = 'waste_readings'")
    return {"rows": rows[0][0], "sources": sources[0][0], "source_rows": int(sources[0][1]),
            "staging_tables": staging[0][0], "layer": layer[0][0]}  # fmt: skip


def _digest(dsn_town: PrivateTown, name: str | None = None) -> str:
    text = ("SELECT count(*) || ':' || md5(string_agg((to_jsonb(t) - 'fid' - '_loaded_at')::text,"
            " ',' ORDER BY bin_id, time)) FROM data.waste_readings t WHERE _source = %s")  # fmt: skip
    if name is None:
        return dsn_town.query(text, (READINGS,))[0][0]
    settings = dsn_town.settings.model_copy(
        update={"database": dsn_town.settings.database.model_copy(update={"name": name})}
    )
    from layers.database import connect

    conn = connect(Database(settings).dsn("owner"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(text, (READINGS,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def _clean_ingest(town: PrivateTown) -> str:
    """The readings loaded into a fresh database of the same cluster: the reference."""
    name = f"geoby_clean_{uuid.uuid4().hex[:6]}"
    settings = town.settings.model_copy(
        update={"database": town.settings.database.model_copy(update={"name": name})}
    )
    migrate(settings)
    database = Database(settings)
    try:
        options = IngestOptions(show_progress=False)
        ingest(database, "waste", [town.town_dir / "waste" / "bins.gpkg"], options)
        ingest(database, "waste", [town.town_dir / "waste" / READINGS], options)
    finally:
        database.close()
    return _digest(town, name)


def _wait_for_copy(town: PrivateTown, process: subprocess.Popen, timeout: float) -> float:
    """Seconds until the ingest's COPY runs (its transaction is open and loading)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert process.poll() is None, f"the ingest ended before its COPY: {process.stdout.read()}"
        busy = town.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'geoby-ingest'"
            " AND query ILIKE %s AND state IN ('active', 'idle in transaction')",
            ("COPY%",),
        )[0][0]
        if busy:
            return time.monotonic() - started
        threading.Event().wait(0.05)
    raise AssertionError(f"no COPY of the ingest within {timeout} s")


def _ingest_cli(town: PrivateTown) -> subprocess.Popen:
    path = town.town_dir / "waste" / READINGS
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "ingest", "waste", str(path)], env=town.env(),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.reliability_full
@pytest.mark.parametrize("mode", scale(["immediate"], ["immediate", "fast"]))
def test_pg_restart_mid_ingest(town: PrivateTown, mode: str) -> None:
    town.query("DELETE FROM data.waste_readings WHERE _source = %s", (READINGS,))
    town.query("DELETE FROM geoby.layer_sources WHERE source_file LIKE %s", ("%" + READINGS,))
    before = _footprint(town)
    process = _ingest_cli(town)
    try:
        into_copy_s = _wait_for_copy(town, process, timeout=60)
        town.restart(mode, outage_s=1.0)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    after_fault = _footprint(town)
    rerun = _ingest_cli(town)
    rerun_output, _ = rerun.communicate(timeout=300)
    loaded = _footprint(town)
    digest, reference = _digest(town), _clean_ingest(town)
    checks = {
        "exit_nonzero": process.returncode != 0,
        "names_database": "database" in output.lower(),
        "nothing_half_written": after_fault == before,
        "rerun_ok": rerun.returncode == 0,
        "rerun_registered": loaded["sources"] == 1 and loaded["source_rows"] == loaded["rows"] > 0,
        "equals_clean_ingest": digest == reference,
    }
    failed = [name for name, ok in checks.items() if not ok]
    record("faults", f"pg_restart_mid_ingest_{mode}", cases=len(checks), failures=len(failed),
           faults_injected=1, data_lost=0 if checks["equals_clean_ingest"] else 1,
           into_copy_s=round(into_copy_s, 2), exit_code=process.returncode,
           footprint_after_fault=after_fault, loaded=loaded, failed=failed)  # fmt: skip

    assert not failed, (
        f"{failed}: exit {process.returncode}, output {output[-1500:]!r}; before {before}, "
        f"after the fault {after_fault}, after the rerun {loaded} ({rerun_output[-800:]!r}); "
        f"digest {digest} vs clean {reference}"
    )
