"""OGC API benchmarks: geoby against tipg and stock pygeoapi on the same tables.

Data: synthetic utility LineStrings in EPSG:25832 around E720000 N6170000
(2-10 vertices, 5-50 m long, seven attributes, GiST index, ``fid`` primary
key), 100,000 rows on a 20 km square and (full run only) 1,000,000 rows on a
63 km square, so that both have the same density. They live in the dedicated
database ``geoby_bench_ogc`` of geoby's private cluster, registered in its
catalog, and are reused by later runs.

Workloads (each server in turn, one uvicorn worker, 8 concurrent clients):
``items?limit=1000``; ``items?bbox=`` random 0.02 degree CRS84 boxes with
``limit=1000`` (hundreds of hits); ``items?limit=1000&offset=`` about 90 % of
the rows; ``items/{random fid}``; WebMercatorQuad vector tiles at zoom 14
inside the data and at zoom 10 covering it. Peers: tipg 1.6 (defaults) and
pygeoapi 0.21's ``PostgreSQL`` and ``MVT-postgresql`` providers.

A sample of each workload's requests is first made one at a time (the warm-up)
and checked: HTTP 200, the expected number of features (1000; for bbox the
PostGIS count of lines intersecting the box, within 15 %; the requested id;
a non-empty tile). A server that fails the check gets no figure. Then ``wrk
-t2 -c8`` (or an httpx loop where wrk is missing) cycles through about 200
URLs for a fixed time. Requests/s is the result; ``bench/results/ogc.json``
stores seconds per request (1 / throughput) so that ``ratio`` is geoby's time
over the peer's (below 1: geoby is faster). ``peak_mib`` is the geoby server
process's peak resident memory so far.

Run: ``.venv/bin/python bench/bench_ogc.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import morecantile
from psycopg2 import sql
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ogc_load as load  # noqa: E402
import ogc_servers as servers  # noqa: E402
from ogc_load import Case, Measure  # noqa: E402

from layers import catalog  # noqa: E402
from layers.database import Database, cluster_for, connect  # noqa: E402
from layers.errors import MigrationError, NotFound  # noqa: E402
from layers.migrate import migrate  # noqa: E402
from layers.settings import DatabaseSettings, Settings  # noqa: E402

BENCH_DB = "geoby_bench_ogc"
LAYOUT = "geoby bench_ogc lines v1"
CENTRE = (720_000.0, 6_170_000.0)
DENSITY_PER_KM2 = 250  # 100,000 lines on a 20 km square
URLS = 200
BOX_DEG = 0.02
WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")


# -- data -------------------------------------------------------------------------------------


def bench_settings() -> Settings:
    """Settings of the benchmark database, migrated (rebuilt if a migration changed)."""
    settings = Settings(database=DatabaseSettings(name=BENCH_DB, cluster_dir=ROOT / "var" / "pg"))
    if settings.database.url is None:
        cluster_for(settings).up()
    try:
        migrate(settings)
    except MigrationError as exc:
        print(f"rebuilding {BENCH_DB}: {exc}", file=sys.stderr)
        conn = connect(cluster_for(settings).superuser_dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        conn.close()
        migrate(settings)
    return settings


def side_m(rows: int) -> float:
    """Side of the square holding ``rows`` lines at the benchmark density."""
    return (rows / DENSITY_PER_KM2) ** 0.5 * 1000


GENERATE = """
INSERT INTO {table} (kind, diameter_mm, material, owner, depth_m, installed, status, geom,
                     _source, _record)
SELECT (ARRAY['gas','water','power','telecom','heat'])[1 + mod(i, 5)],
       (ARRAY[32, 50, 63, 90, 110, 160, 200, 315, 400, 630])[1 + mod(i * 7, 10)],
       (ARRAY['PE','PVC','steel','cast iron','copper','fibre'])[1 + mod(i * 3, 6)],
       (ARRAY['Kystby Forsyning','NordEl','Fiberby','Varmevaerket'])[1 + mod(i * 11, 4)],
       CASE WHEN mod(i, 9) = 0 THEN NULL ELSE round((0.4 + random() * 1.8)::numeric, 2) END,
       DATE '1950-01-01' + mod(i * 13, 27000),
       (ARRAY['in use','in use','in use','planned','abandoned'])[1 + mod(i * 17, 5)],
       ST_SetSRID(ST_MakeLine(ARRAY(
           SELECT ST_MakePoint(x0 + k * dx + (random() - 0.5) * 2, y0 + k * dy + (random() - 0.5) * 2)
           FROM generate_series(0, nv - 1) k)), 25832),
       'bench_ogc', i::text
FROM (SELECT i, x0, y0, nv, len / (nv - 1) * cos(a) AS dx, len / (nv - 1) * sin(a) AS dy
      FROM (SELECT i, %(x)s + (random() - 0.5) * %(side)s AS x0,
                   %(y)s + (random() - 0.5) * %(side)s AS y0, 2 + floor(random() * 9)::int AS nv,
                   5 + random() * 45 AS len, random() * 2 * pi() AS a
            FROM generate_series(1, %(n)s) i OFFSET 0) r OFFSET 0) g
"""


def ensure_table(settings: Settings, table: str, rows: int) -> None:
    """Create, fill, index and register ``data.<table>`` unless it is there already."""
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    ident, tag = sql.Identifier("data", table), f"{LAYOUT}, {rows} rows"
    with conn.cursor() as cur:
        cur.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f"data.{table}",))
        if cur.fetchone()[0] == tag and _registered(conn, table, rows):
            conn.close()
            return
        print(f"generating data.{table} ({rows:,} lines) ...", file=sys.stderr)
        started = time.perf_counter()
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (fid bigserial PRIMARY KEY, kind text, diameter_mm integer,"
                " material text, owner text, depth_m double precision, installed date, status text,"
                " geom geometry(LineString, 25832), _source text NOT NULL, _record text NOT NULL,"
                " _loaded_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        cur.execute("SELECT setseed(0.25)")
        cur.execute(
            sql.SQL(GENERATE).format(table=ident),
            {"x": CENTRE[0], "y": CENTRE[1], "side": side_m(rows), "n": rows},
        )
        cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(ident))
        cur.execute(sql.SQL("CREATE INDEX ON {} (_source)").format(ident))
        cur.execute(sql.SQL("GRANT SELECT ON {} TO geoby_read").format(ident))
        cur.execute(sql.SQL("VACUUM ANALYZE {}").format(ident))
        cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(tag)))
    layer = catalog.Layer(
        id=table,
        title=f"Benchmark lines ({rows:,})",
        theme="utilities",
        kind="vector",
        table_schema="data",
        table_name=table,
        geometry_type="LineString",
        licence="CC0-1.0",
        keywords=["bench"],
    )
    catalog.register(conn, layer)
    catalog.refresh_statistics(conn, table)
    conn.close()
    print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _registered(conn, table: str, rows: int) -> bool:
    try:
        layer = catalog.get(conn, table)
    except NotFound:
        return False
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("data", table)))
        return cur.fetchone()[0] == rows == layer.row_count


def prewarm(settings: Settings, table: str) -> None:
    """Read the table once so that the first server measured does not pay for a cold cache."""
    conn = connect(Database(settings).dsn("owner"))
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT sum(ST_NPoints(geom)) FROM {}").format(sql.Identifier("data", table))
        )
    conn.close()


# -- workloads --------------------------------------------------------------------------------


@dataclass
class Workload:
    key: str
    label: str
    cases: list[Case]


def workloads(rows: int, keys: list[str], seed: int = 11) -> list[Workload]:
    """The requests of each workload for a table of ``rows`` lines."""
    rng = random.Random(seed)
    half = side_m(rows) / 2
    to_lonlat = Transformer.from_crs(25832, 4326, always_xy=True)

    def point(margin: float) -> tuple[float, float]:
        x = CENTRE[0] + rng.uniform(-half + margin, half - margin)
        y = CENTRE[1] + rng.uniform(-half + margin, half - margin)
        return to_lonlat.transform(x, y)

    made: dict[str, Workload] = {}
    made["items"] = Workload(
        "items", "items?limit=1000", [Case("items", {"limit": 1000}, expect=1000)]
    )
    boxes = []
    for _ in range(URLS):
        lon, lat = point(2000)
        box = (lon - BOX_DEG / 2, lat - BOX_DEG / 2, lon + BOX_DEG / 2, lat + BOX_DEG / 2)
        bbox = ",".join(f"{v:.6f}" for v in box)
        boxes.append(Case("items", {"bbox": bbox, "limit": 1000}, box=box))
    made["bbox"] = Workload("bbox", f"items?bbox=({BOX_DEG} deg)&limit=1000", boxes)
    offsets = [
        Case(
            "items",
            {"limit": 1000, "offset": rng.randint(int(rows * 0.88), int(rows * 0.92))},
            expect=1000,
        )
        for _ in range(URLS)
    ]
    made["offset"] = Workload("offset", "items?limit=1000&offset=~90%", offsets)
    made["item"] = Workload(
        "item", "items/{fid}", [Case("item", fid=rng.randint(1, rows)) for _ in range(URLS)]
    )
    z14 = {WEB_MERCATOR.tile(*point(1000), 14) for _ in range(URLS)}
    made["tile14"] = Workload(
        "tile14", "MVT tile z14", [Case("tile", tile=(t.z, t.x, t.y)) for t in sorted(z14)]
    )
    # Every z10 tile that holds part of the square (the square is not aligned with lon/lat).
    z10 = {WEB_MERCATOR.tile(*point(500), 10) for _ in range(20 * URLS)}
    made["tile10"] = Workload(
        "tile10", "MVT tile z10", [Case("tile", tile=(t.z, t.x, t.y)) for t in sorted(z10)]
    )
    return [made[key] for key in keys]


def bbox_truth(settings: Settings, table: str, box: tuple[float, float, float, float]) -> int:
    """Lines that really intersect a CRS84 box (its edges densified before reprojection)."""
    conn = connect(Database(settings).dsn("owner"))
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE ST_Intersects(geom, ST_Transform(ST_Segmentize("
                "ST_MakeEnvelope(%s, %s, %s, %s, 4326), 0.0002), 25832))"
            ).format(sql.Identifier("data", table)),
            box,
        )
        count = cur.fetchone()[0]
    conn.close()
    return count


def settle(settings: Settings, running: list[servers.Server], limit_s: float = 180) -> None:
    """Let the requests a load run left behind finish before the next run starts.

    Each server gets one barrier request through the same queue as the load
    (its probe path); when it answers, what was queued before it is done. Then
    the benchmark database must show no query still running.
    """
    for server in running:
        with urllib.request.urlopen(server.url + server.probe, timeout=limit_s) as response:
            response.read()
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            (BENCH_DB,),
        )
        busy = cur.fetchone()[0]
    conn.close()
    if busy:
        print(f"note: {busy} queries still running in {BENCH_DB} after the barrier requests")


def measure(
    server: servers.Server,
    running: list[servers.Server],
    settings: Settings,
    table: str,
    workload: Workload,
    seconds: int,
    quick: bool,
    truths: dict,
) -> Measure:
    """Check, then load one server with one workload."""
    paths = [case.path(server.kind, table) for case in workload.cases]
    samples = 4 if quick else 10
    for case in workload.cases[:samples]:
        if case.box is not None and case.box not in truths:
            truths[case.box] = bbox_truth(settings, table, case.box)
    sample_truths = [truths.get(case.box) for case in workload.cases[:samples]]
    settle(settings, running)
    result = load.warm_and_check(
        server.url,
        workload.cases,
        paths,
        sample_truths,
        budget_s=6 if quick else 40,
        samples=samples,
    )
    if result.error is not None:
        result.peak_mib = server.peak_mib()
        return result
    # Long enough for each of the 8 connections to finish several requests, else one at a time.
    needed = math.ceil(result.p50_ms / 1000 * 12)
    if needed > (10 if quick else 40):
        result.rps, result.method = 1000 / result.p50_ms, "one at a time (slow)"
    else:
        duration = max(seconds, needed)
        cycle = [paths[i % len(paths)] for i in range(URLS)]
        wrk = load.find_wrk()
        if wrk:
            result.rps, result.error = load.load_wrk(wrk, server.url, cycle, duration)
        else:
            result.rps, result.error = load.load_httpx(server.url, cycle, duration)
        result.method = f"{'wrk -t2 -c8' if wrk else 'httpx x8'}, {duration} s"
        if not result.rps and not result.error:
            result.error = f"no request completed in {duration} s"
        if result.error:
            result.rps = None
        settle(settings, running)
    result.peak_mib = server.peak_mib()
    return result


# -- the run ----------------------------------------------------------------------------------

GOALS = {"items": 1 / 1.5, "bbox": 1 / 1.5, "tile14": 1.0, "tile10": 1.0}  # geoby/tipg time


def run_all(starts: list, settings: Settings, plan: list, seconds: int, quick: bool) -> dict:
    """Start the servers, then measure each workload on each server in turn.

    All three stay up, but only one is loaded at a time: interleaving them per
    workload keeps load from other processes on the machine from favouring one.
    """
    results: dict = {}
    truths: dict = {}
    with ExitStack() as stack:
        running = [stack.enter_context(start()) for start in starts]
        for table, rows, loads in plan:
            for workload in loads:
                for server in running:
                    result = measure(
                        server, running, settings, table, workload, seconds, quick, truths
                    )
                    results[(rows, workload.key, server.kind.name)] = result
                    shown = f"{_num(result.rps)} req/s" if result.rps else f"FAILED: {result.error}"
                    print(
                        f"  {workload.label:<34} {rows:>9,} {server.kind.label:<9} {shown}",
                        file=sys.stderr,
                    )
    return results


def rows_of(results: dict, plan: list, labels: dict[str, str]) -> list[dict]:
    """The result records: one per workload, table size and peer."""
    out = []
    for _table, rows, loads in plan:
        for workload in loads:
            mine = results[(rows, workload.key, "geoby")]
            for peer in ("tipg", "pygeoapi"):
                theirs = results[(rows, workload.key, peer)]
                geoby_s = 1 / mine.rps if mine.rps else None
                peer_s = 1 / theirs.rps if theirs.rps else None
                record = {
                    "workload": f"{workload.label}, {rows:,} lines",
                    "geoby_s": float(f"{geoby_s:.4g}") if geoby_s else None,
                    "peer": labels[peer],
                    "peer_s": float(f"{peer_s:.4g}") if peer_s else None,
                    "ratio": round(geoby_s / peer_s, 3) if geoby_s and peer_s else None,
                    "peak_mib": round(mine.peak_mib) if mine.peak_mib else None,
                    "geoby_rps": round(mine.rps, 2) if mine.rps else None,
                    "peer_rps": round(theirs.rps, 2) if theirs.rps else None,
                    "geoby_p50_ms": round(mine.p50_ms, 1) if mine.p50_ms else None,
                    "peer_p50_ms": round(theirs.p50_ms, 1) if theirs.p50_ms else None,
                }
                errors = [
                    f"{n}: {m.error}" for n, m in (("geoby", mine), (peer, theirs)) if m.error
                ]
                if errors:
                    record["error"] = "; ".join(errors)
                out.append(record)
    return out


def goal(key: str, vs_tipg: float | None, vs_pygeoapi: float | None) -> str:
    """Whether the issue's goal holds: >= 1.5x tipg on items and bbox, faster than tipg on
    tiles, never slower than stock pygeoapi."""
    if vs_tipg is None or vs_pygeoapi is None:
        return "n/a"
    ok = vs_pygeoapi <= 1 and (key not in GOALS or vs_tipg < GOALS[key] + 1e-9)
    return "met" if ok else "MISSED"


def _num(value: float, digits: int = 1) -> str:
    """A figure with ``digits`` decimals, or three significant digits when it is small."""
    return f"{value:.{digits}f}" if value >= 1 else f"{value:.3g}"


def report(results: dict, plan: list) -> None:
    """Print requests/s, ratios and the per-server details."""
    head = (
        f"{'workload':<34} {'lines':>9} {'geoby r/s':>10} {'tipg r/s':>9} {'pygeoapi r/s':>13}"
        f" {'vs tipg':>8} {'vs pygeoapi':>12}  goal"
    )
    print(head + "\n" + "-" * len(head))
    for _table, rows, loads in plan:
        for workload in loads:
            rps = {n: results[(rows, workload.key, n)].rps for n in ("geoby", "tipg", "pygeoapi")}
            ratio = {
                n: rps[n] / rps["geoby"] if rps["geoby"] and rps[n] else None
                for n in ("tipg", "pygeoapi")
            }
            cells = [_num(v) if v else "FAIL" for v in rps.values()]
            ratios = [_num(v, 2) if v else "-" for v in ratio.values()]
            print(
                f"{workload.label:<34} {rows:>9,} {cells[0]:>10} {cells[1]:>9} {cells[2]:>13}"
                f" {ratios[0]:>8} {ratios[1]:>12}  {goal(workload.key, *ratio.values())}"
            )
    print(
        "\n(vs = geoby time / peer time per request: below 1 is faster; goal: items and bbox"
        " <= 0.67 vs tipg, tiles < 1 vs tipg, everything <= 1 vs pygeoapi)\n"
    )
    print(
        f"{'workload':<34} {'lines':>9} {'server':<9} {'req/s':>8} {'p50 ms':>8} {'KB':>7}"
        f" {'features':>8}  method / note"
    )
    for _table, rows, loads in plan:
        for workload in loads:
            for name in ("geoby", "tipg", "pygeoapi"):
                m = results[(rows, workload.key, name)]
                if m.error:
                    print(f"{workload.label:<34} {rows:>9,} {name:<9} FAILED: {m.error[:300]}")
                    continue
                print(
                    f"{workload.label:<34} {rows:>9,} {name:<9} {_num(m.rps or 0):>8}"
                    f" {m.p50_ms:>8.1f} {m.kb:>7.0f} {m.features:>8.0f}  {m.method}"
                    f"{'; ' + m.note if m.note else ''}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="100,000 lines only, no z10 tiles, 2 s per workload"
    )
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    keys = ["items", "bbox", "offset", "item", "tile14"] + ([] if args.quick else ["tile10"])
    seconds = 2 if args.quick else 10
    servers.WORK.mkdir(parents=True, exist_ok=True)
    tipg_venv, pygeoapi_venv = servers.tipg_venv(), servers.pygeoapi_venv()
    labels = {
        "tipg": f"tipg {servers.version(tipg_venv, 'tipg')}",
        "pygeoapi": f"pygeoapi {servers.version(pygeoapi_venv, 'pygeoapi')} (PostgreSQL, MVT-postgresql)",
    }
    settings = bench_settings()
    plan = []
    for rows in sizes:
        table = (
            f"bench_lines_{rows // 1000}k"
            if rows < 1_000_000
            else f"bench_lines_{rows // 1_000_000}m"
        )
        ensure_table(settings, table, rows)
        prewarm(settings, table)
        plan.append((table, rows, workloads(rows, keys)))
    tables = [table for table, _, _ in plan]
    dsn = Database(settings).dsn("read")
    extents = {table: crs84_extent(settings, table) for table in tables}
    starts = [
        lambda: servers.geoby(BENCH_DB, tables),
        lambda: servers.tipg(tipg_venv, dsn, tables),
        lambda: servers.pygeoapi(pygeoapi_venv, dsn, extents),
    ]
    busy = os.getloadavg()[0]
    if busy > 0.5:
        print(
            f"note: load average {busy:.1f} before the run; other processes share the CPUs",
            file=sys.stderr,
        )
    results = run_all(starts, settings, plan, seconds, args.quick)
    report(results, plan)
    out = ROOT / "bench" / "results" / "ogc.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows_of(results, plan, labels), indent=2) + "\n")


def crs84_extent(settings: Settings, table: str) -> list[float]:
    """The table's extent in CRS84 (for pygeoapi's configuration)."""
    conn = connect(Database(settings).dsn("owner"))
    layer = catalog.get(conn, table)
    conn.close()
    box = Transformer.from_crs(25832, 4326, always_xy=True).transform_bounds(*layer.extent)
    return [round(v, 6) for v in box]


if __name__ == "__main__":
    main()
