"""CVRPLIB and TSPLIB instances as routing problems, to hold the engine to the literature.

:func:`read_problem` reads a ``.vrp`` file with the ``vrplib`` package into a
:class:`waste.routing.Problem`: the depot is the garage, every other node a stop
(id: its number in the ``.sol`` convention, 1 for the first node after the depot),
no disposal site, as many single-trip trucks as there are stops (the literature
does not fix the fleet). Distances are the instance's edge weights; for
``EUC_2D`` they are Euclidean distances rounded to the nearest integer, as the
CVRPLIB set X counts them. A TSPLIB instance (no demands) is one truck.

:func:`solve_instance` solves one with an engine, checks the result with
:func:`waste.routing.check_solution`, and compares its cost with the best known
one (given, or read from the ``.sol`` next to the instance).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layers.errors import InvalidInput, NotFound
from waste.routing import Problem, RoutingEngine, Solution, Stop, Truck, check_solution

log = logging.getLogger(__name__)


def read_problem(path: str | Path) -> Problem:
    """The instance at ``path`` (``.vrp``, VRPLIB format) as a problem.

    Raises
    ------
    NotFound
        No such file.
    InvalidInput
        A file ``vrplib`` cannot read, or one with several depots.
    """
    import vrplib

    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no instance file {path}", field="instance")
    try:
        data = vrplib.read_instance(path)
    except Exception as exc:  # vrplib raises bare ValueErrors, KeyErrors, IndexErrors
        raise InvalidInput(f"{path.name} is not a VRPLIB instance: {exc}", field="instance",
                           record=path.name) from exc  # fmt: skip
    depots = np.atleast_1d(data.get("depot", [0]))
    if len(depots) != 1:
        raise InvalidInput(f"{path.name} has {len(depots)} depots; one is supported",
                           field="depot", record=path.name)  # fmt: skip
    weights = np.asarray(data["edge_weight"], dtype=float)
    if data.get("edge_weight_type") in ("EUC_2D", "EXACT_2D", None):
        weights = np.rint(weights)
    n = weights.shape[0]
    order = np.r_[depots[0], np.delete(np.arange(n), depots[0])]
    weights = weights[np.ix_(order, order)]
    coords = np.asarray(data.get("node_coord", np.zeros((n, 2))), dtype=float)[order]
    demand = np.asarray(data.get("demand", np.zeros(n)), dtype=np.int64)[order]
    service = np.asarray(data.get("service_time", np.zeros(n)), dtype=float)
    service = np.broadcast_to(service, (n,))[order]
    stops = [Stop(str(i), coords[i, 0], coords[i, 1], int(demand[i]), int(round(service[i])))
             for i in range(1, n)]  # fmt: skip
    if "capacity" in data:
        trucks = [Truck(f"v{k + 1}", int(data["capacity"]), max_trips=1) for k in range(n - 1)]
    else:
        trucks = [Truck("v1", int(demand.sum()) + 1, max_trips=1)]
    log.info("read %s: %d stops, %d trucks", path.name, len(stops), len(trucks))
    return Problem(depot=tuple(coords[0]), disposal=None, stops=stops, trucks=trucks,
                   distance_m=weights, duration_s=weights)  # fmt: skip


def best_known(path: str | Path) -> tuple[int, list[list[str]]] | None:
    """Stated cost and routes (stop ids) of the ``.sol`` file next to the instance,
    or ``None`` where there is none."""
    import vrplib

    sol = Path(path).with_suffix(".sol")
    if not sol.is_file():
        return None
    data = vrplib.read_solution(sol)
    return int(round(float(data["cost"]))), [[str(c) for c in r] for r in data["routes"]]


def route_cost(problem: Problem, visits: list[str]) -> int:
    """Length of the closed tour garage, ``visits`` (stop ids), garage."""
    where = {s.id: problem.index(i) for i, s in enumerate(problem.stops)}
    path = [0, *(where[v] for v in visits), 0]
    return int(problem.distance_m[path[:-1], path[1:]].sum())


@dataclass
class Outcome:
    """A solved instance: the solution, its check, and the gap to the best known."""

    instance: str
    engine: str
    solution: Solution
    violations: list[str]
    seconds: float
    best_known: int | None

    @property
    def gap(self) -> float | None:
        """(cost - best known) / best known, or ``None`` without a best known cost."""
        if not self.best_known:
            return None
        return (self.solution.cost - self.best_known) / self.best_known


def solve_instance(
    path: str | Path,
    engine: RoutingEngine,
    *,
    seconds: float,
    seed: int = 0,
    best_known_cost: int | None = None,
) -> Outcome:
    """Read, solve and check one instance.

    Parameters
    ----------
    path
        The ``.vrp`` file.
    engine
        The engine, e.g. :class:`waste.engines.PyVRPEngine`.
    seconds, seed
        Time limit and seed of the engine.
    best_known_cost
        Cost to compare with; by default the cost in the ``.sol`` next to ``path``.
    """
    if not (np.isfinite(seconds) and seconds > 0):
        raise InvalidInput(f"seconds must be positive, got {seconds!r}", field="seconds")
    problem = read_problem(path)
    if best_known_cost is None:
        known = best_known(path)
        best_known_cost = known[0] if known is not None else None
    started = time.perf_counter()
    solution = engine.solve(problem, seconds=seconds, seed=seed)
    elapsed = time.perf_counter() - started
    return Outcome(Path(path).stem, engine.name, solution, check_solution(problem, solution),
                   elapsed, best_known_cost)  # fmt: skip
