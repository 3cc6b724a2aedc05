"""A day's collection routes on the platform: the plan's bins, the fleet, the roads, PyVRP.

:func:`route_day` takes the bins the day's plan (:func:`waste.service.plan`) says to
empty, groups them by the disposal site that accepts their fraction (a
``disposal_site`` facility whose ``accepts`` lists it), and for each site builds a
:class:`waste.routing.Problem`: the garage (the ``depot`` facility), the site, the
bins, the fleet's trucks of those fractions, and driving distance and time over the
road layer (:mod:`waste.network`). The engine's solution is checked by
:func:`waste.routing.check_solution` before anything is stored.

Loads are in kg. A bin's load is its forecast fill at the visit times its
capacity times the fraction's density, the kg per litre of fill learnt from the
collections history (``sum(weight_kg) / sum(fill_before * capacity_l)``), else
:data:`DEFAULT_KG_PER_L`.

Stored as two open layers, replaced day by day in one transaction:
``waste_routes`` (one line per truck and day: stops in order, drawn from stop to
stop, with distance and duration driven along the roads, load, trips) and
``waste_route_stops`` (each visit: order, bin or disposal, arrival time, load on
board after it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from psycopg2.extras import execute_values

from layers import catalog
from layers.database import Database
from layers.errors import InvalidInput, NotFound
from waste.engines import PyVRPEngine
from waste.network import RoadNetwork, load_roads, matrices
from waste.routing import DISPOSAL, Problem, Solution, Stop, Truck, check_solution

log = logging.getLogger(__name__)

DEFAULT_KG_PER_L = 0.1
SERVICE_S = 90
DISPOSAL_S = 900
SHIFT_S = 8 * 3600
ROUTES, STOPS = "waste_routes", "waste_route_stops"


@dataclass(frozen=True)
class Site:
    """A facility: id, name, position (EPSG:25832) and accepted fractions."""

    id: str
    name: str
    x: float
    y: float
    accepts: frozenset[str]


def facilities(database: Database) -> tuple[Site, list[Site]]:
    """The garage and the disposal sites."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT facility_id, coalesce(name, facility_id), kind, accepts,"
                    " ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
                    " FROM data.waste_facilities ORDER BY facility_id")  # fmt: skip
        rows = cur.fetchall()
    sites = [(kind, Site(fid, name, x, y, frozenset(f for f in (accepts or "").split(",") if f)))
             for fid, name, kind, accepts, x, y in rows]  # fmt: skip
    depots = [s for kind, s in sites if kind == "depot"]
    if not depots:
        raise NotFound("no depot among the waste facilities", field="waste_facilities")
    return depots[0], [s for kind, s in sites if kind == "disposal_site"]


def densities(database: Database) -> dict[str, float]:
    """kg per litre of fill by fraction, from the collections history."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.waste_collections') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute("SELECT b.fraction, sum(c.weight_kg) / nullif(sum(c.fill_before * "
                    "b.capacity_l), 0) FROM data.waste_collections AS c JOIN data.waste_bins "
                    "AS b USING (bin_id) WHERE c.weight_kg > 0 AND c.fill_before > 0 "
                    "GROUP BY b.fraction")  # fmt: skip
        return {f: float(d) for f, d in cur.fetchall() if d}


def _fleet(database: Database) -> pd.DataFrame:
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT truck_id, fraction, capacity_kg FROM data.waste_fleet "
                    "WHERE capacity_kg > 0 ORDER BY truck_id")  # fmt: skip
        return pd.DataFrame(cur.fetchall(), columns=["truck_id", "fraction", "capacity_kg"])


def problems(
    database: Database, plan: dict[str, Any], net: RoadNetwork
) -> list[tuple[Site, Problem]]:
    """One routing problem per disposal site for the plan's bins (see the module notes)."""
    depot, disposals = facilities(database)
    fleet = _fleet(database)
    kg_per_l = densities(database)
    bins = pd.DataFrame(plan["bins"])
    if bins.empty:
        return []
    xy = _xy(database, bins["bin_id"].tolist())
    out = []
    for site in disposals:
        mine = bins[bins["fraction"].isin(site.accepts)]
        trucks = fleet[fleet["fraction"].isin(mine["fraction"].unique())]
        if mine.empty:
            continue
        missing = set(mine["fraction"]) - set(trucks["fraction"])
        if missing:
            raise InvalidInput(f"no truck collects {', '.join(sorted(missing))}", field="fleet")
        stops = [Stop(b.bin_id, *xy[b.bin_id], demand=int(np.ceil(
            min(b.fill_now, 1.0) * (b.capacity_l or 0) * kg_per_l.get(b.fraction, DEFAULT_KG_PER_L))),
            service_s=SERVICE_S, fraction=b.fraction) for b in mine.itertuples()]  # fmt: skip
        points = np.array([(depot.x, depot.y), (site.x, site.y), *[(s.x, s.y) for s in stops]])
        distance, duration = matrices(net, points)
        out.append((site, Problem(
            depot=(depot.x, depot.y), disposal=(site.x, site.y), stops=stops,
            trucks=[Truck(t.truck_id, int(t.capacity_kg), SHIFT_S, t.fraction)
                    for t in trucks.itertuples()],
            distance_m=distance, duration_s=duration, disposal_service_s=DISPOSAL_S)))  # fmt: skip
    unrouted = set(bins["fraction"]) - {f for s in disposals for f in s.accepts}
    if unrouted:
        log.warning("no disposal site accepts %s; those bins are not routed", sorted(unrouted))
    return out


def _xy(database: Database, bin_ids: list[str]) -> dict[str, tuple[float, float]]:
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT bin_id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
                    " FROM data.waste_bins WHERE bin_id = ANY(%s)", (bin_ids,))  # fmt: skip
        return {b: (x, y) for b, x, y in cur.fetchall()}


def route_day(database: Database, plan: dict[str, Any], *, seconds: float = 5.0,
              seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Route the plan's bins, check the routes, store them; returns a summary.

    Raises
    ------
    InvalidInput
        A fraction no truck collects, or routes that break a constraint (never stored).
    """
    net = RoadNetwork.from_lines(load_roads(database))
    solved = []
    for site, problem in problems(database, plan, net):
        solution = PyVRPEngine().solve(problem, seconds=seconds, seed=seed)
        faults = check_solution(problem, solution)
        if faults or not solution.feasible:
            raise InvalidInput(f"the routes to {site.name} break constraints: "
                               f"{'; '.join(faults[:3]) or 'infeasible'}", field="fleet")  # fmt: skip
        solved.append((site, problem, solution))
    store(database, plan, solved)
    return summary(plan["day"], solved)


def summary(day: str, solved: list[tuple[Site, Problem, Solution]]) -> dict[str, Any]:
    """Totals of a day's routes."""
    routes = [r for _, _, s in solved for r in s.routes if r.visits]
    return {
        "day": day,
        "routes": len(routes),
        "bins": sum(sum(v != DISPOSAL for v in r.visits) for r in routes),
        "unassigned": [u for _, _, s in solved for u in s.unassigned],
        "distance_km": round(sum(r.distance_m for r in routes) / 1000, 3),
        "duration_h": round(sum(r.duration_s for r in routes) / 3600, 3),
        "by_site": [{"site": site.name, "fractions": sorted({s.fraction for s in p.stops}),
                     "trucks": sum(1 for r in sol.routes if r.visits),
                     "distance_km": round(sol.cost / 1000, 3)} for site, p, sol in solved],
    }  # fmt: skip


_DDL = (
    """CREATE TABLE IF NOT EXISTS data.waste_routes (
        fid bigserial PRIMARY KEY, day date NOT NULL, truck_id text NOT NULL,
        fraction text, disposal_site text, stops integer NOT NULL, trips integer NOT NULL,
        load_kg double precision NOT NULL, distance_km double precision NOT NULL,
        duration_min double precision NOT NULL, start_time timestamptz, end_time timestamptz,
        geom geometry(LineString, 25832) NOT NULL,
        _source text NOT NULL DEFAULT 'geoby waste routes', _record text NOT NULL DEFAULT '',
        _loaded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (day, truck_id))""",
    """CREATE TABLE IF NOT EXISTS data.waste_route_stops (
        fid bigserial PRIMARY KEY, day date NOT NULL, truck_id text NOT NULL,
        stop_order integer NOT NULL, trip integer NOT NULL, bin_id text, kind text NOT NULL,
        arrival timestamptz NOT NULL, load_after_kg double precision NOT NULL,
        geom geometry(Point, 25832) NOT NULL,
        _source text NOT NULL DEFAULT 'geoby waste routes', _record text NOT NULL DEFAULT '',
        _loaded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (day, truck_id, stop_order))""",
    "CREATE INDEX IF NOT EXISTS waste_routes_geom_idx ON data.waste_routes USING gist (geom)",
    "CREATE INDEX IF NOT EXISTS waste_route_stops_geom_idx ON data.waste_route_stops "
    "USING gist (geom)",
)


def store(database: Database, plan: dict[str, Any],
          solved: list[tuple[Site, Problem, Solution]]) -> None:  # fmt: skip
    """Replace the day's routes and stops (one transaction) and register both layers."""
    start = pd.Timestamp(plan["visit"])
    route_rows, stop_rows = [], []
    for site, problem, solution in solved:
        where = {s.id: (s.x, s.y) for s in problem.stops} | {DISPOSAL: problem.disposal}
        for route in solution.routes:
            if not route.visits:
                continue
            trips = sum(v == DISPOSAL for v in route.visits)
            line = shapely.LineString([problem.depot, *(where[v] for v in route.visits),
                                       problem.depot])  # fmt: skip
            fraction = next((t.fraction for t in problem.trucks if t.id == route.truck_id), None)
            loads = [load for load, v in zip(route.loads, route.visits, strict=True)
                     if v != DISPOSAL] or [0]  # fmt: skip
            collected = sum(s.demand for s in problem.stops if s.id in set(route.visits))
            route_rows.append((
                plan["day"], route.truck_id, fraction, site.name, len(route.visits) - trips,
                trips, float(collected), route.distance_m / 1000, route.duration_s / 60,
                start + pd.Timedelta(seconds=route.start_s),
                start + pd.Timedelta(seconds=route.start_s + route.duration_s), line.wkb,
                f"{plan['day']}/{route.truck_id}"))  # fmt: skip
            trip = 1
            for order, (v, load, at) in enumerate(zip(route.visits, route.loads,
                                                      route.arrivals_s, strict=True), 1):  # fmt: skip
                stop_rows.append((plan["day"], route.truck_id, order, trip,
                                  None if v == DISPOSAL else v,
                                  "disposal" if v == DISPOSAL else "bin",
                                  start + pd.Timedelta(seconds=at), float(load),
                                  shapely.Point(where[v]).wkb,
                                  f"{plan['day']}/{route.truck_id}/{order}"))  # fmt: skip
                trip += v == DISPOSAL
            del loads
    with database.connection("ingest") as conn, conn.cursor() as cur:
        for ddl in _DDL:
            cur.execute(ddl)
        cur.execute("DELETE FROM data.waste_route_stops WHERE day = %s", (plan["day"],))
        cur.execute("DELETE FROM data.waste_routes WHERE day = %s", (plan["day"],))
        if route_rows:
            execute_values(cur, "INSERT INTO data.waste_routes (day, truck_id, fraction, "
                           "disposal_site, stops, trips, load_kg, distance_km, duration_min, "
                           "start_time, end_time, geom, _record) VALUES %s", route_rows,
                           template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                                    "ST_GeomFromWKB(%s, 25832), %s)")  # fmt: skip
        if stop_rows:
            execute_values(cur, "INSERT INTO data.waste_route_stops (day, truck_id, stop_order,"
                           " trip, bin_id, kind, arrival, load_after_kg, geom, _record) VALUES %s",
                           stop_rows, template="(%s, %s, %s, %s, %s, %s, %s, %s, "
                                               "ST_GeomFromWKB(%s, 25832), %s)")  # fmt: skip
        for layer_id, title, geometry, text in (
            (ROUTES, "Collection routes", "LineString",
             "One line per truck and day through its stops in order (drawn stop to stop; "
             "distance and duration driven along the roads), load, trips to empty."),
            (STOPS, "Collection route stops", "Point",
             "Each visit of a route: order, bin or disposal site, arrival, load on board after."),
        ):  # fmt: skip
            catalog.register(conn, catalog.Layer(
                id=layer_id, title=title, description=text, theme="waste", kind="vector",
                table_schema="data", table_name=layer_id, geometry_type=geometry,
                keywords=["waste", "routes"]))  # fmt: skip
            catalog.refresh_statistics(conn, layer_id)


def stored(database: Database, day: str | None = None) -> dict[str, Any]:
    """The stored routes and stops of ``day`` (default the latest day routed), as GeoJSON
    in CRS84."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.waste_routes') IS NOT NULL")
        if not cur.fetchone()[0]:
            raise NotFound("no routes yet: POST /api/waste/routes", field="day")
        if day is None:
            cur.execute("SELECT max(day)::text FROM data.waste_routes")
            day = cur.fetchone()[0]
        cur.execute("SELECT truck_id, fraction, disposal_site, stops, trips, load_kg, "
                    "distance_km, duration_min, start_time, end_time, "
                    "ST_AsGeoJSON(ST_Transform(geom, 4326), 7) FROM data.waste_routes "
                    "WHERE day = %s ORDER BY truck_id", (day,))  # fmt: skip
        routes = cur.fetchall()
        cur.execute("SELECT truck_id, stop_order, trip, bin_id, kind, arrival, load_after_kg, "
                    "ST_AsGeoJSON(ST_Transform(geom, 4326), 7) FROM data.waste_route_stops "
                    "WHERE day = %s ORDER BY truck_id, stop_order", (day,))  # fmt: skip
        stops = cur.fetchall()
    if not routes:
        raise NotFound(f"no routes stored for {day}", field="day")
    route_keys = ("truck_id", "fraction", "disposal_site", "stops", "trips", "load_kg",
                  "distance_km", "duration_min", "start_time", "end_time")  # fmt: skip
    stop_keys = ("truck_id", "order", "trip", "bin_id", "kind", "arrival", "load_after_kg")
    return {"day": day, "routes": _collection(routes, route_keys),
            "stops": _collection(stops, stop_keys)}  # fmt: skip


def _collection(rows: list[tuple], keys: tuple[str, ...]) -> dict[str, Any]:
    import json

    features = []
    for row in rows:
        props = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                 for k, v in zip(keys, row[:-1], strict=True)}  # fmt: skip
        features.append({"type": "Feature", "geometry": json.loads(row[-1]), "properties": props})
    return {"type": "FeatureCollection", "features": features}
