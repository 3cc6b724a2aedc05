"""Collection routing: the checker, the PyVRP engine with disposal trips, and CVRPLIB.

Every solution is judged by :func:`check_solution`, which re-walks each route from
the problem alone; the checker itself is shown to catch each broken rule. The
engine's routes are compared with optima found by brute force on tiny cases and
with the best-known cost of CVRPLIB X-n439-k37.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from click.testing import CliRunner

from layers.errors import InvalidInput
from waste.engines import NearestNeighbourEngine, PyVRPEngine
from waste.routing import DISPOSAL, Problem, Solution, Stop, Truck, check_solution
from waste.vrplib_ import best_known, read_problem, route_cost, solve_instance


def euclid(xy: np.ndarray) -> np.ndarray:
    return np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))


def town_problem(n: int = 50, seed: int = 3) -> Problem:
    """Two fractions, a disposal site, windows on every fifth bin, 6 h shifts."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 4000, (n + 2, 2))
    stops = [Stop(f"b{i}", *xy[i + 2], int(rng.integers(5, 30)), 60,
                  (3600, 10800) if i % 5 == 0 else None, "rest" if i % 3 else "paper")
             for i in range(n)]  # fmt: skip
    trucks = [Truck(f"t{k}", 100, 6 * 3600, "rest" if k < 3 else "paper") for k in range(5)]
    distance = euclid(xy)
    return Problem(tuple(xy[0]), tuple(xy[1]), stops, trucks, distance, distance / 8.0,
                   disposal_service_s=600)  # fmt: skip


@pytest.fixture(scope="module")
def town() -> tuple[Problem, Solution]:
    problem = town_problem()
    return problem, PyVRPEngine(iterations=1500).solve(problem, seconds=10, seed=1)


def test_pyvrp_routes_keep_every_rule_and_empty_when_full(town):
    problem, solution = town
    assert check_solution(problem, solution) == [] and solution.feasible
    assert sorted(v for r in solution.routes for v in r.visits if v != DISPOSAL) == sorted(
        s.id for s in problem.stops)  # fmt: skip
    assert all(r.visits[-1] == DISPOSAL for r in solution.routes)
    # 1,000+ units of rest on three 100-unit trucks: they must empty mid-shift
    assert max(r.visits.count(DISPOSAL) for r in solution.routes) > 2
    baseline = NearestNeighbourEngine().solve(problem, seconds=0)
    assert check_solution(problem, baseline) == []
    assert solution.cost < baseline.cost


def test_same_seed_same_routes(town):
    problem, solution = town
    again = PyVRPEngine(iterations=1500).solve(problem, seconds=10, seed=1)
    assert [r.visits for r in again.routes] == [r.visits for r in solution.routes]


def _broken(solution: Solution, **changes) -> Solution:
    route = dataclasses.replace(solution.routes[0], **changes)
    return dataclasses.replace(solution, routes=[route, *solution.routes[1:]])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, s: _broken(s, visits=s.routes[0].visits[1:], loads=s.routes[0].loads[1:],
                              arrivals_s=s.routes[0].arrivals_s[1:]), "visited or listed 0"),
        (lambda p, s: dataclasses.replace(s, routes=[*s.routes, s.routes[0]]), "more than one"),
        (lambda p, s: _broken(s, visits=[v for v in s.routes[0].visits if v != DISPOSAL]),
         "differ in length"),
        (lambda p, s: _broken(s, distance_m=s.routes[0].distance_m - 1), "distance is"),
        (lambda p, s: dataclasses.replace(s, cost=s.cost - 1), "not the total distance"),
        (lambda p, s: _broken(s, visits=s.routes[0].visits[:-1], loads=s.routes[0].loads[:-1],
                              arrivals_s=s.routes[0].arrivals_s[:-1]), "without emptying"),
        (lambda p, s: dataclasses.replace(s, routes=[dataclasses.replace(
            s.routes[0], truck_id=next(r.truck_id for r in s.routes if r.truck_id >= "t3"))]),
         "collects"),
    ],
)  # fmt: skip
def test_checker_catches_each_broken_rule(town, change, message):
    problem, solution = town
    assert any(message in e for e in check_solution(problem, change(problem, solution)))


def test_checker_catches_overload_late_service_and_long_shift(town):
    problem, solution = town
    stops = {s.id: s for s in problem.stops}
    route = max(solution.routes, key=lambda r: r.visits.count(DISPOSAL))
    smaller = dataclasses.replace(problem, trucks=[
        dataclasses.replace(t, capacity=max(route.loads) - 1, shift_s=route.duration_s - 1)
        if t.id == route.truck_id else t for t in problem.trucks])  # fmt: skip
    errors = check_solution(smaller, solution)
    assert any("exceeds capacity" in e for e in errors)
    assert any("exceeds" in e and "shift" in e for e in errors)
    first = next(v for v in route.visits if v != DISPOSAL)
    stops[first] = dataclasses.replace(stops[first], tw=(0, 0))
    narrow = dataclasses.replace(problem, stops=[stops[s.id] for s in problem.stops])
    assert any("after its window" in e for e in check_solution(narrow, solution))


def test_full_truck_empties_between_stops_on_the_shortest_tour():
    # Three 6-unit bins, 10-unit trucks: a truck must empty after each bin. (With a
    # single truck PyVRP 0.14 keeps the first trip it built, 11 % longer: a fleet of two.)
    xy = np.array([[0, 0], [1000, 0], [200, 300], [900, 400], [500, -600]], float)
    stops = [Stop(name, *xy[i + 2], 6) for i, name in enumerate("abc")]
    distance = euclid(xy)
    trucks = [Truck("t1", 10), Truck("t2", 10)]
    problem = Problem((0, 0), (1000, 0), stops, trucks, distance, distance)
    solution = PyVRPEngine(iterations=200).solve(problem, seconds=5, seed=0)
    d = problem.distance_m
    best = min(
        d[0, a] + d[a, 1] + sum(d[1, b] + d[b, 1] for b in (2, 3, 4) if b != a) + d[1, 0]
        for a in (2, 3, 4)
    )
    # garage, first bin, then each other bin out and back from the site, home
    assert check_solution(problem, solution) == []
    assert [r.visits.count(DISPOSAL) for r in solution.routes] == [3] and solution.cost == best


def test_trip_limit_and_windows_are_kept():
    xy = np.array([[0, 0], [0, 500], [100, 0], [200, 0], [300, 0], [400, 0]], float)
    stops = [Stop("a", 100, 0, 5, tw=(1000, 1200)), Stop("b", 200, 0, 5),
             Stop("c", 300, 0, 5), Stop("d", 400, 0, 5)]  # fmt: skip
    distance = euclid(xy)
    trucks = [Truck("t1", 10, max_trips=1), Truck("t2", 10, max_trips=1)]
    problem = Problem((0, 0), (0, 500), stops, trucks, distance, distance)
    solution = PyVRPEngine(iterations=300).solve(problem, seconds=5, seed=0)
    assert check_solution(problem, solution) == [] and len(solution.routes) == 2
    route_a = next(r for r in solution.routes if "a" in r.visits)
    service = max(route_a.arrivals_s[route_a.visits.index("a")], 1000)
    assert 1000 <= service <= 1200


def test_bad_problems_name_the_fault():
    distance = np.zeros((3, 3))
    with pytest.raises(InvalidInput, match="stop big"):
        Problem((0, 0), None, [Stop("a", 0, 0, 1), Stop("big", 0, 0, 50)], [Truck("t", 10)],
                distance, distance)  # fmt: skip
    with pytest.raises(InvalidInput, match="fraction 'glass'"):
        Problem((0, 0), None, [Stop("a", 0, 0, 1), Stop("g", 0, 0, 1, fraction="glass")],
                [Truck("t", 10)], distance, distance)  # fmt: skip
    with pytest.raises(InvalidInput, match="3 x 3"):
        Problem((0, 0), None, [Stop("a", 0, 0, 1), Stop("b", 0, 0, 1)], [Truck("t", 10)],
                np.zeros((2, 2)), distance)  # fmt: skip
    with pytest.raises(InvalidInput, match="no time after the final"):
        far = np.full((3, 3), 100.0)
        PyVRPEngine().solve(Problem((0, 0), (1, 1), [Stop("a", 0, 0, 1)], [Truck("t", 10, 150)],
                                    far, far, disposal_service_s=60), seconds=1)  # fmt: skip


X = "cvrplib/X-n439-k37.vrp"


def test_best_known_x_n439_recomputes_to_its_stated_cost(shared_data):
    problem = read_problem(shared_data / X)
    cost, routes = best_known(shared_data / X)
    demand = {s.id: s.demand for s in problem.stops}
    assert cost == 36391 == sum(route_cost(problem, r) for r in routes)
    assert sorted(v for r in routes for v in r) == sorted(demand)
    assert max(sum(demand[v] for v in r) for r in routes) <= problem.trucks[0].capacity


def test_x_n439_in_a_few_seconds_is_valid_and_within_5_percent(shared_data):
    outcome = solve_instance(shared_data / X, PyVRPEngine(), seconds=4, seed=0)
    assert outcome.violations == [] and outcome.solution.feasible
    assert outcome.best_known == 36391 and 0 <= outcome.gap < 0.05


TINY = """NAME : tiny
TYPE : CVRP
DIMENSION : 5
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
1 0 0
2 0 10
3 1 10
4 0 -10
5 1 -10
DEMAND_SECTION
1 0
2 5
3 5
4 5
5 5
DEPOT_SECTION
1
-1
EOF
"""


def test_tiny_instance_optimum_and_cli(tmp_path):
    from api.cli.waste import waste

    path = tmp_path / "tiny.vrp"
    path.write_text(TINY)
    # Two out-and-back routes: 10 + 1 + round(sqrt(101)) = 21 each
    outcome = solve_instance(path, PyVRPEngine(iterations=200), seconds=5, best_known_cost=42)
    assert outcome.violations == [] and outcome.solution.cost == 42 and outcome.gap == 0
    result = CliRunner().invoke(waste, ["solve", str(path), "--seconds", "1", "--best-known",
                                        "42"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cost 42, 2 routes, gap +0.00% to 42" in result.output
    bad = tmp_path / "bad.vrp"
    bad.write_text("NAME : bad\nTYPE : CVRP\nDIMENSION : x\n")
    with pytest.raises(InvalidInput, match="bad.vrp"):
        read_problem(bad)
