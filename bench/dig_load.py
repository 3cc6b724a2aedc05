"""Requests for ``bench/bench_dig.py``: the dig-request server, one-at-a-time answers, wrk, bursts.

:func:`server` runs ``geoby serve`` (one uvicorn worker) on a benchmark
database, started and stopped as ``bench/ogc_servers.py`` does (uvicorn's
start-up line read from the pipe, then a probe). :func:`latency` files
requests one at a time and fetches each answer as GeoJSON; :func:`wrk_get`
and :func:`wrk_post` load the server with ``wrk -t2 -cN`` (a Lua script sets
the bearer token and cycles through the answers or request bodies);
:func:`burst` fires requests all at once with httpx; :func:`stored` counts
what reached the database.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import ogc_servers as servers
import shapely
from psycopg2 import sql

from layers.database import Database, connect
from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
GEOBY = servers.Kind("geoby-dig", "geoby")  # its log: var/bench/geoby-dig.log
PROBE = "/healthz"
EPSG_25832 = "http://www.opengis.net/def/crs/EPSG/0/25832"
WORK_TYPES = ["machine_excavation"]


@contextmanager
def server(database: str, pool_max: int | None = None) -> Iterator[servers.Server]:
    """``geoby serve`` on ``database`` of the private cluster (the default pool unless given)."""
    servers.WORK.mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    extra = {"GEOBY_DATABASE_POOL_MAX": str(pool_max)} if pool_max else {}
    env = servers._clean_env(
        GEOBY_DATABASE_NAME=database,
        GEOBY_DATABASE_CLUSTER_DIR=str(ROOT / "var" / "pg"),
        GEOBY_DATA_DIR=str(servers.WORK / "data"),
        **extra,
    )
    cmd = [str(ROOT / ".venv" / "bin" / "geoby"), "serve", "--host", "127.0.0.1",
           "--port", str(port)]  # fmt: skip
    with servers._run(GEOBY, cmd, env, port, PROBE, ROOT) as running:
        yield running


def body(square: shapely.Polygon, start: date, end: date, tag: str) -> dict:
    """A dig request for ``square`` (EPSG:25832) whose description is ``tag``."""
    ring = [[round(x, 3), round(y, 3)] for x, y in square.exterior.coords]
    return {
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "crs": EPSG_25832,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "work_types": WORK_TYPES,
        "description": tag,
        "contact": {"name": "Bench Entreprise", "phone": "+45 70 00 00 00"},
    }


@dataclass
class Answered:
    """One request filed and its answer fetched, one at a time."""

    id: str
    post_s: float
    get_s: float
    fids: list[int]
    kb: float

    @property
    def total_s(self) -> float:
        return self.post_s + self.get_s


def latency(base: str, token: str, bodies: list[dict]) -> list[Answered]:
    """File each request, then fetch its answer as GeoJSON; both checked.

    Raises SystemExit on a wrong status or an answer whose features differ
    from the asset count the filing reported.
    """
    done = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        for doc in bodies:
            started = time.perf_counter()
            filed = client.post("/api/dig-requests", json=doc)
            posted = time.perf_counter()
            if filed.status_code != 201:
                raise SystemExit(
                    f"POST /api/dig-requests: HTTP {filed.status_code} {filed.text[:300]}"
                )
            summary = filed.json()
            answer = client.get(
                f"/api/dig-requests/{summary['id']}/answer", params={"f": "geojson"}
            )
            got = time.perf_counter()
            if answer.status_code != 200:
                raise SystemExit(f"GET answer: HTTP {answer.status_code} {answer.text[:300]}")
            features = answer.json()["features"]
            if len(features) != summary["asset_count"]:
                raise SystemExit(f"answer {summary['id']} has {len(features)} features, the "
                                 f"filing reported {summary['asset_count']}")  # fmt: skip
            fids = [int(f["id"].rsplit(".", 1)[1]) for f in features]
            done.append(Answered(summary["id"], posted - started, got - posted, fids,
                                 len(answer.content) / 1024))  # fmt: skip
    return done


# -- wrk --------------------------------------------------------------------------------------

LUA = """
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
local method = "%(method)s"
local paths = {%(paths)s}
local bodies = {%(bodies)s}
local n = 0
function setup(thread) thread:set("start", n * 97) n = n + 1 end
function init(args) i = start or 0 end
function request()
  i = i %% #paths + 1
  return wrk.format(method, paths[i], nil, bodies[i])
end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format("WRK_RESULT %%d %%d %%d %%d %%d %%d %%d\\n", s.requests, s.duration,
    e.connect + e.read + e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(95)))
end
"""


@dataclass
class Loaded:
    """One wrk run: completed requests, their rate, and what went wrong."""

    requests: int = 0
    rps: float = 0.0
    non_2xx: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> int:
        """Requests answered 2xx."""
        return self.requests - self.non_2xx

    @property
    def ok_rps(self) -> float:
        """2xx answers per second."""
        return self.ok / self.duration_s if self.duration_s else 0.0


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _wrk(wrk: str, base: str, script: str, seconds: int, connections: int) -> Loaded:
    path = servers.WORK / "dig.lua"
    path.write_text(script)
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "-s", str(path),
         base],
        capture_output=True, text=True, timeout=seconds + 180,
    )  # fmt: skip
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT")), None)
    if line is None:
        return Loaded(error=f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    requests, duration_us, sockets, status, timeouts, p50, p95 = map(int, line.split()[1:])
    seconds = duration_us / 1e6
    return Loaded(requests, requests / seconds, status, sockets, timeouts, p50 / 1000,
                  p95 / 1000, seconds)  # fmt: skip


def wrk_get(
    wrk: str, base: str, token: str, ids: list[str], seconds: int, connections: int
) -> Loaded:
    """``GET /api/dig-requests/{id}/answer?f=geojson`` cycling through ``ids``."""
    paths = ", ".join(json.dumps(f"/api/dig-requests/{i}/answer?f=geojson") for i in ids)
    script = LUA % {"token": token, "method": "GET", "paths": paths, "bodies": ""}
    return _wrk(wrk, base, script, seconds, connections)


def wrk_post(
    wrk: str, base: str, token: str, bodies: list[dict], seconds: int, connections: int
) -> Loaded:
    """``POST /api/dig-requests`` cycling through ``bodies``."""
    paths = ", ".join(['"/api/dig-requests"'] * len(bodies))
    texts = ", ".join(_lua_string(json.dumps(b)) for b in bodies)
    script = LUA % {"token": token, "method": "POST", "paths": paths, "bodies": texts}
    return _wrk(wrk, base, script, seconds, connections)


# -- bursts and what was stored ---------------------------------------------------------------


@dataclass
class Burst:
    """Requests fired all at once: the answers' statuses, the ids of the accepted, the wall time."""

    statuses: Counter = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)
    assets: int = 0
    wall_s: float = 0.0
    slowest_s: float = 0.0


def burst(base: str, token: str, bodies: list[dict], timeout_s: float = 600) -> Burst:
    """POST every body at once, each on its own connection; wait for every answer."""

    async def one(client: httpx.AsyncClient, doc: dict) -> tuple[str, dict | None, float]:
        started = time.perf_counter()
        try:
            response = await client.post("/api/dig-requests", json=doc)
        except httpx.HTTPError as exc:
            return type(exc).__name__, None, time.perf_counter() - started
        took = time.perf_counter() - started
        return (
            str(response.status_code),
            response.json() if response.status_code == 201 else None,
            took,
        )

    async def run() -> Burst:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout_s,
                                     limits=limits) as client:  # fmt: skip
            started = time.perf_counter()
            results = await asyncio.gather(*(one(client, doc) for doc in bodies))
            wall = time.perf_counter() - started
        out = Burst(wall_s=wall, slowest_s=max(t for _, _, t in results))
        for status, doc, _ in results:
            out.statuses[status] += 1
            if doc is not None:
                out.ids.append(doc["id"])
                out.assets += doc["asset_count"]
        return out

    return asyncio.run(run())


@dataclass
class Stored:
    """What the database holds for a set of requests."""

    rows: int
    answered: int
    conflicts: int
    missing: list[str]


def stored(settings: Settings, tag: str, ids: list[str]) -> Stored:
    """The requests described ``tag``: how many, how many answered, their conflicts; and
    which of ``ids`` are not there."""
    conn = connect(Database(settings).dsn("owner"))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'answered'),"
            " (SELECT count(*) FROM restricted.dig_conflicts c JOIN geoby.dig_requests r"
            "  ON r.id = c.request_id WHERE r.description = %(tag)s)"
            " FROM geoby.dig_requests WHERE description = %(tag)s",
            {"tag": tag},
        )
        rows, answered, conflicts = cur.fetchone()
        cur.execute(
            "SELECT i FROM unnest(%s::uuid[]) i WHERE NOT EXISTS"
            " (SELECT FROM geoby.dig_requests r WHERE r.id = i AND r.description = %s)",
            (ids, tag),
        )
        missing = [str(row[0]) for row in cur.fetchall()]
    conn.close()
    return Stored(rows, answered, conflicts, missing)


def settle(settings: Settings, running: servers.Server, limit_s: float = 300) -> int:
    """Let the requests a load run left behind finish before the next run starts.

    A barrier request goes through the server's queue, then the database must
    show no query still running; while it does, another barrier follows (each
    waits behind the server's remaining work, so this is no busy loop).
    Returns the queries still running when ``limit_s`` ran out (0: settled).
    """
    deadline = time.monotonic() + limit_s
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    try:
        while True:
            with urllib.request.urlopen(running.url + PROBE, timeout=limit_s) as response:
                response.read()
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                    " AND state NOT IN ('idle', 'disabled') AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()",
                    (settings.database.name,),
                )
                busy = cur.fetchone()[0]
            if busy == 0 or time.monotonic() > deadline:
                return busy
    finally:
        conn.close()


def clear_requests(settings: Settings) -> None:
    """Empty the dig tables of the benchmark database, so that every run starts alike."""
    conn = connect(Database(settings).dsn("owner"))
    with conn, conn.cursor() as cur:
        tables = ("geoby.dig_requests", "geoby.outbox", "geoby.audit_log")
        cur.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in tables)
            )
        )
    conn.close()
