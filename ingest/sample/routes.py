"""Where each utility network runs: sets of road segments per route name.

A route name stands for road segments: ``town`` (the streets of the
built-up zones), ``town+farms`` (plus the farm tracks), ``dh`` and ``gas``
(the district-heating and gas areas), ``copper`` (town minus industry, plus
farms), ``lighting`` (main streets and about half the residential ones) and
``path:...`` trunk routes along the shortest road way from a plant to the
town. Lines are the segments merged per street and cut into pieces of at
most 300 m, the length of one registered asset.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point
from shapely.ops import substring, unary_union
from shapely.prepared import prep

from ingest.sample import plan
from ingest.sample.roads import Roads

WEST_ENTRY = (5.0, 2140.0)  # where the trunk lines enter from the west
TOWN_HUBS = ((2600.0, 2250.0), (2100.0, 2300.0), (2700.0, 3300.0))
MAX_ASSET_M = 300.0


class UtilityRoutes:
    """Road segments (boolean masks over ``roads.segments``) per route name.

    Parameters
    ----------
    roads
        The road network.
    buildings
        Buildings; 10/0.4 kV substations go to the centres of their clusters.
    rng
        Seeded generator (street lighting choice, substation clustering).
    """

    def __init__(self, roads: Roads, buildings: gpd.GeoDataFrame, rng: np.random.Generator) -> None:
        self.roads = roads
        seg = roads.segments
        g = roads.graph
        self.ok = ~seg["road_class"].isin(["motorway"]).to_numpy()
        urban = self.ok & ~seg["road_class"].isin(["track"]).to_numpy()
        mids = shapely.line_interpolate_point(seg.geometry.to_numpy(), 0.5, normalized=True)
        zones = plan.zones()
        town = prep(unary_union([z.outline for z in zones]).buffer(40.0))
        industry = prep(next(z.outline for z in zones if z.style == "industrial").buffer(20.0))
        dh, gas = prep(plan.district_heating_area()), prep(plan.gas_area())
        in_town = urban & np.array([town.contains(p) for p in mids])
        tracks = seg["road_class"].eq("track").to_numpy()
        self.sets: dict[str, np.ndarray] = {
            "town": in_town,
            "town+farms": in_town | tracks,
            "dh": urban & np.array([dh.contains(p) for p in mids]),
            "gas": urban & np.array([gas.contains(p) for p in mids]),
            "copper": (in_town & ~np.array([industry.contains(p) for p in mids])) | tracks,
        }
        lit = {n: rng.random() < 0.55 for n in sorted(set(seg["name"]))}
        major = seg["road_class"].isin(["primary", "secondary"]).to_numpy()
        self.sets["lighting"] = in_town & (major | seg["name"].map(lit).to_numpy(dtype=bool))
        self.substations = self._substations(buildings, rng)
        farms = [g.nearest_node(*f) for f in plan.FARMS]
        town_nodes = np.zeros(len(g.nodes), dtype=bool)
        town_nodes[g.edges[in_town].ravel()] = True
        hubs = [g.nearest_node(x, y, town_nodes) for x, y in TOWN_HUBS]
        node = g.nearest_node
        self.sets["path:substations"] = self._paths(
            node(*plan.MAIN_SUBSTATION), self.substations + farms
        )
        self.sets["path:hv"] = self._paths(node(*WEST_ENTRY), [node(*plan.MAIN_SUBSTATION)])
        self.sets["path:gas"] = self._paths(node(*WEST_ENTRY), [node(*plan.GAS_MR_STATION)])
        self.sets["path:waterworks"] = self._paths(node(*plan.WATERWORKS), hubs[1:2])
        self.sets["path:heat"] = self._paths(node(*plan.HEAT_PLANT), hubs[:2])
        self.sets["path:backbone"] = self._paths(node(*WEST_ENTRY), hubs)

    def _paths(self, source: int, targets: list[int]) -> np.ndarray:
        g = self.roads.graph
        dist, parent, via = g.dijkstra([source], self.ok)
        mask = np.zeros(len(g.edges), dtype=bool)
        for t in targets:
            mask[g.path_edges(via, parent, t)] = True
        return mask

    def _substations(self, buildings: gpd.GeoDataFrame, rng: np.random.Generator) -> list[int]:
        """10/0.4 kV substations: k-means centres of the town's buildings."""
        g = self.roads.graph
        pts = shapely.get_coordinates(buildings.geometry.centroid)
        town = prep(unary_union([z.outline for z in plan.zones()]))
        pts = pts[[town.contains(Point(p)) for p in pts]]
        k = max(4, math.ceil(len(pts) / 120))
        centres = pts[rng.choice(len(pts), size=k, replace=False)]
        for _ in range(12):
            label = np.argmin(((pts[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
            centres = np.array(
                [pts[label == j].mean(0) if (label == j).any() else centres[j] for j in range(k)]
            )
        allowed = np.zeros(len(g.nodes), dtype=bool)
        allowed[g.edges[self.sets["town"]].ravel()] = True
        return sorted({g.nearest_node(x, y, allowed) for x, y in centres})

    def lines(self, route: str) -> list[LineString]:
        """The route's segments merged per street, cut into <= 300 m pieces."""
        seg = self.roads.segments[self.sets[route]]
        out: list[LineString] = []
        for _, group in seg.groupby("name", sort=True):
            merged = shapely.line_merge(MultiLineString(list(group.geometry)))
            for line in getattr(merged, "geoms", [merged]):
                n = max(1, math.ceil(line.length / MAX_ASSET_M))
                out += [
                    substring(line, i * line.length / n, (i + 1) * line.length / n)
                    for i in range(n)
                ]
        return out
