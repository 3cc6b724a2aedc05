"""Requests for ``bench/bench_ogc.py``: the check of a sample and the timed load.

A :class:`Case` is one request independent of the server; each server spells
it as a URL (:class:`ogc_servers.Kind`). :func:`warm_and_check` makes a sample
one at a time and rejects wrong answers; :func:`load_wrk` (or
:func:`load_httpx` where wrk is missing) measures requests/s with 8
concurrent connections.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import mapbox_vector_tile
import ogc_servers as servers


@dataclass
class Case:
    """One request of a workload, independent of the server that answers it."""

    kind: str  # items, item, tile
    params: dict = field(default_factory=dict)
    fid: int = 0
    tile: tuple[int, int, int] = (0, 0, 0)
    expect: int | None = None  # features (items), or None for tiles
    box: tuple[float, float, float, float] | None = None

    def path(self, server: servers.Kind, table: str) -> str:
        """The request as ``server`` spells it, for collection ``table``."""
        if self.kind == "items":
            return server.items(table, self.params)
        if self.kind == "item":
            return server.item(table, self.fid)
        return server.tile(table, *self.tile)


@dataclass
class Measure:
    """One server on one workload: throughput, sequential p50, answer sizes, or an error."""

    rps: float | None = None
    p50_ms: float | None = None
    method: str = ""
    error: str | None = None
    kb: float = 0.0
    features: float = 0.0
    peak_mib: float | None = None
    note: str = ""


def check(case: Case, response: httpx.Response, truth: int | None) -> tuple[str | None, int]:
    """What is wrong with an answer (None when right), and how many features it holds."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}", 0
    if case.kind == "tile":
        layers = mapbox_vector_tile.decode(response.content) if response.content else {}
        count = sum(len(layer["features"]) for layer in layers.values())
        return (None if count else "empty tile"), count
    try:
        doc = response.json()
    except ValueError:
        return f"not JSON ({response.headers.get('content-type')})", 0
    if case.kind == "item":
        ok = doc.get("type") == "Feature" and str(doc.get("id")) == str(case.fid)
        return (None if ok else f"wrong feature {doc.get('id')!r}"), 1
    count = len(doc.get("features") or [])
    expect = case.expect if truth is None else min(truth, 1000)
    if abs(count - expect) > (0 if truth is None else max(5, 0.15 * expect)):
        return f"{count} features, expected {expect}", count
    return None, count


def warm_and_check(
    base: str, cases: list[Case], paths: list[str], truths: list, budget_s: float, samples: int
) -> Measure:
    """Make a sample of requests one at a time: the warm-up, the check and the p50 latency.

    Every answer is checked; the first one's time is left out of the median
    (it may pay for a cold cache or a catalog refresh) unless it is the only one.
    """
    times, sizes, counts, deviations = [], [], [], []
    deadline = time.perf_counter() + budget_s
    with httpx.Client(base_url=base, timeout=300) as client:
        for case, path, truth in zip(cases[:samples], paths, truths, strict=False):
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
            error, count = check(case, response, truth)
            if error:
                return Measure(error=f"{error} <- {base}{path}")
            sizes.append(len(response.content))
            counts.append(count)
            if truth is not None:
                deviations.append(count - min(truth, 1000))
            if time.perf_counter() > deadline:
                break
    note = ""
    if deviations and any(deviations):
        note = f"bbox hits vs PostGIS: {min(deviations):+d}..{max(deviations):+d}"
    return Measure(
        p50_ms=statistics.median(times[1:] or times) * 1000,
        kb=statistics.mean(sizes) / 1024,
        features=statistics.mean(counts),
        note=note,
    )


@functools.cache
def find_wrk() -> str | None:
    """wrk on PATH, installed from the OS packages where missing and root; else None (httpx)."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("installing wrk for the load runs ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return shutil.which("wrk")


LUA = """
local paths = {%s}
local n = 0
function setup(thread) thread:set("start", n * 97) n = n + 1 end
function init(args) i = start or 0 end
function request() i = i %% #paths + 1 return wrk.format(nil, paths[i]) end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format("WRK_RESULT %%d %%d %%d %%d %%d\\n", s.requests, s.duration,
    e.connect + e.read + e.write, e.status, e.timeout))
end
"""


def load_wrk(wrk: str, base: str, paths: list[str], seconds: int) -> tuple[float, str | None]:
    """Requests/s of ``wrk -t2 -c8`` cycling through ``paths``; and an error, if any."""
    script = servers.WORK / "paths.lua"
    script.write_text(LUA % ", ".join(json.dumps(p) for p in paths))
    out = subprocess.run(
        [wrk, "-t2", "-c8", f"-d{seconds}s", "--timeout", "30s", "-s", str(script), base],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT")), None)
    if line is None:
        return 0.0, f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}"
    requests, duration_us, socket_errors, status_errors, timeouts = map(int, line.split()[1:])
    error = None
    if socket_errors or status_errors or timeouts:
        error = f"wrk: {status_errors} non-2xx, {socket_errors} socket errors, {timeouts} timeouts"
    return requests / (duration_us / 1e6), error


def load_httpx(base: str, paths: list[str], seconds: int) -> tuple[float, str | None]:
    """Requests/s of 8 concurrent httpx workers cycling through ``paths``."""

    async def run() -> tuple[float, str | None]:
        counter, done, bad = itertools.count(), [0], [0]
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            started = time.perf_counter()
            deadline = started + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    try:
                        response = await client.get(paths[next(counter) % len(paths)])
                        ok = response.status_code < 300
                    except httpx.HTTPError:
                        ok = False
                    done[0] += ok
                    bad[0] += not ok

            await asyncio.gather(*(worker() for _ in range(8)))
            elapsed = time.perf_counter() - started
        return done[0] / elapsed, (f"{bad[0]} failed requests" if bad[0] else None)

    return asyncio.run(run())
