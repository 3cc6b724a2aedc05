"""The sewer network: gravity pipes under the streets with falling inverts.

Foul and combined sewers drain along the streets to the wastewater plant,
storm sewers to outfalls at the streams and the sea. Each network is a
shortest-path tree over the roads (stepping uphill away from the outlet is
penalised, so flow mostly runs downhill); streets not on the tree get a branch
that starts at a top manhole at one end and drains to the other. Reaches are
cut into pipes of at most 80 m between manholes. Inverts are set from the
leaves down: at least 1.2 m of cover over the pipe crown everywhere along the
pipe (checked at quarter points against the terrain), and never less than the
minimum fall of 2-3 per mille. Where a manhole would lie deeper than 6 m it
becomes a pumping station that lifts the flow back to a shallow outgoing pipe
(modelled as a gravity pipe; pressure mains are not distinguished).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, Point
from shapely.ops import substring, unary_union
from shapely.prepared import prep

from ingest.sample import plan
from ingest.sample.roads import Roads
from ingest.sample.seeding import rng_for
from ingest.sample.terrain import TerrainModel

logger = logging.getLogger(__name__)

COVER_M = 1.2
MAX_PIPE_M = 80.0
MAX_DEPTH_M = 6.0
STORM_SHIFT = (1.2, -0.9)  # storm pipes run beside the foul ones
_MIN_FALL = {"foul": 0.003, "combined": 0.002, "storm": 0.002}
_MATERIALS = {
    "combined": {"concrete": 0.6, "vitrified_clay": 0.3, "PVC": 0.1},
    "foul": {"PVC": 0.55, "PP": 0.3, "vitrified_clay": 0.15},
    "storm": {"concrete": 0.65, "PP": 0.35},
}


@dataclass
class Sewers:
    """Pipes and manholes in local metres (see :func:`build_sewers`)."""

    pipes: gpd.GeoDataFrame
    manholes: gpd.GeoDataFrame


def _diameter(system: str, upstream_m: float) -> int:
    if system == "foul":
        steps = ((600, 200), (2000, 250), (5000, 315), (10000, 400))
        default = 500
    else:
        steps = ((300, 300), (1000, 400), (2500, 600), (6000, 800))
        default = 1000 if system == "storm" else 1200
    for limit, size in steps:
        if upstream_m < limit:
            return size
    return default


def _outfalls(model: TerrainModel) -> list[tuple[float, float]]:
    """Storm outfalls: two on the streams, two at the sea."""
    out = []
    for stream, u in zip(model.streams, (2500.0, 2620.0), strict=True):
        i = int(np.argmin(np.abs(stream.line[:, 0] - u)))
        out.append((float(stream.line[i, 0]), float(stream.line[i, 1]) - 12.0))
    out.append((3175.0, 1995.0))
    out.append((float(plan.coast_u(3400.0)) - 50.0, 3400.0))
    return out


def _reaches(
    roads: Roads,
    network: np.ndarray,
    parent: np.ndarray,
    via: np.ndarray,
    heights: np.ndarray,
) -> list[tuple[LineString, int]]:
    """Flow-oriented lines for the edges of one network, with their edge."""
    graph = roads.graph
    tree_child = {int(via[n]): n for n in range(len(via)) if via[n] >= 0}
    out: list[tuple[LineString, int]] = []
    for e in np.flatnonzero(network):
        line = roads.segments.geometry.iloc[e]
        a, b = graph.edges[e]
        if e in tree_child:
            child = tree_child[e]
            out.append((line if child == a else line.reverse(), int(e)))
            continue
        # Not on the tree: a branch from a top manhole near the higher end.
        if line.length < 10.0:
            continue
        lo_first = heights[a] <= heights[b]
        branch = (
            substring(line, 0.0, line.length - 3.0)
            if lo_first
            else substring(line, 3.0, line.length)
        )
        out.append((branch.reverse() if lo_first else branch, int(e)))
    return out


def _pieces(line: LineString) -> list[LineString]:
    n = max(1, int(np.ceil(line.length / MAX_PIPE_M)))
    step = line.length / n
    return [substring(line, i * step, (i + 1) * step) for i in range(n)]


def _network(
    model: TerrainModel,
    lines: list[tuple[LineString, str]],
    rng: np.random.Generator,
    prefix: str,
    outlet_kind: str,
) -> tuple[list[dict], list[dict]]:
    """Pipes and manholes of one network from its flow-oriented reaches."""
    pipes = [(p, system) for line, system in lines if line.length > 0.5 for p in _pieces(line)]
    index: dict[tuple[float, float], int] = {}
    ends = np.empty((len(pipes), 2), dtype=np.int64)
    for i, (p, _) in enumerate(pipes):
        for j, xy in enumerate(shapely.get_coordinates(p)[[0, -1]]):
            ends[i, j] = index.setdefault(
                (round(float(xy[0]), 2), round(float(xy[1]), 2)), len(index)
            )
    pts = np.array(list(index), dtype=np.float64).reshape(-1, 2)
    rim = model.height_local(pts[:, 0], pts[:, 1])
    down = {int(u): i for i, (u, _) in enumerate(ends)}
    flow_dist = np.zeros(len(pts))
    for m in range(len(pts)):
        node, dist, seen = m, 0.0, 0
        while node in down and seen < len(pipes):
            dist += pipes[down[node]][0].length
            node = int(ends[down[node], 1])
            seen += 1
        flow_dist[m] = dist
    order = np.argsort(-flow_dist, kind="stable")
    systems = [s for _, s in pipes]
    upstream = np.zeros(len(pts))
    for m in order:
        if m in down:
            i = down[m]
            upstream[ends[i, 1]] += upstream[m] + pipes[i][0].length
    dia = [
        _diameter(systems[i], upstream[ends[i, 0]] + pipes[i][0].length) for i in range(len(pipes))
    ]
    t = np.array([0.25, 0.5, 0.75, 1.0])
    samples = np.array(
        [[p.interpolate(x, normalized=True).coords[0] for x in t] for p, _ in pipes]
    ).reshape(-1, 2)
    ground = model.height_local(samples[:, 0], samples[:, 1]).reshape(len(pipes), 4)
    out_dia = {int(ends[i, 0]): dia[i] for i in range(len(pipes))}
    bottom = np.array([rim[m] - COVER_M - out_dia.get(m, 300) / 1000.0 for m in range(len(pts))])
    start = bottom.copy()
    end = np.zeros(len(pipes))
    pumps: set[int] = set()
    for m in order:
        if m not in down:
            continue
        if rim[m] - bottom[m] > MAX_DEPTH_M:
            # A pumping station lifts the flow back to a shallow outgoing pipe.
            pumps.add(int(m))
            start[m] = rim[m] - COVER_M - out_dia[m] / 1000.0
        else:
            start[m] = bottom[m]
        i = down[m]
        need = ground[i] - COVER_M - dia[i] / 1000.0
        bound = start[m] + (need - start[m]) / t
        end[i] = min(start[m] - _MIN_FALL[systems[i]] * pipes[i][0].length, float(bound.min()))
        d = int(ends[i, 1])
        bottom[d] = min(bottom[d], end[i])
    mh_ids = [f"{prefix}MH-{k + 1:05d}" for k in range(len(pts))]
    pipe_rows = [
        {
            "pipe_id": f"{prefix}P-{i + 1:05d}",
            "system": systems[i],
            "diameter_mm": dia[i],
            "material": _pick(rng, _MATERIALS[systems[i]]),
            "upstream_manhole_id": mh_ids[ends[i, 0]],
            "downstream_manhole_id": mh_ids[ends[i, 1]],
            "upstream_invert_m": round(float(start[ends[i, 0]]), 3),
            "downstream_invert_m": round(float(end[i]), 3),
            "length_m": round(pipes[i][0].length, 2),
            "installed_year": int(
                rng.integers(1905, 1965) if systems[i] == "combined" else rng.integers(1958, 2020)
            ),
            "geometry": pipes[i][0],
        }
        for i in range(len(pipes))
    ]
    system_at = {int(ends[i, 0]): systems[i] for i in range(len(pipes))}
    system_at.update(
        {int(ends[i, 1]): systems[i] for i in range(len(pipes)) if int(ends[i, 1]) not in system_at}
    )
    mh_rows = [
        {
            "manhole_id": mh_ids[m],
            "system": system_at[m],
            "kind": ("pumping_station" if m in pumps else "manhole") if m in down else outlet_kind,
            "rim_level_m": round(float(rim[m]), 3),
            "invert_level_m": round(float(bottom[m]), 3),
            "depth_m": round(float(rim[m] - bottom[m]), 3),
            "geometry": Point(pts[m]),
        }
        for m in range(len(pts))
    ]
    return pipe_rows, mh_rows


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def build_sewers(seed: int, roads: Roads, model: TerrainModel) -> Sewers:
    """Lay the foul, combined and storm sewers of the sample town.

    Parameters
    ----------
    seed
        The sample's seed.
    roads
        The road network the sewers follow.
    model
        The terrain, for rim levels and cover.

    Returns
    -------
    Sewers
        Pipes (flow direction = line direction) and manholes, local metres.
    """
    rng = rng_for(seed, "sewers")
    graph, seg = roads.graph, roads.segments
    heights = model.height_local(graph.nodes[:, 0], graph.nodes[:, 1])
    edge_ok = ~seg["road_class"].isin(["motorway", "track"]).to_numpy()
    mids = shapely.line_interpolate_point(seg.geometry.to_numpy(), 0.5, normalized=True)
    town = prep(unary_union([z.outline for z in plan.zones()]).buffer(40.0))
    old_town = prep(next(z.outline for z in plan.zones() if z.style == "old_town").buffer(10.0))
    sewered = edge_ok & np.array([town.contains(p) for p in mids])
    combined = np.array([old_town.contains(p) for p in mids])
    node_ok = np.zeros(len(graph.nodes), dtype=bool)
    node_ok[graph.edges[edge_ok].ravel()] = True

    def tree(roots_xy: list[tuple[float, float]], wanted: np.ndarray) -> tuple[np.ndarray, ...]:
        roots = [graph.nearest_node(x, y, node_ok) for x, y in roots_xy]
        dist, parent, via = graph.dijkstra(roots, edge_ok, heights, climb_penalty=60.0)
        network = wanted.copy()
        for n in np.unique(graph.edges[wanted].ravel()):
            network[graph.path_edges(via, parent, int(n))] = True
        return network, parent, via, np.array(roots)

    foul_net, parent, via, roots = tree([plan.WASTEWATER_PLANT], sewered)
    foul = [
        (line, "combined" if combined[e] else "foul")
        for line, e in _reaches(roads, foul_net, parent, via, heights)
    ]
    inlet = LineString([graph.nodes[roots[0]], plan.WASTEWATER_PLANT])
    foul.append((inlet, "foul"))
    outfalls = _outfalls(model)
    storm_net, parent, via, roots = tree(outfalls, sewered & ~combined)
    storm = [(line, "storm") for line, _ in _reaches(roads, storm_net, parent, via, heights)]
    storm += [
        (LineString([graph.nodes[r], xy]), "storm") for r, xy in zip(roots, outfalls, strict=True)
    ]
    storm = [(affinity.translate(line, *STORM_SHIFT), s) for line, s in storm]
    foul_pipes, foul_mh = _network(model, foul, rng, "", "treatment_plant_inlet")
    storm_pipes, storm_mh = _network(model, storm, rng, "S", "outfall")
    pipes = gpd.GeoDataFrame(foul_pipes + storm_pipes, geometry="geometry")
    manholes = gpd.GeoDataFrame(foul_mh + storm_mh, geometry="geometry")
    logger.info("sewers: %d pipes, %d manholes", len(pipes), len(manholes))
    return Sewers(pipes, manholes)
