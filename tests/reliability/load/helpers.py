"""Drive locust against a running geoby API and check what it accepted.

:func:`build_config` asks the API and the database what to request (tiles and
items of open layers, bins, tokens) and prepares valid dig-request bodies in
the sample town; :func:`start_locust` runs ``locustfile.py`` as its own process
(never gevent inside pytest); :func:`read_stats` turns locust's CSV files into
throughput, percentiles and errors by status per request type;
:func:`check_writes` compares what the clients were told was accepted with the
database: every accepted dig request and reading stored exactly once, every
dig request whole (its per-owner rows, conflicts and audit entry).
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from shapely.geometry import box, mapping

from layers.crs import reproject
from tests.reliability.cluster import ROOT, PrivateTown

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
OPEN_LAYERS = ("water_roads", "energy_buildings", "waste_bins")
TYPES = ("tile", "items", "item", "layers", "reading", "dig")
# Town centre (EPSG:25832) with cables and pipes of six owners (tests/dig).
CENTRE_E, CENTRE_N = 722_175, 6_172_163
RETRYABLE = "status 503"


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def _bbox(client: httpx.Client, collection: str) -> list[float]:
    response = client.get(f"/ogc/collections/{collection}?f=json")
    assert response.status_code == 200, response.text[:300]
    return response.json()["extent"]["spatial"]["bbox"][0]


def build_config(town: PrivateTown, url: str, directory: Path, *, run: str,
                 timeout_s: float = 60.0, seed: int = 42) -> dict[str, Any]:  # fmt: skip
    """Write the locust config for one run to ``directory/config.json`` and return it."""
    rng = random.Random(seed)
    tiles, bboxes, items = [], [], []
    with httpx.Client(base_url=url, timeout=30) as client:
        for collection in OPEN_LAYERS:
            west, south, east, north = _bbox(client, collection)
            for z in (14, 15, 16):
                x0, y0 = _tile(west, north, z)
                x1, y1 = _tile(east, south, z)
                cells = [
                    (collection, z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)
                ]
                tiles += rng.sample(cells, min(len(cells), 40))
            for _ in range(30):
                w, s = rng.uniform(west, east), rng.uniform(south, north)
                bboxes.append((collection, [w, s, min(w + 0.004, east), min(s + 0.003, north)]))
            page = client.get(f"/ogc/collections/{collection}/items?limit=50&f=json")
            assert page.status_code == 200, page.text[:300]
            items += [(collection, f["id"]) for f in page.json()["features"]]
    assert tiles and items, "no tiles or items of open layers to request"
    start = date.today() + timedelta(days=2)
    digs = []
    for _ in range(100):
        e = CENTRE_E + rng.uniform(-300, 300)
        n = CENTRE_N + rng.uniform(-300, 300)
        side = rng.uniform(15, 40)
        digs.append({
            "geometry": mapping(reproject(box(e, n, e + side, n + side), 25832, 0)),
            "kind": "normal",
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=5)).isoformat(),
            "work_types": ["machine_excavation"],
            "depth_m": 1.0,
            "contact": {"name": "Load test", "phone": "+45 11 22 33 44"},
        })  # fmt: skip
    # Readings far from the sample's own period (2023), unique per run: base minutes apart.
    base = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=int(time.time()) % 1_000_000)
    config = {
        "run": run, "tiles": tiles, "bboxes": bboxes, "items": items, "digs": digs,
        "bins": town.bins, "tokens": town.tokens, "reading_base": base.isoformat(),
        "accepted": str(directory / "accepted.jsonl"), "timeout_s": timeout_s,
    }  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    Path(config["accepted"]).touch()
    (directory / "config.json").write_text(json.dumps(config))
    return config


def start_locust(url: str, directory: Path, *, users: int, duration_s: int,
                 spawn_rate: float | None = None) -> subprocess.Popen:  # fmt: skip
    """Start headless locust on ``directory/config.json``; its CSVs go to ``directory``."""
    rate = spawn_rate or max(users / 3, 1)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "-u", str(users), "-r", f"{rate:g}", "-t", f"{duration_s}s", "--host", url,
           "--csv", str(directory / "locust"), "--only-summary", "--stop-timeout", "10",
           "--loglevel", "WARNING"]  # fmt: skip
    env = {"GEOBY_LOAD_CONFIG": str(directory / "config.json"),
           "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}  # fmt: skip
    log = (directory / "locust.log").open("w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_locust(process: subprocess.Popen, directory: Path, timeout_s: float) -> None:
    """Wait for locust to finish; its exit status is 1 whenever a request failed, so
    only a missing stats file or a hang fails here."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"locust did not finish within {timeout_s} s") from None
    stats = directory / "locust_stats.csv"
    log = (directory / "locust.log").read_text(errors="replace")[-3000:]
    assert stats.exists(), f"locust wrote no statistics (exit {process.returncode}): {log}"


@dataclass
class LoadStats:
    """What locust measured: per request type and in total."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    by_type: dict[str, dict[str, float]]
    errors: dict[str, int]
    errors_by_type: dict[str, dict[str, int]]

    @property
    def retryable(self) -> int:
        """503 answers with Retry-After: the client is told to come back."""
        return self.errors.get(RETRYABLE, 0)

    @property
    def non_retryable(self) -> int:
        return sum(n for error, n in self.errors.items() if error != RETRYABLE)


def _error_name(text: str) -> str:
    # locust writes "CatchResponseError('status 503')"
    match = re.search(r"\('(.*)'\)", text)
    return match.group(1) if match else text


def read_stats(directory: Path) -> LoadStats:
    """Parse ``locust_stats.csv`` and ``locust_failures.csv``."""
    by_type: dict[str, dict[str, float]] = {}
    total: dict[str, float] = {}
    with (directory / "locust_stats.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            figures = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1), "p50_ms": float(row["50%"] or 0),
                "p95_ms": float(row["95%"] or 0), "p99_ms": float(row["99%"] or 0),
                "max_ms": round(float(row["Max Response Time"] or 0)),
            }  # fmt: skip
            if row["Name"] == "Aggregated":
                total = figures
            else:
                by_type[row["Name"]] = figures
    errors: dict[str, int] = {}
    errors_by_type: dict[str, dict[str, int]] = {}
    failures = directory / "locust_failures.csv"
    if failures.exists():
        with failures.open(newline="") as f:
            for row in csv.DictReader(f):
                name, count = _error_name(row["Error"]), int(row["Occurrences"])
                errors[name] = errors.get(name, 0) + count
                per = errors_by_type.setdefault(row["Name"], {})
                per[name] = per.get(name, 0) + count
    assert total, "locust's statistics have no Aggregated row"
    return LoadStats(
        requests=int(total["requests"]), failures=int(total["failures"]), rps=total["rps"],
        p50_ms=total["p50_ms"], p95_ms=total["p95_ms"], p99_ms=total["p99_ms"],
        max_ms=total["max_ms"], by_type=by_type, errors=errors, errors_by_type=errors_by_type,
    )  # fmt: skip


@dataclass
class WriteCheck:
    """Accepted writes against the database."""

    digs_accepted: int = 0
    readings_accepted: int = 0
    digs_refused: int = 0
    readings_refused: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    refused_but_stored: int = 0  # in doubt: the commit was done, the answer never arrived

    @property
    def problems(self) -> int:
        return len(self.lost) + len(self.duplicated) + len(self.incomplete)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_writes(town: PrivateTown, config: dict[str, Any]) -> WriteCheck:
    """Every accepted write in the database exactly once; every dig request whole."""
    lines = _lines(Path(config["accepted"]))
    result = WriteCheck()
    result.readings_accepted = sum(1 for x in lines if x["kind"] == "reading")
    result.readings_refused = sum(1 for x in lines if x["kind"] == "reading_refused")
    result.digs_accepted = sum(1 for x in lines if x["kind"] == "dig")
    result.digs_refused = sum(1 for x in lines if x["kind"] == "dig_refused")
    _check_readings(town, config, lines, result)
    _check_digs(town, config, lines, result)
    return result


def _check_readings(town: PrivateTown, config: dict, lines: list[dict], result: WriteCheck) -> None:
    base = datetime.fromisoformat(config["reading_base"])
    rows = town.query(
        "SELECT bin_id, time, count(*) FROM data.waste_readings"
        " WHERE time >= %s AND time < %s GROUP BY bin_id, time",
        (base, base + timedelta(hours=12)),
    ) if _exists(town, "data.waste_readings") else []  # fmt: skip
    stored = {(b, t): n for b, t, n in rows}
    for x in lines:
        key = (x["bin"], datetime.fromisoformat(x["time"])) if "bin" in x else None
        if x["kind"] == "reading":
            n = stored.get(key, 0)
            if n == 0:
                result.lost.append(f"reading {key}")
            elif n > 1:
                result.duplicated.append(f"reading {key} x{n}")
            if x.get("stored") != 1:
                result.duplicated.append(f"reading {key}: accepted with stored={x.get('stored')}")
        elif x["kind"] == "reading_refused" and key in stored:
            result.refused_but_stored += 1


def _check_digs(town: PrivateTown, config: dict, lines: list[dict], result: WriteCheck) -> None:
    rows = town.query(
        "SELECT r.id::text, r.description, r.status,"
        " (SELECT count(*) FROM restricted.dig_conflicts c WHERE c.request_id = r.id),"
        " (SELECT coalesce(sum(o.asset_count), 0) FROM geoby.dig_owner_responses o"
        "   WHERE o.request_id = r.id),"
        " (SELECT count(DISTINCT c.owner) FROM restricted.dig_conflicts c"
        "   WHERE c.request_id = r.id AND NOT EXISTS (SELECT FROM geoby.dig_owner_responses o"
        "   WHERE o.request_id = r.id AND o.owner = c.owner)),"
        " (SELECT count(*) FROM geoby.audit_log a WHERE a.action = 'dig_request.filed'"
        "   AND a.object_id = r.id::text),"
        " (SELECT count(*) FROM geoby.dig_owner_responses o WHERE o.request_id = r.id"
        "   AND o.status = 'pending')"
        " FROM geoby.dig_requests r WHERE r.description LIKE %s",
        (config["run"] + " dig %",),
    )
    by_description: dict[str, list[tuple]] = {}
    for row in rows:
        by_description.setdefault(row[1], []).append(row)
        rid, _, status, conflicts, answered, unanswered_owners, audited, pending = row
        # One transaction writes the request, its conflicts, one response row per owner,
        # the final status and the audit entry: a half-written one misses some of them.
        whole = (status == "answered" and pending == 0) or (status == "pending" and pending > 0)
        if not whole or answered != conflicts or unanswered_owners or audited != 1:
            result.incomplete.append(
                f"dig {rid}: status {status}, {conflicts} conflicts, {answered} answered, "
                f"{unanswered_owners} owners without a response row, {audited} audit rows"
            )
    for x in lines:
        found = by_description.get(x.get("description", ""), [])
        if x["kind"] == "dig":
            if not any(r[0] == x["id"] for r in found):
                result.lost.append(f"dig {x['id']} ({x['description']})")
            if len(found) > 1:
                result.duplicated.append(f"dig {x['description']} x{len(found)}")
        elif x["kind"] == "dig_refused" and found:
            result.refused_but_stored += 1


def _exists(town: PrivateTown, table: str) -> bool:
    return bool(town.query("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0])


def summary(stats: LoadStats, writes: WriteCheck) -> dict[str, Any]:
    """The figures a record and a failure message carry."""
    return {
        "rps": stats.rps, "p50_ms": stats.p50_ms, "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms, "max_ms": stats.max_ms, "errors": stats.errors,
        "retryable_503": stats.retryable, "non_retryable_errors": stats.non_retryable,
        "by_type": stats.by_type, "digs_accepted": writes.digs_accepted,
        "readings_accepted": writes.readings_accepted, "digs_refused": writes.digs_refused,
        "readings_refused": writes.readings_refused, "lost": len(writes.lost),
        "duplicated": len(writes.duplicated), "incomplete": len(writes.incomplete),
        "refused_but_stored": writes.refused_but_stored,
    }  # fmt: skip
