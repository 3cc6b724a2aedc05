"""Route cost: geoby's engine (PyVRP) against OR-Tools, a nearest-neighbour baseline,
and the best-known cost of CVRPLIB X-n439-k37.

Workloads (one run, same machine, same instances and time limits):

``random N bins, T s``
    N bins uniform in a 10 km square, the garage at its centre, demands 1-10
    units, a capacity of a fifteenth of the total demand (about 15 routes), rounded
    Euclidean metres, as many trucks as bins (single trip each; plain CVRP, which
    every peer solves). Seeded. geoby (``PyVRPEngine``) and OR-Tools routing
    (``PATH_CHEAPEST_ARC`` first solution, ``GUIDED_LOCAL_SEARCH``, the same time
    limit) each get T seconds; the nearest-neighbour baseline is one greedy pass.
``X-n439-k37, T s``
    The CVRPLIB instance (../shared/data/cvrplib), against its best-known cost 36,391.

Every solution (geoby's and the peers') is checked with
:func:`waste.routing.check_solution` before its cost is counted. Each solver runs
in a forked child so ``peak_mib`` is that solver's own peak resident memory.
``ratio`` = geoby cost / peer cost (below 1: geoby's routes are shorter).

    .venv/bin/python bench/bench_waste.py --quick   # 100 and 500 bins at 10 s, X at 10 s
    .venv/bin/python bench/bench_waste.py           # 100, 500, 1,000 bins and X at 10 s and 30 s
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waste.engines import NearestNeighbourEngine, PyVRPEngine  # noqa: E402
from waste.routing import Problem, Route, Solution, Stop, Truck, check_solution  # noqa: E402
from waste.vrplib_ import read_problem  # noqa: E402

X_PATH = ROOT.parent / "shared" / "data" / "cvrplib" / "X-n439-k37.vrp"
X_BEST = 36391


def random_problem(n: int, seed: int = 42) -> Problem:
    rng = np.random.default_rng(seed)
    xy = np.vstack([[5000.0, 5000.0], rng.uniform(0, 10_000, (n, 2))])
    demand = rng.integers(1, 11, n)
    capacity = int(math.ceil(demand.sum() / 15))
    stops = [Stop(str(i + 1), *xy[i + 1], int(demand[i])) for i in range(n)]
    trucks = [Truck(f"v{k + 1}", capacity, max_trips=1) for k in range(n)]
    distance = np.rint(np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)))
    return Problem(tuple(xy[0]), None, stops, trucks, distance, distance)


def ortools_solve(problem: Problem, seconds: float) -> Solution:
    """OR-Tools routing on a single-trip CVRP, as its documentation sets it up."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n = problem.distance_m.shape[0]
    demand = [0] + [s.demand for s in problem.stops]
    capacity = problem.trucks[0].capacity
    vehicles = int(math.ceil(sum(demand) / capacity)) + 5
    manager = pywrapcp.RoutingIndexManager(n, vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    dist = problem.distance_m.tolist()
    transit = routing.RegisterTransitCallback(
        lambda i, j: dist[manager.IndexToNode(i)][manager.IndexToNode(j)]
    )
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    load = routing.RegisterUnaryTransitCallback(lambda i: demand[manager.IndexToNode(i)])
    routing.AddDimensionWithVehicleCapacity(load, 0, [capacity] * vehicles, True, "load")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(seconds * 1000))
    found = routing.SolveWithParameters(params)
    tours = []
    for v in range(vehicles if found else 0):
        index, tour = routing.Start(v), []
        while not routing.IsEnd(index := found.Value(routing.NextVar(index))):
            tour.append(manager.IndexToNode(index))
        if tour:
            tours.append(tour)
    return as_solution(problem, tours, "ortools")


def as_solution(problem: Problem, tours: list[list[int]], engine: str) -> Solution:
    """Routes from tours of matrix indices, walked (loads, clock) for the checker."""
    routes = []
    for k, tour in enumerate(tours):
        path = [0, *tour, 0]
        legs = problem.distance_m[path[:-1], path[1:]]
        stops = [problem.stops[i - 1] for i in tour]
        routes.append(Route(problem.trucks[k].id, [s.id for s in stops],
                            list(np.cumsum([s.demand for s in stops])),
                            list(np.cumsum(problem.duration_s[path[:-2], path[1:-1]])),
                            int(legs.sum()), int(problem.duration_s[path[:-1], path[1:]].sum())))  # fmt: skip
    cost = sum(r.distance_m for r in routes)
    seen = {v for r in routes for v in r.visits}
    return Solution(routes, cost, [s.id for s in problem.stops if s.id not in seen], engine=engine)


def _child(conn, solver: str, problem: Problem, seconds: float) -> None:
    started = time.perf_counter()
    if solver == "geoby":
        solution = PyVRPEngine().solve(problem, seconds=seconds, seed=0)
    elif solver == "ortools":
        solution = ortools_solve(problem, seconds)
    else:
        solution = NearestNeighbourEngine().solve(problem, seconds=seconds)
    elapsed = time.perf_counter() - started
    violations = check_solution(problem, solution)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send((solution.cost, len(solution.routes), violations, elapsed, peak))


def run(solver: str, problem: Problem, seconds: float) -> dict:
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(target=_child, args=(child, solver, problem, seconds))
    process.start()
    cost, routes, violations, elapsed, peak = parent.recv()
    process.join()
    if violations:
        raise SystemExit(f"{solver}: invalid solution: {violations[:3]}")
    return {"cost": cost, "routes": routes, "s": elapsed, "peak_mib": peak}


def row(workload: str, geoby: dict, peer: str, value: dict | int) -> dict:
    peer_value = value["cost"] if isinstance(value, dict) else value
    return {"workload": workload, "geoby": geoby["cost"], "peer": peer, "peer_value": peer_value,
            "ratio": round(geoby["cost"] / peer_value, 4), "peak_mib": round(geoby["peak_mib"]),
            "geoby_s": round(geoby["s"], 2), "routes": geoby["routes"],
            "peer_s": round(value["s"], 2) if isinstance(value, dict) else None,
            "peer_routes": value["routes"] if isinstance(value, dict) else None,
            "peer_peak_mib": round(value["peak_mib"]) if isinstance(value, dict) else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under two minutes")
    args = parser.parse_args()
    sizes, limits = ((100, 500), (10,)) if args.quick else ((100, 500, 1000), (10, 30))
    rows = []
    for n in sizes:
        problem = random_problem(n)
        baseline = run("nearest-neighbour", problem, 0)
        for seconds in limits:
            name = f"random {n} bins, {seconds} s"
            geoby, peer = run("geoby", problem, seconds), run("ortools", problem, seconds)
            rows += [row(name, geoby, "ortools-gls", peer),
                     row(name, geoby, "nearest-neighbour", baseline)]  # fmt: skip
            print(rows[-2], rows[-1], sep="\n", flush=True)
    x = read_problem(X_PATH)
    for seconds in limits if args.quick else (10, 30):
        rows.append(row(f"X-n439-k37, {seconds} s", run("geoby", x, seconds), "best-known",
                        X_BEST))  # fmt: skip
        print(rows[-1], flush=True)
    print(f"\n{'workload':28} {'peer':18} {'geoby':>9} {'peer':>9} {'ratio':>7} {'MiB':>5}")
    for r in rows:
        print(f"{r['workload']:28} {r['peer']:18} {r['geoby']:>9,} {r['peer_value']:>9,} "
              f"{r['ratio']:>7.4f} {r['peak_mib']:>5}")  # fmt: skip
    out = ROOT / "bench" / "results" / "waste.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
