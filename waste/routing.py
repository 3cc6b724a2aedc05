"""Collection routes: the problem, the solution, and a checker that trusts no solver.

A :class:`Problem` is a garage (the depot, where every truck starts and ends its
shift), an optional disposal site, the stops (bins) to empty, the trucks, and
road-network distance (m) and duration (s) matrices over the locations in the
order garage, disposal site (where there is one), stops. A truck collects one
waste fraction; when it is full it drives to the disposal site, is emptied
there (``disposal_service_s``) and goes on; it ends its shift by emptying at the
disposal site and driving back to the garage. Without a disposal site the
garage is where trucks are emptied. Loads are in one unit (kg, litres, or 1/100
of a bin), the same for demands and capacities.

A :class:`RoutingEngine` turns a problem into a :class:`Solution`;
:class:`waste.engines.PyVRPEngine` is the default. :func:`check_solution`
re-walks every route from the problem alone (loads, clock, time windows, shift
length, distance) so a route is accepted on its own evidence, not the solver's.

Examples
--------
>>> import numpy as np
>>> xy = np.array([[0, 0], [100, 0], [200, 0]])
>>> dist = np.abs(xy[:, None, 0] - xy[None, :, 0])
>>> problem = Problem(depot=(0, 0), disposal=None,
...                   stops=[Stop("a", 100, 0, 3), Stop("b", 200, 0, 3)],
...                   trucks=[Truck("t1", capacity=10)], distance_m=dist, duration_s=dist)
>>> route = Route("t1", visits=["a", "b"], loads=[3, 6], arrivals_s=[100, 200],
...               distance_m=400, duration_s=400)
>>> check_solution(problem, Solution([route], cost=400))
[]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from layers.errors import InvalidInput

log = logging.getLogger(__name__)

#: The marker of a visit to the disposal site (or to the garage to empty, without one).
DISPOSAL = "disposal"


@dataclass(frozen=True)
class Stop:
    """A bin to empty: position (EPSG:25832 m), load, service time and time window.

    ``tw`` is ``(earliest, latest)`` start of service in seconds from the start of
    the plan, or ``None`` for any time. ``fraction`` must match a truck's fraction.
    """

    id: str
    x: float
    y: float
    demand: int
    service_s: int = 0
    tw: tuple[int, int] | None = None
    fraction: str | None = None


@dataclass(frozen=True)
class Truck:
    """A truck: capacity (load units), shift length (s, ``None``: unlimited), the
    fraction it collects, and the most trips (emptyings) in a shift (``None``: any)."""

    id: str
    capacity: int
    shift_s: int | None = None
    fraction: str | None = None
    max_trips: int | None = None


@dataclass
class Problem:
    """Garage, disposal site, stops, trucks and the matrices over those locations.

    The matrices are square over ``[garage, disposal (if any), *stops]`` and are
    rounded to whole metres and seconds (the engines work in integers).
    """

    depot: tuple[float, float]
    disposal: tuple[float, float] | None
    stops: list[Stop]
    trucks: list[Truck]
    distance_m: np.ndarray
    duration_s: np.ndarray
    disposal_service_s: int = 0

    def __post_init__(self) -> None:
        n = 1 + (self.disposal is not None) + len(self.stops)
        for name in ("distance_m", "duration_s"):
            matrix = np.asarray(getattr(self, name), dtype=float)
            if matrix.shape != (n, n):
                raise InvalidInput(f"{name} must be {n} x {n} (garage, disposal, stops), got "
                                   f"{matrix.shape}", field=name)  # fmt: skip
            if not np.isfinite(matrix).all() or (matrix < 0).any():
                raise InvalidInput(f"{name} holds negative or missing values", field=name)
            setattr(self, name, np.rint(matrix).astype(np.int64))
        if not self.trucks:
            raise InvalidInput("no trucks", field="trucks")
        ids = [s.id for s in self.stops]
        if len(set(ids)) != len(ids) or DISPOSAL in ids:
            raise InvalidInput("stop ids must be unique and not 'disposal'", field="stops")
        if len({t.id for t in self.trucks}) != len(self.trucks):
            raise InvalidInput("truck ids must be unique", field="trucks")
        for stop in self.stops:
            _check_stop(stop, self.trucks)

    @property
    def disposal_index(self) -> int:
        """Matrix index of the site where trucks are emptied (the garage without one)."""
        return 1 if self.disposal is not None else 0

    def index(self, stop_number: int) -> int:
        """Matrix index of ``stops[stop_number]``."""
        return 1 + (self.disposal is not None) + stop_number


def _check_stop(stop: Stop, trucks: Sequence[Truck]) -> None:
    record = f"stop {stop.id}"
    if stop.demand < 0 or stop.service_s < 0:
        raise InvalidInput("demand and service time must be >= 0", field="demand", record=record)
    if stop.tw is not None and not 0 <= stop.tw[0] <= stop.tw[1]:
        raise InvalidInput(f"time window {stop.tw} is not 0 <= earliest <= latest", field="tw",
                           record=record)  # fmt: skip
    fits = [t for t in trucks if t.fraction == stop.fraction and t.capacity >= stop.demand]
    if not fits:
        raise InvalidInput(f"no truck for fraction {stop.fraction!r} holds its demand "
                           f"{stop.demand}", field="demand", record=record)  # fmt: skip


@dataclass
class Route:
    """One truck's shift: visits in order, the load on board after each visit and
    the arrival time (s) at each, total distance (m) and duration (s).

    ``visits`` holds stop ids and :data:`DISPOSAL`; with a disposal site the last
    visit is the final emptying before the drive back to the garage.
    ``start_s`` is when the truck leaves the garage.
    """

    truck_id: str
    visits: list[str]
    loads: list[int]
    arrivals_s: list[int]
    distance_m: int
    duration_s: int
    start_s: int = 0


@dataclass
class Solution:
    """Routes, their total distance (m) as cost, and the stops no route visits."""

    routes: list[Route]
    cost: int
    unassigned: list[str] = field(default_factory=list)
    feasible: bool = True
    engine: str = ""


class RoutingEngine(Protocol):
    """Anything that solves a :class:`Problem` (PyVRP by default, others plug in)."""

    name: str

    def solve(self, problem: Problem, *, seconds: float, seed: int = 0) -> Solution:
        """Routes for ``problem`` found within ``seconds``."""
        ...


def check_solution(problem: Problem, solution: Solution) -> list[str]:
    """Every rule a solution breaks, recomputed from the problem alone.

    Checks: every stop visited exactly once (or listed unassigned), known trucks used
    once each, a truck visits only stops of its fraction, the load between emptyings
    within capacity, at most ``max_trips`` trips, a route with a disposal site ends
    emptied there, service within every time window, the shift within ``shift_s``,
    and the reported loads, arrival times, distances, durations and cost equal to
    the recomputed ones.

    Returns
    -------
    list of str
        One message per violation; empty when the solution is valid.
    """
    errors: list[str] = []
    stops = {s.id: (i, s) for i, s in enumerate(problem.stops)}
    trucks = {t.id: t for t in problem.trucks}
    seen: dict[str, int] = {}
    for route in solution.routes:
        if route.truck_id not in trucks:
            errors.append(f"route of unknown truck {route.truck_id}")
            continue
        if sum(r.truck_id == route.truck_id for r in solution.routes) > 1:
            errors.append(f"truck {route.truck_id} has more than one route")
        for visit in route.visits:
            if visit != DISPOSAL:
                seen[visit] = seen.get(visit, 0) + 1
        errors += _check_route(problem, route, trucks[route.truck_id], stops)
    for stop_id in stops:
        times = seen.get(stop_id, 0) + solution.unassigned.count(stop_id)
        if times != 1:
            errors.append(f"stop {stop_id} is visited or listed {times} times, not once")
    errors += [f"unknown stop {s} visited" for s in seen if s not in stops]
    total = sum(r.distance_m for r in solution.routes)
    if total != solution.cost:
        errors.append(f"cost {solution.cost} is not the total distance {total}")
    return errors


def _check_route(problem: Problem, route: Route, truck: Truck, stops: dict) -> list[str]:
    errors: list[str] = []
    name = f"truck {truck.id}"
    if not (len(route.visits) == len(route.loads) == len(route.arrivals_s)):
        return [f"{name}: visits, loads and arrivals differ in length"]
    dist, dur = problem.distance_m, problem.duration_s
    here, clock, load, distance, trips = 0, route.start_s, 0, 0, 1
    for k, visit in enumerate(route.visits):
        if visit != DISPOSAL and visit not in stops:
            continue  # reported by the caller
        to = problem.disposal_index if visit == DISPOSAL else problem.index(stops[visit][0])
        distance += int(dist[here, to])
        clock += int(dur[here, to])
        if clock != route.arrivals_s[k]:
            errors.append(f"{name}: arrival at {visit} is {clock}, reported {route.arrivals_s[k]}")
        if visit == DISPOSAL:
            clock += problem.disposal_service_s
            load = 0
            trips += k < len(route.visits) - 1
        else:
            stop = stops[visit][1]
            if stop.fraction != truck.fraction:
                errors.append(f"{name} collects {truck.fraction!r}, stop {visit} is "
                              f"{stop.fraction!r}")  # fmt: skip
            if stop.tw is not None:
                clock = max(clock, stop.tw[0])
                if clock > stop.tw[1]:
                    errors.append(f"{name}: service at {visit} starts at {clock}, after its "
                                  f"window {stop.tw}")  # fmt: skip
            clock += stop.service_s
            load += stop.demand
            if load > truck.capacity:
                errors.append(f"{name}: load {load} after {visit} exceeds capacity "
                              f"{truck.capacity}")  # fmt: skip
        if load != route.loads[k]:
            errors.append(f"{name}: load after {visit} is {load}, reported {route.loads[k]}")
        here = to
    if problem.disposal is not None and route.visits and route.visits[-1] != DISPOSAL:
        errors.append(f"{name} returns to the garage without emptying at the disposal site")
    distance += int(dist[here, 0])
    clock += int(dur[here, 0])
    if truck.max_trips is not None and trips > truck.max_trips:
        errors.append(f"{name} makes {trips} trips, at most {truck.max_trips} allowed")
    if truck.shift_s is not None and clock - route.start_s > truck.shift_s:
        errors.append(f"{name}: shift of {clock - route.start_s} s exceeds {truck.shift_s} s")
    if route.start_s < 0:
        errors.append(f"{name} starts before the plan, at {route.start_s} s")
    if distance != route.distance_m:
        errors.append(f"{name}: distance is {distance} m, reported {route.distance_m}")
    if clock - route.start_s != route.duration_s:
        errors.append(f"{name}: duration is {clock - route.start_s} s, reported "
                      f"{route.duration_s}")  # fmt: skip
    return errors
