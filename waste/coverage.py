"""Recycling-station coverage: which homes have a station within walking distance, by
fraction, over the road and path network; and where new stations would cover most.

Walking distance is measured along the network, not as the crow flies: each home
and each station is joined to its nearest network vertex (the straight join
counts too), and the distance from every vertex to the nearest station that takes
a fraction is one multi-source Dijkstra (:func:`scipy.sparse.csgraph.dijkstra`).
Motorways are not walked. Homes are the buildings whose use is residential or a
holiday home, one address each.

Siting new stations is the maximal covering location problem (Church and ReVelle
1974), solved exactly by spopt's ``MCLP`` (integer programme, CBC): the existing
stations are kept, ``budget`` new ones are chosen among candidate sites (network
vertices where three or more streets meet, thinned to one per ``spacing_m``) to
cover as many homes as possible within the walking distance.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from layers.database import Database
from layers.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

HOME_USES = ("residential", "holiday_home")
NOT_WALKED = ("motorway", "motorway_link", "trunk")
DEFAULT_WALK_M = 400.0
_NM = 1e-9


@dataclass(frozen=True)
class Walkways:
    """The walking network as a sparse graph over its vertices (EPSG:25832 metres)."""

    xy: np.ndarray  # (n, 2)
    graph: sparse.csr_matrix

    @classmethod
    def from_lines(cls, lines: gpd.GeoSeries) -> Walkways:
        """Lines are noded where they cross (a walker turns at any crossing); vertices
        shared to 1 cm are junctions; each segment is an edge."""
        parts = shapely.get_parts(shapely.union_all(np.asarray(lines.geometry.values)))
        coords, index = shapely.get_coordinates(parts, return_index=True)
        if len(coords) < 2:
            raise InvalidInput("no walkable roads or paths", field="roads")
        keys = np.round(coords[:, :2] * 100).astype(np.int64)
        unique, node = np.unique(keys, axis=0, return_inverse=True)
        node = node.ravel()
        same = index[1:] == index[:-1]
        a, b = node[:-1][same], node[1:][same]
        length = np.hypot(*(coords[1:, :2] - coords[:-1, :2])[same].T)
        keep = a != b
        n = len(unique)
        graph = sparse.coo_matrix((length[keep], (a[keep], b[keep])), shape=(n, n)).tocsr()
        graph = graph.maximum(graph.T)  # walking is both ways
        return cls(unique / 100.0, graph.tocsr())

    def snap(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest vertex of each point and the straight distance to it."""
        distance, vertex = cKDTree(self.xy).query(points)
        return vertex, distance

    def distance_to_nearest(self, points: np.ndarray) -> np.ndarray:
        """Walking distance from every vertex to the nearest of ``points`` (inf: none)."""
        n = self.xy.shape[0]
        if len(points) == 0:
            return np.full(n, np.inf)
        vertex, access = self.snap(points)
        # A virtual source joined to each station's vertex by its access walk.
        rows = np.full(len(vertex), n)
        # (+1 nm: a sparse matrix drops zero weights, a station on its vertex has access 0)
        extra = sparse.coo_matrix((access + _NM, (rows, vertex)), shape=(n + 1, n + 1))
        grown = sparse.bmat([[self.graph, None], [None, sparse.csr_matrix((1, 1))]]).tocsr()
        return dijkstra(grown + extra.tocsr(), directed=True, indices=n)[:n] - _NM


def _read(database: Database, query: str, params: tuple = ()) -> gpd.GeoDataFrame:
    """Rows of ``query`` whose last column is ``ST_AsBinary(geom)``, in EPSG:25832."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute(query, params)
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=names)
    geoms = shapely.from_wkb([bytes(g) for g in frame.pop(names[-1])]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs=25832)


def homes(database: Database) -> gpd.GeoDataFrame:
    """Residential buildings and holiday homes as points (their representative point)."""
    frame = _read(database, "SELECT building_id, use, address, "
                  "ST_AsBinary(ST_PointOnSurface(geom)) FROM data.energy_buildings "
                  "WHERE use LIKE 'residential%%' OR use = 'holiday_home' ORDER BY fid")  # fmt: skip
    if frame.empty:
        raise NotFound("no homes: ingest buildings with a residential use first", field="homes")
    return frame


def stations(database: Database) -> gpd.GeoDataFrame:
    """Recycling stations with their fractions as a list."""
    frame = _read(database, "SELECT site_id, name, fractions, ST_AsBinary(ST_PointOnSurface(geom))"
                  " FROM data.waste_recycling_stations ORDER BY site_id")  # fmt: skip
    frame["fraction_list"] = [
        [f for f in str(v or "").split(",") if f] for v in frame["fractions"]
    ]  # fmt: skip
    return frame


def walkways(database: Database) -> Walkways:
    """The road network without motorways."""
    roads = _read(database, "SELECT ST_AsBinary(geom) FROM data.water_roads WHERE road_class "
                  "IS NULL OR NOT road_class = ANY(%s) ORDER BY fid", (list(NOT_WALKED),))  # fmt: skip
    return Walkways.from_lines(roads.geometry)


def coverage(
    net: Walkways,
    home_points: gpd.GeoDataFrame,
    station_points: gpd.GeoDataFrame,
    *,
    walk_m: float = DEFAULT_WALK_M,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per fraction, the share of homes with a station of it within ``walk_m``.

    Returns
    -------
    (summary, per_home)
        ``summary``: fraction, stations, homes, covered, share; ``per_home``: one row per
        home and fraction with its walking distance (m) to the nearest such station.
    """
    if not (np.isfinite(walk_m) and walk_m > 0):
        raise InvalidInput(f"walking distance must be positive, got {walk_m!r}", field="walk_m")
    xy = shapely.get_coordinates(home_points.geometry.values)
    vertex, access = net.snap(xy)
    fractions = sorted({f for fs in station_points["fraction_list"] for f in fs})
    rows, per_home = [], []
    for fraction in fractions:
        chosen = station_points[[fraction in fs for fs in station_points["fraction_list"]]]
        to_station = net.distance_to_nearest(shapely.get_coordinates(chosen.geometry.values))
        walk = access + to_station[vertex]
        covered = walk <= walk_m
        rows.append({"fraction": fraction, "stations": len(chosen), "homes": len(walk),
                     "covered": int(covered.sum()), "share": float(covered.mean())})  # fmt: skip
        per_home.append(pd.DataFrame({"building_id": home_points["building_id"].to_numpy(),
                                      "fraction": fraction, "walk_m": walk,
                                      "covered": covered}))  # fmt: skip
    return pd.DataFrame(rows), pd.concat(per_home, ignore_index=True) if per_home else (
        pd.DataFrame(columns=["building_id", "fraction", "walk_m", "covered"]))  # fmt: skip


def candidate_sites(net: Walkways, spacing_m: float = 100.0) -> np.ndarray:
    """Junction vertices (three or more streets), at most one per ``spacing_m`` square."""
    degree = np.diff(net.graph.indptr)
    junctions = np.flatnonzero(degree >= 3)
    cells = np.floor(net.xy[junctions] / spacing_m).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    return junctions[np.sort(first)]


def propose_stations(
    net: Walkways,
    home_points: gpd.GeoDataFrame,
    station_points: gpd.GeoDataFrame,
    budget: int,
    *,
    walk_m: float = DEFAULT_WALK_M,
    spacing_m: float = 100.0,
) -> dict:
    """Where ``budget`` new stations (taking every fraction) cover the most homes.

    Returns
    -------
    dict
        ``sites`` (x, y of the chosen new stations in EPSG:25832, and the homes each newly
        covers), ``covered_before``, ``covered_after``, ``homes``, ``candidates``.
    """
    from pulp import PULP_CBC_CMD
    from spopt.locate import MCLP

    if budget < 1:
        raise InvalidInput("the budget is at least one station", field="budget")
    xy = shapely.get_coordinates(home_points.geometry.values)
    home_vertex, home_access = net.snap(xy)
    existing_vertex, existing_access = net.snap(
        shapely.get_coordinates(station_points.geometry.values)
    )
    candidates = candidate_sites(net, spacing_m)
    sites = np.concatenate([existing_vertex, candidates])
    site_access = np.concatenate([existing_access, np.zeros(len(candidates))])
    cost = dijkstra(net.graph, directed=False, indices=sites, limit=walk_m)  # (sites, vertices)
    matrix = (cost[:, home_vertex] + site_access[:, None] + home_access[None, :]).T
    matrix = np.where(np.isfinite(matrix), matrix, 10 * walk_m)
    fixed = np.r_[np.ones(len(existing_vertex), int), np.zeros(len(candidates), int)]
    with warnings.catch_warnings():  # spopt uses PuLP API deprecated for PuLP 4 (pinned < 4)
        warnings.simplefilter("ignore", DeprecationWarning)
        model = MCLP.from_cost_matrix(matrix, np.ones(len(xy)), service_radius=walk_m,
                                      p_facilities=len(existing_vertex) + budget,
                                      predefined_facilities_arr=fixed)  # fmt: skip
        model = model.solve(PULP_CBC_CMD(msg=False, timeLimit=60))
    chosen = [j for j in range(len(existing_vertex), len(sites)) if _open(model, j)]
    before = (matrix[:, : len(existing_vertex)] <= walk_m).any(axis=1)
    after = before | (matrix[:, chosen] <= walk_m).any(axis=1) if chosen else before
    new = [{"x": float(net.xy[sites[j], 0]), "y": float(net.xy[sites[j], 1]),
            "newly_covered": int(((matrix[:, j] <= walk_m) & ~before).sum())} for j in chosen]  # fmt: skip
    return {"homes": len(xy), "candidates": len(candidates), "covered_before": int(before.sum()),
            "covered_after": int(after.sum()), "sites": new, "walk_m": walk_m}  # fmt: skip


def _open(model, j: int) -> bool:  # noqa: ANN001 - spopt's model
    var = model.fac_vars[j]
    return bool(var.value() and var.value() > 0.5)
