"""Dig-request answers: geoby's HTTP API against a naive in-memory STRtree, same requests.

Data (:mod:`dig_data`): synthetic buried networks of 100,000 (``--quick``),
1,000,000 and 10,000,000 segments at the same density, 3,000 per km2, so
that a 1 ha request meets about 45 segments within its 5 m answer buffer;
seven owners, a town's mix of utility types and hazard classes, accuracy
classes, 40 % of depths unknown, interest areas as 500 m cells. Each size
has its own database of geoby's private cluster, reused by later runs.

Workloads, against ``geoby serve`` (one uvicorn worker, as shipped) on each
network, the dig tables emptied first:

``answer latency``
    One client files random 1 ha squares (EPSG:25832) one at a time, each
    ``POST /api/dig-requests`` (validation, conflicts in PostGIS, rules,
    the answer stored, owners' rows, coordination, audit) followed by
    ``GET /api/dig-requests/{id}/answer?f=geojson``; every answer is checked
    (its features equal the asset count the filing reported). p50 and p95 of
    the pair; ``geoby_s`` is the p95. The first requests warm the server up
    and are not counted.
``answer throughput``
    ``wrk -t2 -c50`` for a fixed time on the answers of those requests.
``submission throughput``
    ``wrk -t2 -c50`` posting 200 different requests in turn (a Lua script).
``500 concurrent submissions``
    500 POSTs at once (httpx, one connection each, 10 min timeout); then the
    database must hold every request answered 201, answered, with the
    conflicts the answers counted, and nothing else: ``lost`` counts 201s
    whose request is missing. ``geoby_s`` is the wall time of the burst.

Peer: the naive baseline (:mod:`dig_baseline`), one Python process holding
every segment in a shapely STRtree, answering the same squares (candidates,
exact distance, clip, the database's rules through
``dig_coordination.rules.apply``, ``json.dumps`` of a FeatureCollection in
CRS84) without storing anything; ``peer_s`` is its p95 for the latency
workload and its mean seconds per answer for the throughput ones (one
process, one client: its answers/s, not a server's). Its read and build
times and peak memory are reported; it is skipped where it would need more
than 12 GB. Each geoby answer is compared with the baseline's: the same
segments.

``peak_mib`` is the geoby server process's peak resident memory.
``--pool-max N`` sets ``GEOBY_DATABASE_POOL_MAX`` for the server (default:
geoby's own).

Run: ``.venv/bin/python bench/bench_dig.py [--quick] [--pool-max N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dig_data as data  # noqa: E402
import dig_load as load  # noqa: E402
import ogc_servers as servers  # noqa: E402
from ogc_load import find_wrk  # noqa: E402

from dig_coordination import users  # noqa: E402
from layers.database import Database  # noqa: E402
from layers.settings import Settings  # noqa: E402

CONNECTIONS = 50
BURST = 500
POST_BODIES = 200
BASELINE_LIMIT_MIB = 12 * 1024
BASELINE_MIB_PER_M = 4000  # a first guess, replaced by what a smaller network measured
BASELINE_BASE_MIB = 150  # the interpreter and its imports
BASELINE = "naive STRtree (shapely, 1 process)"
GOAL_P95_S = 0.100


@dataclass
class Plan:
    rows: int
    requests: int
    warmup: int
    seconds: int


@dataclass
class Outcome:
    """Everything measured on one network."""

    rows: int
    load_s: float | None = None
    answered: list = field(default_factory=list)
    get: load.Loaded | None = None
    post: load.Loaded | None = None
    post_stored: load.Stored | None = None
    burst: load.Burst | None = None
    burst_stored: load.Stored | None = None
    peak_mib: float | None = None
    baseline: dict | None = None
    baseline_note: str = ""
    mismatched: int = 0


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q * len(ranked)) - 1))]


def contractor_token(settings: Settings) -> str:
    """A new token of the benchmark's contractor."""
    with Database(settings).connection("admin") as conn:
        _, token = users.add_user(conn, org="Bench Graveentreprise", role="contractor")
    return token


def measure(plan: Plan, wrk: str | None, pool_max: int | None, baseline_mib: float) -> Outcome:
    """Load (or reuse) the network, run the workloads on geoby, then the baseline."""
    out = Outcome(plan.rows)
    settings = data.bench_settings(plan.rows)
    out.load_s = data.ensure_network(settings, plan.rows)
    data.prewarm(settings)
    load.clear_requests(settings)
    token = contractor_token(settings)
    today = datetime.now(ZoneInfo(settings.dig.timezone)).date()
    start, end = today + timedelta(days=1), today + timedelta(days=15)
    squares = data.squares(plan.rows, plan.warmup + plan.requests, seed=17)
    timed = squares[plan.warmup :]
    posts = data.squares(plan.rows, POST_BODIES, seed=23)
    bursts = data.squares(plan.rows, BURST, seed=29)
    post_tag, burst_tag = "bench_dig wrk", "bench_dig burst"
    print(f"{plan.rows:,} segments: {plan.requests} requests one at a time ...", file=sys.stderr)
    with load.server(settings.database.name, pool_max) as running:
        load.latency(running.url, token,
                     [load.body(s, start, end, "bench_dig warm-up") for s in squares[: plan.warmup]])  # fmt: skip
        out.answered = load.latency(
            running.url, token, [load.body(s, start, end, "bench_dig latency") for s in timed]
        )
        _settled(settings, running)
        ids = [a.id for a in out.answered]
        if wrk:
            print(f"  wrk -c{CONNECTIONS} on answers, then on submissions ...", file=sys.stderr)
            out.get = load.wrk_get(wrk, running.url, token, ids, plan.seconds, CONNECTIONS)
            _settled(settings, running)
            bodies = [load.body(s, start, end, post_tag) for s in posts]
            out.post = load.wrk_post(wrk, running.url, token, bodies, plan.seconds, CONNECTIONS)
            _settled(settings, running)
        print(f"  {BURST} submissions at once ...", file=sys.stderr)
        out.burst = load.burst(running.url, token,
                               [load.body(s, start, end, burst_tag) for s in bursts])  # fmt: skip
        _settled(settings, running)
        out.peak_mib = running.peak_mib()
    # Counted once the server has stopped: nothing it accepted can still be on its way.
    out.burst_stored = load.stored(settings, burst_tag, out.burst.ids)
    if out.post:
        out.post_stored = load.stored(settings, post_tag, [])
    estimate = BASELINE_BASE_MIB + baseline_mib * plan.rows / 1_000_000
    if estimate > BASELINE_LIMIT_MIB:
        out.baseline_note = f"skipped: would need about {estimate / 1024:.0f} GB"
    else:
        print("  the naive baseline ...", file=sys.stderr)
        out.baseline = baseline(settings.database.name, timed)
        out.mismatched = sum(
            sorted(a.fids) != sorted(b)
            for a, b in zip(out.answered, out.baseline["fids"], strict=True)
        )
    return out


def _settled(settings: Settings, running: servers.Server) -> None:
    busy = load.settle(settings, running)
    if busy:
        print(f"note: {busy} queries still running after the barrier requests", file=sys.stderr)


def baseline(database: str, squares: list) -> dict:
    """Run :mod:`dig_baseline` on ``squares`` in its own process; its report."""
    servers.WORK.mkdir(parents=True, exist_ok=True)
    spec, result = servers.WORK / "dig-baseline-in.json", servers.WORK / "dig-baseline-out.json"
    spec.write_text(json.dumps({"squares": [list(s.bounds) for s in squares],
                                "work_types": load.WORK_TYPES}))  # fmt: skip
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dig_baseline.py"), database, str(spec), str(result)],
        check=True,
    )
    return json.loads(result.read_text())


# -- report -----------------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return float(f"{value:.4g}") if value else None


def records(outcomes: list[Outcome], pool_max: int | None) -> list[dict]:
    """The result records of every network."""
    rows = []
    pool = {"server_pool_max": pool_max} if pool_max else {}
    for o in outcomes:
        n = f"{o.rows:,} segments"
        total = [a.total_s for a in o.answered]
        base = o.baseline
        peer_p95 = percentile(base["seconds"], 0.95) if base else None
        peer_mean = statistics.mean(base["seconds"]) if base else None
        p95 = percentile(total, 0.95)
        latency = {
            "workload": f"answer latency p95 (POST + GET GeoJSON, 1 ha), {n}",
            "geoby_s": _round(p95),
            "peer": BASELINE,
            "peer_s": _round(peer_p95),
            "ratio": round(p95 / peer_p95, 3) if peer_p95 else None,
            "peak_mib": round(o.peak_mib) if o.peak_mib else None,
            "requests": len(total),
            "geoby_p50_ms": round(percentile(total, 0.5) * 1000, 1),
            "geoby_p95_ms": round(p95 * 1000, 1),
            "post_p50_ms": round(percentile([a.post_s for a in o.answered], 0.5) * 1000, 1),
            "get_p50_ms": round(percentile([a.get_s for a in o.answered], 0.5) * 1000, 1),
            "features_mean": round(statistics.mean(len(a.fids) for a in o.answered), 1),
            "answer_kb_mean": round(statistics.mean(a.kb for a in o.answered), 1),
            "goal_p95_under_s": GOAL_P95_S,
        }
        if o.load_s:
            latency["data_load_s"] = round(o.load_s, 1)
        if base:
            latency |= {
                "peer_p50_ms": round(percentile(base["seconds"], 0.5) * 1000, 2),
                "peer_p95_ms": round(peer_p95 * 1000, 2),
                "peer_read_s": round(base["read_s"], 1),
                "peer_build_s": round(base["build_s"], 1),
                "peer_peak_mib": round(base["peak_mib"]),
                "answers_differing_from_peer": o.mismatched,
            }
        else:
            latency["peer_note"] = o.baseline_note
        rows.append(latency | pool)
        for label, loaded, kept in (
            ("answer throughput (GET GeoJSON", o.get, None),
            ("submission throughput (POST", o.post, o.post_stored),
        ):
            if loaded is None:
                continue
            geoby_s = 1 / loaded.ok_rps if loaded.ok else None
            record = {
                "workload": f"{label}, {CONNECTIONS} clients), {n}",
                "geoby_s": _round(geoby_s),
                "peer": BASELINE + ", answers/s of one client",
                "peer_s": _round(peer_mean),
                "ratio": round(geoby_s / peer_mean, 3) if geoby_s and peer_mean else None,
                "peak_mib": round(o.peak_mib) if o.peak_mib else None,
                "geoby_rps": round(loaded.ok_rps, 1),
                "requests": loaded.requests,
                "non_2xx": loaded.non_2xx,
                "socket_errors": loaded.socket_errors,
                "timeouts": loaded.timeouts,
                "latency_p50_ms": loaded.p50_ms,
                "latency_p95_ms": loaded.p95_ms,
            }
            if kept is not None:
                record["stored"] = kept.rows
            if loaded.error:
                record["error"] = loaded.error
            rows.append(record | pool)
        b, kept = o.burst, o.burst_stored
        accepted = b.statuses.get("201", 0)
        rows.append({
            "workload": f"{BURST} concurrent submissions, {n}",
            "geoby_s": _round(b.wall_s),
            "peer": None, "peer_s": None, "ratio": None,
            "peak_mib": round(o.peak_mib) if o.peak_mib else None,
            "accepted": accepted,
            "refused": {k: v for k, v in sorted(b.statuses.items()) if k != "201"},
            "lost": len(kept.missing),
            "stored": kept.rows,
            "stored_answered": kept.answered,
            "conflicts_stored": kept.conflicts,
            "conflicts_in_answers": b.assets,
            "slowest_s": round(b.slowest_s, 2),
        } | pool)  # fmt: skip
    return rows


def report(outcomes: list[Outcome]) -> None:
    """Print the figures: latency against the baseline, throughput, the burst."""
    head = (f"{'segments':>11} {'geoby p50':>10} {'geoby p95':>10} {'POST p50':>9} {'GET p50':>8}"
            f" {'peer p50':>9} {'peer p95':>9} {'p95 vs peer':>12} {'features':>9}  goal p95<100ms")  # fmt: skip
    print("answer latency, one client, 1 ha requests (ms)\n" + head + "\n" + "-" * len(head))
    for o in outcomes:
        total = [a.total_s * 1000 for a in o.answered]
        base = [s * 1000 for s in o.baseline["seconds"]] if o.baseline else None
        p95 = percentile(total, 0.95)
        peer = f"{percentile(base, 0.5):>9.2f} {percentile(base, 0.95):>9.2f}" if base \
            else f"{'-':>9} {'-':>9}"  # fmt: skip
        ratio = f"{p95 / percentile(base, 0.95):>12.1f}" if base else f"{'-':>12}"
        print(f"{o.rows:>11,} {percentile(total, 0.5):>10.1f} {p95:>10.1f}"
              f" {percentile([a.post_s * 1000 for a in o.answered], 0.5):>9.1f}"
              f" {percentile([a.get_s * 1000 for a in o.answered], 0.5):>8.1f} {peer} {ratio}"
              f" {statistics.mean(len(a.fids) for a in o.answered):>9.1f}"
              f"  {'met' if p95 < GOAL_P95_S * 1000 else 'MISSED'}")  # fmt: skip
    print(
        f"\nthroughput, wrk -t2 -c{CONNECTIONS} (2xx per second; the peer: one process, one client)"
    )
    head = (f"{'segments':>11} {'workload':<12} {'2xx/s':>8} {'requests':>9} {'non-2xx':>8}"
            f" {'stored':>7} {'p50 ms':>8} {'p95 ms':>8} {'peer/s':>8}")  # fmt: skip
    print(head + "\n" + "-" * len(head))
    for o in outcomes:
        peer = f"{1 / statistics.mean(o.baseline['seconds']):>8.0f}" if o.baseline else f"{'-':>8}"
        for name, loaded, kept in (("GET answer", o.get, None), ("POST", o.post, o.post_stored)):
            if loaded is None:
                print(f"{o.rows:>11,} {name:<12} (wrk missing)")
                continue
            print(f"{o.rows:>11,} {name:<12} {loaded.ok_rps:>8.1f} {loaded.requests:>9} {loaded.non_2xx:>8}"
                  f" {kept.rows if kept else '-':>7} {loaded.p50_ms:>8.0f} {loaded.p95_ms:>8.0f}"
                  f" {peer}{'  ' + loaded.error if loaded.error else ''}")  # fmt: skip
    print(f"\n{BURST} concurrent submissions")
    head = (f"{'segments':>11} {'wall s':>7} {'slowest s':>9} {'accepted':>9} {'refused':<22}"
            f" {'stored':>7} {'answered':>8} {'lost':>5}  goal: none lost")  # fmt: skip
    print(head + "\n" + "-" * len(head))
    for o in outcomes:
        b, kept = o.burst, o.burst_stored
        refused = ", ".join(f"{v} x {k}" for k, v in sorted(b.statuses.items()) if k != "201")
        accepted = b.statuses.get("201", 0)
        extra = kept.rows - accepted
        print(f"{o.rows:>11,} {b.wall_s:>7.1f} {b.slowest_s:>9.1f} {accepted:>9} {refused or '-':<22}"
              f" {kept.rows:>7} {kept.answered:>8} {len(kept.missing):>5}"
              f"  {'met' if not kept.missing and accepted == BURST else 'MISSED'}"
              f"{f' ({extra} stored without a 201)' if extra else ''}")  # fmt: skip
    print("\nthe naive baseline")
    for o in outcomes:
        if o.baseline is None:
            print(f"{o.rows:>11,}  {o.baseline_note}")
            continue
        b = o.baseline
        print(f"{o.rows:>11,}  read {b['read_s']:.1f} s, STRtree {b['build_s']:.1f} s, peak "
              f"{b['peak_mib']:,.0f} MiB; answers differing from geoby's: {o.mismatched}"
              f" of {len(o.answered)}")  # fmt: skip
    for o in outcomes:
        if o.load_s:
            print(f"(loaded {o.rows:,} segments in {o.load_s:.0f} s this run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="100,000 segments, 100 requests, 5 s per wrk run")  # fmt: skip
    parser.add_argument("--pool-max", type=int, default=None,
                        help="GEOBY_DATABASE_POOL_MAX of the server (default: geoby's)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        plans = [Plan(100_000, requests=100, warmup=10, seconds=5)]
    else:
        plans = [Plan(1_000_000, 300, 20, 15), Plan(10_000_000, 300, 20, 15)]
    busy = os.getloadavg()[0]
    if busy > 0.5:
        print(f"note: load average {busy:.1f} before the run; other processes share the CPUs",
              file=sys.stderr)  # fmt: skip
    wrk = find_wrk()
    if wrk is None:
        print("note: wrk is missing; the throughput workloads are left out", file=sys.stderr)
    started = time.perf_counter()
    outcomes, per_m = [], BASELINE_MIB_PER_M
    for plan in plans:
        outcome = measure(plan, wrk, args.pool_max, per_m)
        if outcome.baseline:
            held = outcome.baseline["peak_mib"] - outcome.baseline["base_mib"]
            per_m = held / plan.rows * 1_000_000
        outcomes.append(outcome)
    report(outcomes)
    print(f"\n(run took {time.perf_counter() - started:.0f} s)")
    out = ROOT / "bench" / "results" / "dig.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records(outcomes, args.pool_max), indent=2) + "\n")


if __name__ == "__main__":
    main()
