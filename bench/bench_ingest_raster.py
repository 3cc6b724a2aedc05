"""Raster ingestion benchmark: geoby's DEM-to-COG step against ``gdal_translate -of COG``.

Workload: a synthetic but realistic DEM (multi-octave terrain with a valley,
a sea area of nodata, millimetre heights; 0.4 m cells like the Danish DHM),
float32, EPSG:25832, 10,000 x 10,000 cells (4,000 x 4,000 with ``--quick``),
written as a tiled DEFLATE GeoTIFF in a temporary directory.

geoby: the terrain pipeline's COG step (:mod:`ingest.terrain_cog`: open and
check the tile, build the mosaic VRT, write the COG with overviews), run in
its own process and timed inside it from the first call to the finished file;
the source checksum and the PostGIS registration are not part of it (the
tests cover those). Peer: ``gdal_translate -of COG`` with the same creation
options (DEFLATE, predictor, 512 blocks, AVERAGE overviews, all CPUs) on the
same input, timed as a process. A second row runs GDAL's COG driver through rasterio's
own GDAL straight on the file (no VRT, no checks), to separate geoby's
overhead from the difference between the two GDAL builds. Both outputs are checked to be valid COGs
with the same cells. Peak memory is each process's own peak resident set
(``VmHWM``; the peer's sampled while it runs). The two sides use their own GDAL builds (rasterio's wheel and
the OS package), which the table names.

Run: ``.venv/bin/python bench/bench_ingest_raster.py [--quick]``; merged into
``bench/bench_ingest.py`` through :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.terrain_cog import COG_OPTIONS  # noqa: E402

CELL = 0.4
STRIP = 512
# (lattice spacing m, amplitude m), broad to fine: hills, slopes, field edges, micro-relief.
OCTAVES = ((1600.0, 18.0), (420.0, 5.0), (110.0, 1.2), (27.0, 0.25), (6.0, 0.04))


def find_gdal_translate() -> str:
    """gdal_translate on PATH, installed from the OS packages (gdal-bin) where missing and root."""
    found = shutil.which("gdal_translate")
    if found:
        print(f"peer: {found} found on PATH", file=sys.stderr)
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("peer: installing gdal-bin for gdal_translate ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "gdal-bin"], check=True, env=env)
        if found := shutil.which("gdal_translate"):
            return found
    raise SystemExit("gdal_translate (gdal-bin) is needed as the peer and could not be installed")


def make_dem(path: Path, n: int, seed: int = 11) -> None:
    """Write an n x n synthetic DEM, strip by strip (memory stays at a few strips)."""
    rng = np.random.default_rng(seed)
    extent = n * CELL
    lattices = [(s, a, rng.uniform(-1, 1, (int(extent / s) + 3,) * 2)) for s, a in OCTAVES]
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": 1, "width": n, "height": n,
        "crs": "EPSG:25832", "transform": from_origin(720_000, 6_170_000 + extent, CELL, CELL),
        "nodata": -9999.0, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate", "predictor": 3,
    }  # fmt: skip
    u = (np.arange(n) + 0.5) * CELL
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, n, STRIP):
            rows = min(STRIP, n - top)
            v = extent - (top + np.arange(rows) + 0.5) * CELL
            dst.write(_heights(u, v, extent, lattices), 1, window=Window(0, top, n, rows))


def _heights(u: np.ndarray, v: np.ndarray, extent: float, lattices) -> np.ndarray:
    uu, vv = np.meshgrid(u, v)
    coast = 0.85 * extent + 0.05 * extent * np.sin(vv / extent * 5.0)
    h = 25.0 * np.clip((coast - uu) / extent, 0, None) ** 0.7
    valley = np.abs(vv - 0.45 * extent - 0.1 * extent * np.sin(uu / extent * 4.0))
    h -= 6.0 * np.exp(-((valley / 120.0) ** 2))
    for spacing, amplitude, lat in lattices:
        fx, fy = uu / spacing, vv / spacing
        ix, iy = fx.astype(np.intp), fy.astype(np.intp)
        tx, ty = fx - ix, fy - iy
        a, b = lat[iy, ix], lat[iy, ix + 1]
        c, d = lat[iy + 1, ix], lat[iy + 1, ix + 1]
        h += amplitude * (a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty)
    h = np.round(h, 3).astype(np.float32)
    h[uu > coast] = -9999.0  # the sea: nodata, as in the Danish DTM tiles
    return h


def _geoby_cog(src: Path, dst: Path) -> None:
    """The terrain pipeline's COG step, as :func:`ingest.terrain._build` runs it."""
    from ingest.terrain_cog import check_mosaic, open_tile, target_grid, write_cog, write_vrt

    tiles = [open_tile(src)]
    grid = check_mosaic(tiles)
    write_cog(write_vrt(tiles, grid, dst.with_suffix(".vrt")), dst, target_grid(grid, None))


def _raw_gdal_cog(src: Path, dst: Path) -> None:
    """GDAL's COG driver straight on the file, through rasterio's GDAL (no geoby code)."""
    import rasterio.shutil

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        rasterio.shutil.copy(src, dst, driver="COG", **COG_OPTIONS)


def _child(kind: str, src: Path, dst: Path) -> None:
    started = time.perf_counter()
    (_geoby_cog if kind == "geoby" else _raw_gdal_cog)(src, dst)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": _peak_mib(os.getpid())}))


def _in_child(kind: str, src: Path, dst: Path) -> tuple[float, float]:
    """Seconds and peak MiB of one COG write in a fresh process, timed inside it."""
    _, _, out = _process([sys.executable, __file__, "--child", kind, str(src), str(dst)])
    child = json.loads(out.strip().splitlines()[-1])
    return child["seconds"], child["peak_mib"]


def _peak_mib(pid: int) -> float:
    """The peak resident set of a live process (VmHWM), in MiB; 0 once it is gone.

    Not ``ru_maxrss``: Linux carries the parent's resident set at fork into a
    child's ``ru_maxrss``, so a big parent would be counted for its children.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def _process(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command; return its wall seconds, its peak resident set (MiB) and stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # the kernel keeps the child's peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss / 1024
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{Path(cmd[0]).name} failed: {err.read().strip()[-500:]}")
        return elapsed, peak, out.read()


def _same_cells(a: Path, b: Path) -> bool:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        if (x.shape, x.transform, x.overviews(1)) != (y.shape, y.transform, y.overviews(1)):
            return False
        for top in range(0, x.height, 2048):
            window = Window(0, top, x.width, min(2048, x.height - top))
            if not np.array_equal(x.read(1, window=window), y.read(1, window=window)):
                return False
    return True


def run(quick: bool) -> list[dict]:
    """Run the raster workload once; return the result rows."""
    from rio_cogeo.cogeo import cog_validate

    n = 4_000 if quick else 10_000
    gdal_translate = find_gdal_translate()
    peer_version = subprocess.run([gdal_translate, "--version"], capture_output=True,
                                  text=True).stdout.split(",")[0]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="geoby-bench-raster-") as tmp:
        src, ours, theirs = Path(tmp) / "dem.tif", Path(tmp) / "geoby.tif", Path(tmp) / "peer.tif"
        print(f"generating a {n:,} x {n:,} DEM ...", file=sys.stderr)
        make_dem(src, n)
        src.read_bytes()  # every side starts with the input in the page cache
        options = [arg for key, value in COG_OPTIONS.items() for arg in ("-co", f"{key}={value}")]
        peer_s, peer_peak, _ = _process([gdal_translate, "-q", "-of", "COG", *options,
                                         str(src), str(theirs)])  # fmt: skip
        geoby_s, geoby_peak = _in_child("geoby", src, ours)
        raw_s, raw_peak = _in_child("raw", src, Path(tmp) / "raw.tif")
        valid = cog_validate(str(ours), quiet=True)[0] and cog_validate(str(theirs), quiet=True)[0]
        same = _same_cells(ours, theirs)
        sizes = ours.stat().st_size / 2**20, theirs.stat().st_size / 2**20
    print(f"geoby: GDAL {rasterio.__gdal_version__} (rasterio), peak {geoby_peak:.0f} MiB, "
          f"{sizes[0]:.0f} MiB written; same GDAL without geoby: peak {raw_peak:.0f} MiB; "
          f"peer: {peer_version}, peak {peer_peak:.0f} MiB, {sizes[1]:.0f} MiB written; "
          f"both valid COGs: {valid}; same cells: {same}", file=sys.stderr)  # fmt: skip
    workload = f"DEM to COG, {n:,} x {n:,} float32"
    return [
        _row(workload, geoby_s, f"gdal_translate -of COG ({peer_version})", peer_s, geoby_peak),
        _row(f"{workload} (same GDAL)", geoby_s,
             f"GDAL {rasterio.__gdal_version__} COG driver via rasterio, no geoby code",
             raw_s, geoby_peak),
    ]  # fmt: skip


def _row(workload: str, geoby_s: float, peer: str, peer_s: float, peak: float) -> dict:
    return {"workload": workload, "geoby_s": round(geoby_s, 2), "peer": peer,
            "peer_s": round(peer_s, 2), "ratio": round(geoby_s / peer_s, 3),
            "peak_mib": round(peak)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4,000 x 4,000 instead of 10,000")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SRC", "DST"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        kind, src, dst = args.child
        _child(kind, Path(src), Path(dst))
        return
    results = run(args.quick)
    print(f"{'workload':<52} {'geoby s':>8} {'peer s':>8} {'ratio':>6} {'peak MiB':>9}  peer")
    for r in results:
        print(f"{r['workload']:<52} {r['geoby_s']:>8} {r['peer_s']:>8} {r['ratio']:>6} "
              f"{r['peak_mib']:>9}  {r['peer']}")  # fmt: skip


if __name__ == "__main__":
    main()
