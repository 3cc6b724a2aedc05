"""The road network of the sample town: drawn, noded and made connected.

Streets are drawn as long source lines (arterials from the plan, a rotated
grid per built-up zone, harbour quays, access roads to farms and plants), then
noded in one GEOS union on a 1 cm grid so that every intersection splits the
lines and adjacent segments share their end coordinates exactly. Short dead
ends left by clipping are pruned and any remaining islands are joined to the
main network, so the result is one connected component.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiLineString, Point, box
from shapely.ops import unary_union

from ingest.sample import plan
from ingest.sample.graph import LineGraph, UnionFind
from ingest.sample.names import FARM_NAMES, street_names
from ingest.sample.seeding import rng_for

logger = logging.getLogger(__name__)

CLASS_RANK = {
    "motorway": 0,
    "primary": 1,
    "secondary": 2,
    "residential": 3,
    "service": 4,
    "track": 5,
}
CLASS_SPEED_KMH = {
    "motorway": 110,
    "primary": 60,
    "secondary": 50,
    "residential": 40,
    "service": 20,
    "track": 15,
}
CLASS_WIDTH_M = {
    "motorway": 12.0,
    "primary": 9.0,
    "secondary": 7.5,
    "residential": 6.0,
    "service": 5.0,
    "track": 3.5,
}
_GRID = 0.01
_MIN_PIECE_M = 40.0
_DANGLE_M = 30.0


@dataclass
class _Source:
    name: str
    road_class: str
    geom: LineString
    surface: str
    oneway: bool = False


@dataclass
class Roads:
    """The noded network in local metres plus its graph.

    Attributes
    ----------
    segments
        One row per noded segment: road_id, name, road_class, speed_kmh,
        oneway, surface, geometry (local metres, direction of travel for
        one-way roads).
    graph
        :class:`~ingest.sample.graph.LineGraph` over ``segments`` (same order).
    """

    segments: gpd.GeoDataFrame
    graph: LineGraph

    def clearance(self, margin: float = 1.0) -> list:
        """Road surfaces (centre line buffered by half width plus ``margin``)."""
        widths = self.segments["road_class"].map(CLASS_WIDTH_M).to_numpy()
        return list(
            shapely.buffer(
                self.segments.geometry.to_numpy(), widths / 2.0 + margin, cap_style="flat"
            )
        )


def no_go_area(model_streams: list[np.ndarray]) -> shapely.Geometry:
    """Where no street, building or bin may go: water, beach, dike, basin."""
    parts = [plan.lake_outline(lake).buffer(25.0) for lake in plan.LAKES]
    parts += [LineString(line).buffer(22.0) for line in model_streams]
    parts.append(box(*plan.HARBOUR_BASIN).buffer(4.0))
    parts.append(plan.polder_outline(30.0).difference(plan.polder_outline(-4.0)))
    sea = box(0.0, 0.0, plan.EXTENT_M, plan.EXTENT_M).difference(
        plan.land_outline(plan.BEACH_WIDTH_M)
    )
    parts.append(sea.difference(box(*plan.HARBOUR_QUAY)))
    return unary_union(parts)


def buildable_area(model_streams: list[np.ndarray]) -> shapely.Geometry:
    """Land where buildings may stand: above the beach, off water and dikes."""
    land = plan.land_outline(plan.BEACH_WIDTH_M).union(box(*plan.HARBOUR_QUAY))
    return land.difference(no_go_area(model_streams))


def _grid_streets(
    zone: plan.Zone, allowed: shapely.Geometry, rng: np.random.Generator
) -> list[LineString]:
    """A rotated street grid clipped to the zone."""
    centre = zone.outline.centroid
    local = affinity.rotate(zone.outline, -zone.angle_deg, origin=centre)
    minx, miny, maxx, maxy = local.bounds
    lines: list[LineString] = []
    for axis, spacing in enumerate(zone.spacing):
        lo, hi = (miny, maxy) if axis == 0 else (minx, maxx)
        pos = lo + rng.uniform(0.3, 0.7) * spacing
        while pos < hi:
            p = pos + rng.uniform(-6.0, 6.0)
            if axis == 0:
                seg = LineString([(minx - 5.0, p), (maxx + 5.0, p)])
            elif rng.random() < 0.15:
                pos += spacing
                continue
            else:
                seg = LineString([(p, miny - 5.0), (p, maxy + 5.0)])
            lines.append(affinity.rotate(seg, zone.angle_deg, origin=centre))
            pos += spacing
    area = zone.outline.intersection(allowed)
    pieces: list[LineString] = []
    for line in lines:
        clipped = line.intersection(area)
        for part in getattr(clipped, "geoms", [clipped]):
            if isinstance(part, LineString) and part.length >= _MIN_PIECE_M:
                pieces.append(part)
    return pieces


def _access(
    sources: list[_Source],
    points: list[tuple[str, str, str, tuple[float, float]]],
) -> list[_Source]:
    """Access roads from each point to the nearest non-motorway road."""
    target = unary_union([s.geom for s in sources if s.road_class != "motorway"])
    out: list[_Source] = []
    for name, road_class, surface, (x, y) in points:
        link = shapely.shortest_line(Point(x, y), target)
        if link.length > 15.0:
            out.append(_Source(name, road_class, LineString(link.coords), surface))
    return out


def _node(sources: list[_Source]) -> tuple[list[LineString], list[_Source]]:
    """Node all source lines; return segments and the source each lies on."""
    noded = shapely.union_all([s.geom for s in sources], grid_size=_GRID)
    segments = [g for g in getattr(noded, "geoms", [noded]) if g.length > 0.05]
    tree = shapely.STRtree([s.geom for s in sources])
    mids = shapely.line_interpolate_point(np.asarray(segments, dtype=object), 0.5, normalized=True)
    nearest = tree.query_nearest(mids, return_distance=False, all_matches=False)[1]
    owners = [sources[int(i)] for i in nearest]
    oriented = []
    for seg, src in zip(segments, owners, strict=True):
        a, b = shapely.get_coordinates(seg)[[0, -1]]
        if src.geom.project(Point(a)) > src.geom.project(Point(b)):
            seg = seg.reverse()
        oriented.append(seg)
    return oriented, owners


def _prune(
    segments: list[LineString], owners: list[_Source]
) -> tuple[list[LineString], list[_Source]]:
    """Drop short residential dead ends left where grid lines were clipped."""
    while True:
        graph = LineGraph.from_lines(segments)
        degree = np.bincount(graph.edges.ravel(), minlength=len(graph.nodes))
        drop = {
            i
            for i, (a, b) in enumerate(graph.edges)
            if owners[i].road_class == "residential"
            and graph.lengths[i] < _DANGLE_M
            and (degree[a] == 1 or degree[b] == 1)
        }
        if not drop:
            return segments, owners
        keep = [i for i in range(len(segments)) if i not in drop]
        segments = [segments[i] for i in keep]
        owners = [owners[i] for i in keep]


def _merge_close_nodes(
    segments: list[LineString], owners: list[_Source], tol: float = 3.0
) -> tuple[list[LineString], list[_Source]]:
    """Fuse junctions closer than ``tol`` (slivers where streets cross at a
    shallow angle) by moving segment ends onto one node; drop what collapses."""
    graph = LineGraph.from_lines(segments)
    points = shapely.points(graph.nodes)
    left, right = shapely.STRtree(points).query(points, predicate="dwithin", distance=tol)
    uf = UnionFind(len(points))
    for a, b in zip(left, right, strict=True):
        uf.union(int(a), int(b))
    rep = [uf.find(i) for i in range(len(points))]
    out_s: list[LineString] = []
    out_o: list[_Source] = []
    seen: set[tuple[int, int, int]] = set()
    for seg, owner, (a, b) in zip(segments, owners, graph.edges, strict=True):
        ra, rb = rep[a], rep[b]
        key = (min(ra, rb), max(ra, rb), int(round(seg.length)))
        if ra == rb or key in seen:
            continue
        seen.add(key)
        coords = shapely.get_coordinates(seg)
        coords[0], coords[-1] = graph.nodes[ra], graph.nodes[rb]
        out_s.append(LineString(coords))
        out_o.append(owner)
    return out_s, out_o


def _islands(segments: list[LineString], owners: list[_Source]) -> list[_Source]:
    """Connectors from every sizeable island to the main network."""
    graph = LineGraph.from_lines(segments)
    comp = np.asarray(graph.components())
    edge_comp = comp[graph.edges[:, 0]]
    totals = Counter()
    for c, length in zip(edge_comp, graph.lengths, strict=True):
        totals[int(c)] += float(length)
    main = max(totals, key=lambda c: (totals[c], -c))
    main_geom = unary_union([s for s, c in zip(segments, edge_comp, strict=True) if c == main])
    connectors: list[_Source] = []
    for c in sorted(totals):
        if c == main or totals[c] < 150.0:
            continue
        members = np.flatnonzero(comp == c)
        best = min(members, key=lambda n: main_geom.distance(Point(graph.nodes[n])))
        link = shapely.shortest_line(Point(graph.nodes[best]), main_geom)
        name = Counter(
            o.name for o, ec in zip(owners, edge_comp, strict=True) if ec == c
        ).most_common(1)[0][0]
        connectors.append(_Source(name, "residential", LineString(link.coords), "asphalt"))
    return connectors


def _keep_main(
    segments: list[LineString], owners: list[_Source]
) -> tuple[list[LineString], list[_Source]]:
    graph = LineGraph.from_lines(segments)
    comp = np.asarray(graph.components())
    edge_comp = comp[graph.edges[:, 0]]
    main = Counter(edge_comp.tolist()).most_common(1)[0][0]
    keep = np.flatnonzero(edge_comp == main)
    return [segments[i] for i in keep], [owners[i] for i in keep]


def build_roads(seed: int, stream_lines: list[np.ndarray]) -> Roads:
    """Draw and node the road network of the sample town.

    Parameters
    ----------
    seed
        The sample's seed.
    stream_lines
        Stream centre lines (local metres), kept clear of residential streets.

    Returns
    -------
    Roads
        The connected, noded network.
    """
    rng = rng_for(seed, "roads")
    sources = [
        _Source(n, c, LineString(p), "asphalt", c == "motorway") for n, c, p in plan.ARTERIALS
    ]
    sources += [
        _Source(
            "Havnegade", "service", LineString([(2920.0, 2000.0), (2920.0, 2262.0)]), "concrete"
        ),
        _Source(
            "Sydkajen", "service", LineString([(2920.0, 2028.0), (3180.0, 2028.0)]), "concrete"
        ),
        _Source(
            "Nordkajen", "service", LineString([(2920.0, 2234.0), (3180.0, 2234.0)]), "concrete"
        ),
        _Source(
            "Havnevej", "secondary", LineString([(2895.0, 2140.0), (2920.0, 2140.0)]), "asphalt"
        ),
    ]
    allowed = box(0.0, 0.0, plan.EXTENT_M, plan.EXTENT_M).difference(no_go_area(stream_lines))
    reserved = {s.name for s in sources}
    pieces: list[tuple[plan.Zone, LineString]] = []
    for zone in plan.zones():
        pieces += [(zone, line) for line in _grid_streets(zone, allowed, rng)]
    names = street_names(rng, len(pieces) + len(plan.FARMS) + 20, reserved)
    for i, (zone, line) in enumerate(pieces):
        cobbles = zone.style == "old_town" and rng.random() < 0.3
        oneway = zone.style == "old_town" and rng.random() < 0.25
        sources.append(
            _Source(
                names[i], "residential", line, "paving_stones" if cobbles else "asphalt", oneway
            )
        )
    points = [
        (
            FARM_NAMES[i % len(FARM_NAMES)]
            .replace("gården", "gårdsvej")
            .replace("holm", "holmvej"),
            "track",
            "gravel",
            p,
        )
        for i, p in enumerate(plan.FARMS)
    ]
    facilities = [
        plan.WASTEWATER_PLANT,
        plan.WATERWORKS,
        plan.HEAT_PLANT,
        plan.MAIN_SUBSTATION,
        plan.GAS_MR_STATION,
        plan.WASTE_DEPOT,
    ] + [(u, v) for _, _, u, v in plan.DISPOSAL_SITES]
    points += [(f"{names[-1 - i]}", "service", "asphalt", p) for i, p in enumerate(facilities)]
    sources += _access(sources, points)
    segments, owners = _prune(*_node(sources))
    connectors = _islands(segments, owners)
    if connectors:
        segments, owners = _prune(*_node(sources + connectors))
    segments, owners = _keep_main(*_merge_close_nodes(segments, owners))
    return _frame(segments, owners)


def _frame(segments: list[LineString], owners: list[_Source]) -> Roads:
    order = sorted(
        range(len(segments)),
        key=lambda i: (
            CLASS_RANK[owners[i].road_class],
            owners[i].name,
            *shapely.get_coordinates(segments[i])[0],
        ),
    )
    rows = [owners[i] for i in order]
    frame = gpd.GeoDataFrame(
        {
            "road_id": [f"road-{k + 1:05d}" for k in range(len(order))],
            "name": [r.name for r in rows],
            "road_class": [r.road_class for r in rows],
            "speed_kmh": [CLASS_SPEED_KMH[r.road_class] for r in rows],
            "oneway": [bool(r.oneway) for r in rows],
            "surface": [r.surface for r in rows],
        },
        geometry=[segments[i] for i in order],
    )
    logger.info("roads: %d segments, %.1f km", len(frame), frame.length.sum() / 1000.0)
    return Roads(frame, LineGraph.from_lines(list(frame.geometry)))


def merged_streets(roads: Roads) -> list[tuple[str, str, LineString]]:
    """Each street name's segments merged into as few lines as possible."""
    out: list[tuple[str, str, LineString]] = []
    seg = roads.segments
    for (name, road_class), group in seg.groupby(["name", "road_class"], sort=True):
        merged = shapely.line_merge(MultiLineString(list(group.geometry)))
        for line in getattr(merged, "geoms", [merged]):
            out.append((str(name), str(road_class), line))
    return out


def bearing(line: LineString, s: float) -> float:
    """Direction (radians) of ``line`` at distance ``s`` from its start."""
    a = line.interpolate(max(s - 1.0, 0.0))
    b = line.interpolate(min(s + 1.0, line.length))
    return math.atan2(b.y - a.y, b.x - a.x)
