"""Terrain hydrology: geoby's flood package against RichDEM and whitebox-workflows.

Workloads (full run; ``--quick`` in brackets) on the synthetic float32 lowland DEMs of
:mod:`flood_dem` (0.4 m cells; 100 mm of rain):

``fill`` 8000 x 8000 = 64 M cells [2000 x 2000]
    ``flood.fill.fill_depressions`` against RichDEM ``FillDepressions(epsilon=False,
    topology="D8")`` and whitebox-workflows ``hydrology.depressions_storage.
    fill_depressions(fix_flats=False)``, which reads only files: its GeoTIFF is read
    into its memory store (``read_raster(path, "m")``) untimed, only the fill call is
    timed. Geoby's filled DEM must equal RichDEM's bit for bit; whitebox's differing
    cells are counted.
``hierarchy + fill-spill-merge`` 2000 x 2000 = 4 M cells [1000 x 1000]
    ``depression_hierarchy`` + ``fill_spill_merge`` against RichDEM's
    ``get_depression_hierarchy`` + ``fill_spill_merge`` (float64, converted untimed: its
    FSM takes nothing else). Reported: the largest depth difference, cells beyond 1e-4 m.
``complete cloudburst`` 8000 x 8000 [2000 x 2000]
    geoby alone: hierarchy, FSM, depth COG, bluespot polygons of the depressions at least
    ``flood.scenario.DEFAULT_MIN_DEPTH_M`` (5 cm) deep, as a cloudburst scenario stores them
    (a 0.4 m DEM has millions of centimetre pits: 7 M polygons at 64 M cells without the
    filter); ``flooded_polygons`` timed beside, outside the total. RichDEM is not run: at 64 M
    cells its FSM needs 5.3 GB and segfaults with the default 8 MB stack (DESIGN.md).
``tiled fill`` 4000 x 4000, 1024 x 1024 tiles [2000 x 2000, 512 x 512]
    ``flood.tiled.fill_depressions_tiled`` on two Dask workers (threads of one process)
    against the in-memory ``fill_depressions``; outputs must be identical.

Each measurement runs once, in a fresh subprocess (this script with ``--worker``):
``peak_mib`` is that tool's peak resident set (``ru_maxrss``, DEM included). The numba
kernels are compiled into their disk cache first; each geoby worker loads it by a call
on a tiny DEM, untimed. Ratios are the result; the load average is recorded with them.

Run: ``.venv/bin/python bench/bench_flood.py [--quick]``; writes bench/results/flood.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from flood_dem import CELL_M, CRS, NODATA, TRANSFORM, dem_geotiff, dem_path  # noqa: E402

CACHE = ROOT / "var" / "bench" / "flood"
RESULTS = ROOT / "bench" / "results" / "flood.json"
RAIN_MM = 100.0
CELL_AREA = CELL_M * CELL_M
FSM_TOLERANCE_M = 1e-4
WORKER_TIMEOUT_S = 1800
GOAL_CLOUDBURST_S = 60.0
GOAL_CLOUDBURST_MIB = 4096
GOAL_FSM_SPEEDUP = 5.0
SIZES = {  # workload -> (full, quick) edge length in cells
    "fill": (8000, 2000),
    "fsm": (2000, 1000),
    "cloudburst": (8000, 2000),
    "tiled": (4000, 2000),
}
TILES = {False: 1024, True: 512}


# --------------------------------------------------------------------------- workers


def _peak_mib() -> float:
    """Peak resident set of this process's own address space (VmHWM).

    ``ru_maxrss`` would do elsewhere, but Linux carries it over from the parent across
    fork and exec, so a worker would inherit the driver's peak.
    """
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _quiet(call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - RichDEM chatter
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return call(*args, **kwargs)


def _timed(call, *args, **kwargs) -> tuple[object, float, float]:  # noqa: ANN001, ANN002, ANN003
    wall, cpu = time.perf_counter(), time.process_time()
    out = call(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _tiny() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((64, 64)) * 3).astype(np.float32)


def work_fill_geoby(dem: np.ndarray, args: argparse.Namespace) -> dict:
    from flood.fill import fill_depressions

    fill_depressions(_tiny())
    filled, wall, cpu = _timed(fill_depressions, dem)
    np.save(args.out, filled)
    return {"seconds": wall, "cpu_s": cpu}


def work_fill_richdem(dem: np.ndarray, args: argparse.Namespace) -> dict:
    import richdem as rd

    rda = rd.rdarray(dem, no_data=NODATA)
    filled, wall, cpu = _timed(_quiet, rd.FillDepressions, rda, epsilon=False, topology="D8")
    np.save(args.out, np.asarray(filled))
    return {"seconds": wall, "cpu_s": cpu}


def work_fill_whitebox(dem: np.ndarray, args: argparse.Namespace) -> dict:
    import whitebox_workflows as wbw

    tif, target = Path(args.tif).resolve(), Path(args.out).resolve()
    # whitebox-workflows spills "memory:/raster/..." files into the working directory
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        env = wbw.WbEnvironment()
        raster = env.read_raster(str(tif), "m")  # into its memory store, untimed
        tool = env.hydrology.depressions_storage.fill_depressions
        filled, wall, cpu = _timed(tool, dem=raster, fix_flats=False)
        out = filled.to_numpy()
    np.save(target, out.astype(np.float32) if np.array_equal(out, out.astype(np.float32)) else out)
    return {"seconds": wall, "cpu_s": cpu}


def work_fill_tiled(dem: np.ndarray, args: argparse.Namespace) -> dict:
    from dask.distributed import Client, LocalCluster

    from flood.tiled import fill_depressions_tiled

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                     dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        fill_depressions_tiled(_tiny(), tile=(32, 32), client=client)
        tile = (args.tile, args.tile)
        filled, wall, cpu = _timed(fill_depressions_tiled, dem, tile=tile, client=client)
    np.save(args.out, filled)
    return {"seconds": wall, "cpu_s": cpu}


def work_fsm_geoby(dem: np.ndarray, args: argparse.Namespace) -> dict:
    from flood.depressions import depression_hierarchy
    from flood.fsm import fill_spill_merge

    tiny = _tiny()
    fill_spill_merge(tiny, depression_hierarchy(tiny, cell_area=CELL_AREA), RAIN_MM)
    h, th, ch = _timed(depression_hierarchy, dem, cell_area=CELL_AREA)
    r, tf, cf = _timed(fill_spill_merge, dem, h, RAIN_MM)
    np.save(args.out, r.depth)
    return {"seconds": th + tf, "cpu_s": ch + cf, "hierarchy_s": th, "fsm_s": tf,
            "depressions": h.count, "stored_m3": r.stored_m3}  # fmt: skip


def work_fsm_richdem(dem: np.ndarray, args: argparse.Namespace) -> dict:
    import richdem as rd

    d64 = rd.rdarray(dem.astype(np.float64), no_data=NODATA)
    wtd = rd.rdarray(np.full(dem.shape, RAIN_MM / 1000.0), no_data=NODATA)
    wall, cpu = time.perf_counter(), time.process_time()
    labels = _quiet(rd.get_new_depression_hierarchy_labels, d64.shape)
    deps, flowdirs = _quiet(rd.get_depression_hierarchy, d64, labels)
    th = time.perf_counter() - wall
    _quiet(rd.fill_spill_merge, d64, labels, flowdirs, deps, wtd)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    depth = np.maximum(np.asarray(wtd), 0.0)
    np.save(args.out, depth)
    return {"seconds": wall, "cpu_s": cpu, "hierarchy_s": th, "fsm_s": wall - th,
            "depressions": len(deps) - 1, "stored_m3": float(depth.sum() * CELL_AREA)}  # fmt: skip


def work_cloudburst_geoby(dem: np.ndarray, args: argparse.Namespace) -> dict:
    from flood.bluespots import bluespot_polygons, flooded_polygons
    from flood.depressions import depression_hierarchy
    from flood.fsm import fill_spill_merge
    from flood.io import write_cog
    from flood.scenario import DEFAULT_MIN_DEPTH_M

    tr, tiny = TRANSFORM, _tiny()
    ht = depression_hierarchy(tiny, cell_area=CELL_AREA)
    rt = fill_spill_merge(tiny, ht, RAIN_MM)
    write_cog(args.out, rt.depth.astype(np.float32), tr, CRS)
    bluespot_polygons(ht, tr, CRS)
    flooded_polygons(rt.depth, tr, CRS)
    steps, start = {}, time.perf_counter()
    h, steps["hierarchy_s"], _ = _timed(depression_hierarchy, dem, cell_area=CELL_AREA)
    steps["peak_after_hierarchy_mib"] = round(_peak_mib())
    r, steps["fsm_s"], _ = _timed(fill_spill_merge, dem, h, RAIN_MM)
    steps["peak_after_fsm_mib"] = round(_peak_mib())
    depth32 = r.depth.astype(np.float32)
    _, steps["cog_s"], _ = _timed(write_cog, args.out, depth32, tr, CRS)
    steps["peak_after_cog_mib"] = round(_peak_mib())
    del depth32
    spots, steps["bluespots_s"], _ = _timed(bluespot_polygons, h, tr, CRS,
                                            min_depth=DEFAULT_MIN_DEPTH_M)  # fmt: skip
    steps["peak_after_bluespots_mib"] = round(_peak_mib())
    total = time.perf_counter() - start
    patches, steps["flooded_polygons_s"], _ = _timed(flooded_polygons, r.depth, tr, CRS)
    return {"seconds": total, **steps, "depressions": h.count, "bluespot_rows": len(spots),
            "flooded_patches": len(patches), "stored_m3": r.stored_m3,
            "cog_mib": os.path.getsize(args.out) / 2**20}  # fmt: skip


def work_warm(dem: np.ndarray, args: argparse.Namespace) -> dict:
    """Compile every numba kernel the runs use into the on-disk cache."""
    args.out = Path(args.out)
    work_cloudburst_geoby(_tiny(), args)
    work_fill_geoby(_tiny(), args)
    return {"seconds": 0.0}


WORKERS = {name[5:]: fn for name, fn in globals().items() if name.startswith("work_")}


def worker_main(args: argparse.Namespace) -> None:
    dem = np.load(args.dem) if args.dem else None
    loaded = _peak_mib()
    result = WORKERS[args.worker](dem, args)
    result.update(peak_mib=round(_peak_mib()), loaded_mib=round(loaded))
    print(json.dumps(result))


# --------------------------------------------------------------------------- driver


def run_worker(name: str, dem: Path | None, out: Path, **extra: object) -> dict:
    """Run one measurement in a fresh interpreter; a crash is returned, not raised."""
    cmd = [sys.executable, __file__, "--worker", name, "--out", str(out)]
    cmd += ["--dem", str(dem)] if dem else []
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"error": f"exit status {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def record(workload: str, geoby: dict, peer: str, theirs: dict | None, **extra: object) -> dict:
    if "error" in geoby:
        raise RuntimeError(f"geoby failed on {workload}: {geoby['error']}")
    if theirs and "error" in theirs:
        extra["peer_error"] = theirs["error"]
    peer_s = theirs.get("seconds") if theirs else None
    ratio = geoby["seconds"] / peer_s if peer_s else None
    return {"workload": workload, "geoby_s": round(geoby["seconds"], 3), "peer": peer,
            "peer_s": None if peer_s is None else round(peer_s, 3),
            "ratio": None if ratio is None else round(ratio, 3), "peak_mib": geoby["peak_mib"],
            "peer_peak_mib": theirs.get("peak_mib") if theirs else None,
            "geoby_cpu_s": round(geoby["cpu_s"], 3) if "cpu_s" in geoby else None,
            "peer_cpu_s": round(theirs["cpu_s"], 3) if theirs and "cpu_s" in theirs else None,
            **extra}  # fmt: skip


def bench_fill(n: int, tmp: Path) -> list[dict]:
    dem = dem_path(n, CACHE)
    tif = dem_geotiff(dem)
    runs = {
        "geoby": run_worker("fill_geoby", dem, tmp / "geoby.npy"),
        "richdem": run_worker("fill_richdem", dem, tmp / "richdem.npy"),
        "whitebox": run_worker("fill_whitebox", dem, tmp / "whitebox.npy", tif=tif),
    }
    ours = np.load(tmp / "geoby.npy")
    same = "error" not in runs["richdem"] and np.array_equal(ours, np.load(tmp / "richdem.npy"))
    wb_diff, wb_max = None, None
    if "error" not in runs["whitebox"]:
        wb = np.load(tmp / "whitebox.npy")
        wb_diff = int(np.count_nonzero(wb != ours))
        wb_max = round(float(np.abs(wb.astype(np.float64) - ours).max()), 4)
        del wb
    del ours
    for name in runs:
        (tmp / f"{name}.npy").unlink(missing_ok=True)
    print(f"  fill {n}x{n}: geoby == RichDEM bit for bit: {same}; whitebox-workflows differs "
          f"in {wb_diff} cells (max {wb_max} m; see bench/README.md)")  # fmt: skip
    work = f"fill depressions, {n}x{n} ({n * n / 1e6:.0f} M cells) float32"
    return [
        record(work, runs["geoby"], 'RichDEM FillDepressions(epsilon=False, "D8")',
               runs["richdem"], identical_to_peer=same),
        record(work, runs["geoby"], "whitebox-workflows fill_depressions(fix_flats=False), "
               "fill call only", runs["whitebox"],
               cells_differing_from_peer=wb_diff, max_difference_m=wb_max),
    ]  # fmt: skip


def bench_fsm(n: int, tmp: Path) -> list[dict]:
    dem = dem_path(n, CACHE)
    runs = {name: run_worker(f"fsm_{name}", dem, tmp / f"fsm_{name}.npy")
            for name in ("geoby", "richdem")}  # fmt: skip
    g, p = runs["geoby"], runs["richdem"]
    work = f"depression hierarchy + fill-spill-merge {RAIN_MM:g} mm, {n}x{n} ({n * n / 1e6:.0f} M cells)"
    peer = "RichDEM get_depression_hierarchy + fill_spill_merge (float64)"
    if "error" in p:
        print(f"  fsm {n}x{n}: RichDEM failed: {p['error']}")
        return [record(work, g, peer, p)]
    diff = np.abs(np.load(tmp / "fsm_geoby.npy") - np.load(tmp / "fsm_richdem.npy"))
    worst, off = float(diff.max()), int(np.count_nonzero(diff > FSM_TOLERANCE_M))
    del diff
    print(f"  fsm {n}x{n}: depths max |geoby - RichDEM| {worst:.2e} m, cells beyond "
          f"{FSM_TOLERANCE_M:g} m: {off:,} of {n * n:,}; stored {g['stored_m3']:.1f} m3 vs "
          f"{p['stored_m3']:.1f} m3")  # fmt: skip
    return [record(
        work, g, peer, p,
        geoby_hierarchy_s=round(g["hierarchy_s"], 3), geoby_fsm_s=round(g["fsm_s"], 3),
        peer_hierarchy_s=round(p["hierarchy_s"], 3), peer_fsm_s=round(p["fsm_s"], 3),
        depressions=g["depressions"], peer_depressions=p["depressions"],
        max_depth_difference_m=worst, cells_beyond_1e4_m=off,
        stored_m3=round(g["stored_m3"], 3), peer_stored_m3=round(p["stored_m3"], 3),
    )]  # fmt: skip


def bench_cloudburst(n: int, tmp: Path) -> list[dict]:
    g = run_worker("cloudburst_geoby", dem_path(n, CACHE), tmp / "depth.tif")
    if "error" in g:
        raise RuntimeError(f"geoby's cloudburst failed: {g['error']}")
    steps = ", ".join(
        f"{k[:-2]} {g[k]:.1f} s" for k in ("hierarchy_s", "fsm_s", "cog_s", "bluespots_s")
    )
    print(f"  cloudburst {n}x{n}: {steps}; {g['bluespot_rows']:,} bluespots; "
          f"flooded_polygons {g['flooded_polygons_s']:.1f} s (not in the total)")  # fmt: skip
    reason = ("not run: RichDEM's Fill-Spill-Merge needs 5.3 GB and segfaults with the default "
              "8 MB stack at 64 M cells (DESIGN.md)") if n >= 8000 else "none (geoby alone)"  # fmt: skip
    extra = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in g.items()
             if k not in ("seconds", "peak_mib")}  # fmt: skip
    return [record(f"complete cloudburst {RAIN_MM:g} mm (hierarchy, FSM, COG, bluespots), "
                   f"{n}x{n} ({n * n / 1e6:.0f} M cells)", g, reason, None, **extra)]  # fmt: skip


def bench_tiled(n: int, tile: int, tmp: Path) -> list[dict]:
    dem = dem_path(n, CACHE)
    g = run_worker("fill_tiled", dem, tmp / "tiled.npy", tile=tile)
    p = run_worker("fill_geoby", dem, tmp / "memory.npy")
    same = np.array_equal(np.load(tmp / "tiled.npy"), np.load(tmp / "memory.npy"))
    print(f"  tiled {n}x{n}: tiled == in-memory: {same}")
    return [record(f"tiled fill ({tile}x{tile} tiles, 2 Dask workers), {n}x{n}", g,
                   "geoby fill_depressions in memory (1 thread)", p,
                   identical_to_peer=same)]  # fmt: skip


def print_table(rows: list[dict]) -> None:
    print(f"\n{'workload':<86} {'geoby s':>8} {'peer s':>8} {'ratio':>6} {'peak MiB':>9}  peer")
    for r in rows:
        peer_s = "-" if r["peer_s"] is None else f"{r['peer_s']:.2f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        peak = f" (peak {r['peer_peak_mib']} MiB)" if r["peer_s"] else ""
        print(f"{r['workload']:<86} {r['geoby_s']:>8.2f} {peer_s:>8} {ratio:>6} "
              f"{r['peak_mib']:>9}  {r['peer']}{peak}")  # fmt: skip


def print_goals(rows: list[dict]) -> None:
    fill = [r for r in rows if r["workload"].startswith("fill")]
    fsm = next(r for r in rows if "fill-spill-merge" in r["workload"])
    burst = next(r for r in rows if r["workload"].startswith("complete"))
    print("\nGoals of issue 6 (sizes as run here):")
    for r in fill:
        print(f"  fill faster than {r['peer'].split()[0]}: ratio {r['ratio']:.2f} "
              f"({'met' if r['ratio'] < 1 else 'NOT met'})")  # fmt: skip
    speedup = 1 / fsm["ratio"]
    print(f"  hierarchy + FSM at least {GOAL_FSM_SPEEDUP:g}x faster than RichDEM: {speedup:.1f}x "
          f"({'met' if speedup >= GOAL_FSM_SPEEDUP else 'NOT met'})")  # fmt: skip
    ok = burst["geoby_s"] < GOAL_CLOUDBURST_S and burst["peak_mib"] < GOAL_CLOUDBURST_MIB
    print(
        f"  cloudburst under {GOAL_CLOUDBURST_S:g} s and {GOAL_CLOUDBURST_MIB} MiB: "
        f"{burst['geoby_s']:.1f} s, peak {burst['peak_mib']} MiB ({'met' if ok else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--dem", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--tif", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    size = {k: v[args.quick] for k, v in SIZES.items()}
    load_before = os.getloadavg()
    print(f"bench_flood ({'quick' if args.quick else 'full'}); load average {load_before}")
    for n in sorted(set(size.values())):
        dem_path(n, CACHE)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmpdir:
        tmp = Path(tmpdir)
        warm = run_worker("warm", None, tmp / "warm.tif")
        if "error" in warm:
            raise RuntimeError(f"warming the numba caches failed: {warm['error']}")
        print("  numba caches warmed (tiny DEM); each geoby worker also loads them untimed")
        rows = bench_fill(size["fill"], tmp) + bench_fsm(size["fsm"], tmp)
        rows += bench_cloudburst(size["cloudburst"], tmp)
        rows += bench_tiled(size["tiled"], TILES[args.quick], tmp)
    load = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    for r in rows:
        r["load_avg_before_after"] = load
    print_table(rows)
    print_goals(rows)
    print(f"load average before {load[:3]}, after {load[3:]}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
