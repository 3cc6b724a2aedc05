"""Ingestion benchmarks: geoby against ogr2ogr (vectors) and gdal_translate (rasters).

Vector workload: N line features (1,000,000 in full, 100,000 with --quick) in a
GeoPackage, EPSG:25832, five attributes. geoby's loader (streaming read, full
validation and repair checks, COPY into staging, merge, catalog provenance)
against ``ogr2ogr -f PostgreSQL`` with ``PG_USE_COPY=YES`` on the same file and
the same database, both creating a spatial index. Raster workload: see
``bench/bench_ingest_raster.py``.

Run: ``.venv/bin/python bench/bench_ingest.py [--quick]``; writes
``bench/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.loader import load_file  # noqa: E402
from ingest.source import SourceFile  # noqa: E402
from ingest.vector import vector_parts  # noqa: E402
from layers.catalog import Layer  # noqa: E402
from layers.database import Database, as_url, cluster_for, connect  # noqa: E402
from layers.migrate import migrate  # noqa: E402
from layers.settings import DatabaseSettings, Settings  # noqa: E402

BENCH_DB = "geoby_bench"


def find_ogr2ogr() -> str:
    """ogr2ogr on PATH, installed from the OS packages (gdal-bin) where missing and root."""
    found = shutil.which("ogr2ogr")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing gdal-bin for the ogr2ogr peer ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "gdal-bin"], check=True, env=env)
        if found := shutil.which("ogr2ogr"):
            return found
    raise SystemExit("ogr2ogr (gdal-bin) is needed as the peer and could not be installed")


def make_lines(path: Path, n: int, seed: int = 7) -> None:
    """N random 2-5 vertex cable-like lines in a 20 km square, written in chunks."""
    rng = np.random.default_rng(seed)
    step = 200_000
    for start in range(0, n, step):
        m = min(step, n - start)
        vertices = rng.integers(2, 6, m)
        origin = rng.uniform([700_000, 6_160_000], [720_000, 6_180_000], (m, 2))
        offsets = np.concatenate([np.zeros((m, 1, 2)), rng.normal(0, 15, (m, 4, 2)).cumsum(1)], 1)
        coords = origin[:, None, :] + offsets
        geoms = [shapely.LineString(coords[i, : vertices[i]]) for i in range(m)]
        frame = gpd.GeoDataFrame(
            {
                "asset_id": [f"C{start + i:08d}" for i in range(m)],
                "owner": rng.choice(["Kystby El", "NordFiber", "Kystby Vand"], m),
                "utility_type": rng.choice(["electricity", "telecom", "water"], m),
                "depth_m": np.where(rng.random(m) < 0.25, np.nan, rng.uniform(0.3, 2.0, m)),
                "installed_year": rng.integers(1950, 2025, m),
            },
            geometry=geoms,
            crs=25832,
        )
        frame.to_file(path, layer="cables", append=start > 0, engine="pyogrio")


def bench_settings() -> Settings:
    settings = Settings(database=DatabaseSettings(name=BENCH_DB, cluster_dir=ROOT / "var" / "pg"))
    if settings.database.url is None:
        cluster_for(settings).up()
    migrate(settings)
    return settings


def reset(settings: Settings, tables: list[str]) -> None:
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS data.{table}")  # fixed benchmark names
        cur.execute("DELETE FROM geoby.layers WHERE id LIKE 'bench\\_%'")
    conn.close()


def run_geoby(settings: Settings, path: Path) -> float:
    database = Database(settings)
    layer = Layer(id="bench_cables", title="Benchmark cables", theme="utilities", kind="vector",
                  table_schema="data", table_name="bench_cables")  # fmt: skip
    started = time.perf_counter()
    report = load_file(database, SourceFile.open(path),
                       vector_parts(path, lambda name, kind: layer), show_progress=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    database.close()
    assert report.inserted > 0, report.summary()
    return elapsed


def run_ogr2ogr(settings: Settings, path: Path, ogr2ogr: str) -> float:
    url = as_url(Database(settings).dsn("ingest"))
    env = {**os.environ, "PG_USE_COPY": "YES"}
    cmd = [ogr2ogr, "-f", "PostgreSQL", f"PG:{url}", str(path), "cables",
           "-nln", "data.bench_ogr_cables", "-lco", "GEOMETRY_NAME=geom",
           "-lco", "SPATIAL_INDEX=GIST", "-nlt", "PROMOTE_TO_MULTI"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 features instead of 1 M")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    ogr2ogr = find_ogr2ogr()
    settings = bench_settings()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cables.gpkg"
        make_lines(path, n)
        reset(settings, ["bench_cables", "bench_ogr_cables"])
        peer_s = run_ogr2ogr(settings, path, ogr2ogr)
        geoby_s = run_geoby(settings, path)
        reset(settings, ["bench_cables", "bench_ogr_cables"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.append({"workload": f"vector load, {n:,} lines from GeoPackage", "geoby_s": round(geoby_s, 2),
                    "peer": "ogr2ogr -f PostgreSQL (PG_USE_COPY=YES)", "peer_s": round(peer_s, 2),
                    "ratio": round(geoby_s / peer_s, 3), "peak_mib": round(peak)})  # fmt: skip
    raster = ROOT / "bench" / "bench_ingest_raster.py"
    if raster.exists():
        sys.path.insert(0, str(raster.parent))
        import bench_ingest_raster

        results.extend(bench_ingest_raster.run(args.quick))
    print(f"{'workload':<48} {'geoby s':>8} {'peer s':>8} {'ratio':>6}  peer")
    for r in results:
        print(
            f"{r['workload']:<48} {r['geoby_s']:>8} {r['peer_s']:>8} {r['ratio']:>6}  {r['peer']}"
        )
    out = ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
