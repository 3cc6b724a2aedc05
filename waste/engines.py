"""Routing engines: PyVRP (the default) and a nearest-neighbour baseline.

:class:`PyVRPEngine` maps a :class:`waste.routing.Problem` onto PyVRP 0.14:

* locations are the garage, the disposal site and the stops, with the problem's
  integer matrices; the garage and the disposal site are PyVRP depots;
* each fraction is a load dimension; a stop is a *pickup* in its fraction's
  dimension and a truck has its capacity in its own fraction's dimension and
  none in the others, so it cannot take other fractions;
* trucks alike in capacity, shift, fraction and trip limit form one vehicle type
  that starts at the garage, may reload (be emptied) at the disposal site
  (``reload_depots``, ``max_reloads = max_trips - 1``) and *ends* at the disposal
  site, so it always arrives there to be emptied; the fixed drive back from the
  disposal site to the garage is the vehicle type's ``fixed_cost`` (in metres,
  so the objective is the total distance) and is taken off its shift duration,
  with the final emptying time. Without a disposal site trucks reload and end at
  the garage.

PyVRP searches until ``seconds`` have passed, so its result depends on the
machine's speed; with ``iterations`` set it stops after that many iterations
instead and a seed gives the same routes on any machine.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np

from layers.errors import InvalidInput
from waste.routing import DISPOSAL, Problem, Route, Solution, Stop, Truck

log = logging.getLogger(__name__)

_UNLIMITED = np.iinfo(np.int64).max
_UNLIMITED_RELOADS = np.iinfo(np.uint64).max


class PyVRPEngine:
    """Hybrid genetic search of PyVRP (Wouda, Lan and Kool 2024).

    Parameters
    ----------
    iterations
        Stop after this many iterations instead of after ``seconds`` (reproducible).
    """

    name = "pyvrp"

    def __init__(self, iterations: int | None = None) -> None:
        self.iterations = iterations

    def solve(self, problem: Problem, *, seconds: float, seed: int = 0) -> Solution:
        """Routes for ``problem`` within ``seconds`` (see the module notes)."""
        import pyvrp
        from pyvrp.stop import MaxIterations, MaxRuntime

        data, groups = _problem_data(problem)
        stop = MaxIterations(self.iterations) if self.iterations else MaxRuntime(seconds)
        result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, display=False)
        log.info("pyvrp: %d iterations in %.1f s, feasible %s", result.num_iterations,
                 result.runtime, result.is_feasible())  # fmt: skip
        return _solution(problem, result.best, groups, feasible=result.is_feasible())


def _fractions(problem: Problem) -> list[str | None]:
    found = {t.fraction for t in problem.trucks} | {s.fraction for s in problem.stops}
    return sorted(found, key=lambda f: (f is not None, f or ""))


def _problem_data(problem: Problem) -> tuple[object, list[list[Truck]]]:
    from pyvrp import Depot, Location, ProblemData, VehicleType

    fractions = _fractions(problem)
    dim = {f: i for i, f in enumerate(fractions)}
    n = problem.distance_m.shape[0]
    points = [problem.depot, *([problem.disposal] if problem.disposal else []),
              *((s.x, s.y) for s in problem.stops)]  # fmt: skip
    locations = [Location(float(x), float(y)) for x, y in points]
    depots = [Depot(0, name="garage")]
    if problem.disposal is not None:
        depots.append(Depot(1, service_duration=problem.disposal_service_s, name=DISPOSAL))
    clients = [_client(problem.index(i), stop, dim, len(fractions))
               for i, stop in enumerate(problem.stops)]  # fmt: skip
    groups: dict[tuple, list[Truck]] = defaultdict(list)
    for truck in problem.trucks:
        groups[(truck.capacity, truck.shift_s, truck.fraction, truck.max_trips)].append(truck)
    dump = problem.disposal_index
    back_m, back_s = int(problem.distance_m[dump, 0]), int(problem.duration_s[dump, 0])
    final_s = back_s + (problem.disposal_service_s if problem.disposal is not None else 0)
    types = []
    for (capacity, shift_s, fraction, max_trips), trucks in groups.items():
        if shift_s is not None and shift_s <= final_s:
            raise InvalidInput(f"shift of {shift_s} s leaves no time after the final emptying "
                               f"and the drive back ({final_s} s)", field="shift_s",
                               record=f"truck {trucks[0].id}")  # fmt: skip
        load = [capacity if f == fraction else 0 for f in fractions]
        types.append(VehicleType(
            len(trucks), capacity=load, start_depot=0, end_depot=dump,
            fixed_cost=back_m, shift_duration=_UNLIMITED if shift_s is None else shift_s - final_s,
            reload_depots=[dump] if max_trips != 1 else [],
            max_reloads=_UNLIMITED_RELOADS if max_trips is None else max_trips - 1,
            name=",".join(t.id for t in trucks),
        ))  # fmt: skip
    data = ProblemData(locations, clients, depots, types,
                       [problem.distance_m.reshape(n, n)], [problem.duration_s.reshape(n, n)])  # fmt: skip
    return data, list(groups.values())


def _client(location: int, stop: Stop, dim: dict, n_dims: int) -> object:
    from pyvrp import Client

    pickup = [0] * n_dims
    pickup[dim[stop.fraction]] = int(stop.demand)
    early, late = stop.tw if stop.tw is not None else (0, _UNLIMITED)
    return Client(location, pickup=pickup, service_duration=int(stop.service_s),
                  tw_early=int(early), tw_late=int(late), name=stop.id)  # fmt: skip


def _solution(problem: Problem, best: object, groups: list[list[Truck]], *,
              feasible: bool) -> Solution:  # fmt: skip
    dump = problem.disposal_index
    back_m, back_s = int(problem.distance_m[dump, 0]), int(problem.duration_s[dump, 0])
    used = [0] * len(groups)
    routes, visited = [], set()
    for pyvrp_route in best.routes():
        kind = pyvrp_route.vehicle_type()
        truck = groups[kind][used[kind]]
        used[kind] += 1
        visits, loads, arrivals, load = [], [], [], 0
        schedule = pyvrp_route.schedule()
        for activity in schedule[1:]:
            is_end = activity is schedule[-1]
            if activity.is_depot() and is_end and problem.disposal is None:
                break
            if activity.is_depot():
                visits.append(DISPOSAL)
                load = 0
            else:
                stop = problem.stops[activity.idx]
                visits.append(stop.id)
                visited.add(stop.id)
                load += stop.demand
            loads.append(load)
            arrivals.append(int(activity.start_time - activity.wait_duration))
        end_s = int(pyvrp_route.end_time())
        if problem.disposal is not None:
            end_s += problem.disposal_service_s + back_s
        start_s = int(pyvrp_route.start_time())
        routes.append(Route(truck.id, visits, loads, arrivals,
                            distance_m=int(pyvrp_route.distance()) + back_m * bool(problem.disposal),
                            duration_s=end_s - start_s, start_s=start_s))  # fmt: skip
    unassigned = [s.id for s in problem.stops if s.id not in visited]
    return Solution(routes, cost=sum(r.distance_m for r in routes), unassigned=unassigned,
                    feasible=feasible and not unassigned, engine="pyvrp")  # fmt: skip


class NearestNeighbourEngine:
    """The baseline: each truck in turn drives to the nearest stop it can still take
    (its fraction, its capacity after emptying, the time window, the shift), empties
    when the nearest stop no longer fits, and goes home when no stop fits the shift.
    ``seconds`` and ``seed`` are ignored: it is one greedy pass."""

    name = "nearest-neighbour"

    def solve(self, problem: Problem, *, seconds: float = 0.0, seed: int = 0) -> Solution:
        """Greedy routes for ``problem``."""
        started = time.perf_counter()
        left = set(range(len(problem.stops)))
        routes = []
        for truck in problem.trucks:
            if not left:
                break
            route = _greedy_route(problem, truck, left)
            if route is not None:
                routes.append(route)
        unassigned = [problem.stops[i].id for i in sorted(left)]
        log.info("nearest neighbour: %d routes in %.2f s", len(routes),
                 time.perf_counter() - started)  # fmt: skip
        return Solution(routes, cost=sum(r.distance_m for r in routes), unassigned=unassigned,
                        feasible=not unassigned, engine=self.name)  # fmt: skip


def _greedy_route(problem: Problem, truck: Truck, left: set[int]) -> Route | None:
    dist, dur = problem.distance_m, problem.duration_s
    dump, has_site = problem.disposal_index, problem.disposal is not None
    empty_s = problem.disposal_service_s if has_site else 0
    mine = np.array([i for i in sorted(left) if problem.stops[i].fraction == truck.fraction])
    visits, loads, arrivals = [], [], []
    here, clock, load, distance, trips = 0, 0, 0, 0, 1
    while len(mine):
        fit = _first_fit(problem, truck, mine, here, clock, load)
        if fit is None:
            after = clock + dur[here, dump] + empty_s
            more = truck.max_trips is None or trips < truck.max_trips
            if not (load and more and _first_fit(problem, truck, mine, dump, after, 0)):
                break
            distance, clock = distance + dist[here, dump], clock + dur[here, dump]
            visits, loads, arrivals = [*visits, DISPOSAL], [*loads, 0], [*arrivals, int(clock)]
            here, clock, load, trips = dump, after, 0, trips + 1
            continue
        i, arrive, start = fit
        stop, at = problem.stops[i], problem.index(i)
        distance, load = distance + dist[here, at], load + stop.demand
        visits, loads, arrivals = [*visits, stop.id], [*loads, load], [*arrivals, int(arrive)]
        here, clock = at, start + stop.service_s
        mine = mine[mine != i]
        left.discard(i)
    if not visits:
        return None
    if has_site and visits[-1] != DISPOSAL:  # the final emptying
        distance, clock = distance + dist[here, dump], clock + dur[here, dump]
        visits, loads, arrivals = [*visits, DISPOSAL], [*loads, 0], [*arrivals, int(clock)]
        here, clock = dump, clock + empty_s
    elif not has_site and visits[-1] == DISPOSAL:  # emptied at the garage: that was home
        visits, loads, arrivals = visits[:-1], loads[:-1], arrivals[:-1]
    distance, clock = distance + dist[here, 0], clock + dur[here, 0]
    return Route(truck.id, visits, loads, arrivals, int(distance), int(clock))


def _first_fit(problem: Problem, truck: Truck, mine: np.ndarray, here: int, clock: int,
               load: int) -> tuple[int, int, int] | None:  # fmt: skip
    """The nearest stop the truck can take next from ``here`` and still get home in time."""
    dist, dur = problem.distance_m, problem.duration_s
    dump, has_site = problem.disposal_index, problem.disposal is not None
    shift = truck.shift_s if truck.shift_s is not None else _UNLIMITED
    at = mine + 1 + has_site
    for k in np.argsort(dist[here, at], kind="stable"):
        i, stop = int(mine[k]), problem.stops[int(mine[k])]
        if load + stop.demand > truck.capacity:
            continue
        arrive = clock + int(dur[here, at[k]])
        start = max(arrive, stop.tw[0]) if stop.tw else arrive
        done = start + stop.service_s
        home = (done + dur[at[k], dump] + problem.disposal_service_s + dur[dump, 0] if has_site
                else done + dur[at[k], 0])  # fmt: skip
        if (stop.tw is None or start <= stop.tw[1]) and home <= shift:
            return i, arrive, start
    return None
