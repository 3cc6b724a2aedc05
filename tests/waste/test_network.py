"""Driving distances and times over the road network, and routes on the sample town.

Matrices are checked against hand-worked shortest paths on tiny grids (speeds,
oneway streets, disconnected parts), and on the sample town's ingested roads
against the straight line, which no road distance may undercut; the sample's
bins are then routed over those roads and the routes checked.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from ingest.pipelines import IngestOptions, ingest
from layers.errors import InvalidInput
from waste import network
from waste.engines import PyVRPEngine
from waste.routing import DISPOSAL, Problem, Stop, Truck, check_solution


def grid(n: int = 4, step: float = 100.0, **columns) -> gpd.GeoDataFrame:
    lines = [shapely.LineString([(0, i * step), ((n - 1) * step, i * step)]) for i in range(n)]
    lines += [shapely.LineString([(i * step, 0), (i * step, (n - 1) * step)]) for i in range(n)]
    return gpd.GeoDataFrame(columns or None, geometry=lines, crs=25832)


def test_grid_matrix_is_the_block_distance():
    net = network.RoadNetwork.from_lines(grid(speed_kmh=[36.0] * 8))
    points = np.array([[0, 0], [300, 300], [100, 210], [200, 100]])
    distance, duration = network.matrices(net, points, access_kmh=18)
    # (100, 210) is 10 m off the street at x = 100 (vertex (100, 200)); 36 km/h = 10 m/s
    expected = np.array([[0, 600, 310, 300], [600, 0, 310, 300],
                         [310, 310, 0, 210], [300, 300, 210, 0]], float)  # fmt: skip
    np.testing.assert_allclose(distance, expected, atol=1e-9)
    # 10 m/s on the streets, the 10 m join at 18 km/h = 5 m/s takes 2 s
    seconds = np.array([[0, 60, 32, 30], [60, 0, 32, 30], [32, 32, 0, 22], [30, 30, 22, 0]])
    np.testing.assert_allclose(duration, seconds, atol=1e-9)


def test_trucks_take_the_fastest_road_and_keep_to_oneway_streets():
    # A square: the south side is a fast road, the north a slow oneway street eastward.
    roads = gpd.GeoDataFrame(
        {"road_class": ["primary", "residential", "residential", "residential"],
         "speed_kmh": [None, None, None, 10.0], "oneway": [False, False, False, True]},
        geometry=[shapely.LineString([(0, 0), (1000, 0)]),
                  shapely.LineString([(0, 0), (0, 100)]),
                  shapely.LineString([(1000, 0), (1000, 100)]),
                  shapely.LineString([(0, 100), (1000, 100)])], crs=25832)  # fmt: skip
    net = network.RoadNetwork.from_lines(roads)
    distance, duration = network.matrices(net, np.array([[0, 100], [1000, 100]]))
    # West to east: the slow street (1000 m at 10 km/h = 360 s) loses to 100 m at
    # 30 + 1000 m at 60 + 100 m at 30 km/h (84 s), so the truck drives 1200 m.
    assert distance[0, 1] == pytest.approx(1200) and duration[0, 1] == pytest.approx(84)
    # East to west it may not use the oneway street at all.
    assert distance[1, 0] == pytest.approx(1200)
    slow = roads.assign(speed_kmh=[10.0, None, None, 200.0])
    distance, duration = network.matrices(network.RoadNetwork.from_lines(slow),
                                          np.array([[0, 100], [1000, 100]]))  # fmt: skip
    assert distance[0, 1] == pytest.approx(1000) and duration[0, 1] == pytest.approx(18)
    assert distance[1, 0] == pytest.approx(1200)  # not against the oneway


def test_points_snap_to_the_largest_connected_part():
    island = grid(2, 10).geometry.translate(5000, 5000)
    roads = gpd.GeoDataFrame(geometry=[*grid().geometry, *island], crs=25832)
    net = network.RoadNetwork.from_lines(roads)
    with pytest.warns(UserWarning, match="2 strongly connected parts"):
        distance, _ = network.matrices(net, np.array([[0, 0], [5005, 5005]]))
    assert np.isfinite(distance).all() and distance[0, 1] > 6000  # snapped back to the grid


def test_bad_roads_are_refused():
    with pytest.raises(InvalidInput, match="drivable"):
        network.RoadNetwork.from_lines(gpd.GeoSeries([], crs=25832))
    with pytest.raises(InvalidInput, match="speed"):
        network.RoadNetwork.from_lines(grid(speed_kmh=[0.0] * 8))


@pytest.fixture(scope="module")
def town_roads(database, town_dir):
    ingest(database, "water", [town_dir / "roads.gpkg"], IngestOptions(show_progress=False))
    return network.load_roads(database)


def test_sample_town_road_distances_are_never_shorter_than_straight(town_roads, town_dir):
    bins = gpd.read_file(town_dir / "waste" / "bins.gpkg", layer="bins")
    points = shapely.get_coordinates(bins.geometry.values)
    net = network.RoadNetwork.from_lines(town_roads)
    distance, duration = network.matrices(net, points)
    straight = np.hypot(*(points[:, None] - points[None]).transpose(2, 0, 1))
    assert np.isfinite(distance).all() and np.all(duration >= 0)
    assert np.all(distance >= straight - 1e-6)
    assert np.median(distance[straight > 500] / straight[straight > 500]) > 1.05


def test_sample_town_bins_routed_over_its_roads(town_roads, town_dir):
    bins = gpd.read_file(town_dir / "waste" / "bins.gpkg", layer="bins")
    facilities = gpd.read_file(town_dir / "waste" / "bins.gpkg", layer="facilities")
    garage = facilities[facilities["kind"] == "depot"].geometry.iloc[0]
    site = facilities[facilities["kind"] == "disposal_site"].geometry.iloc[0]
    bins = bins[bins["fraction"].isin(["glass", "paper"])]
    points = np.vstack([[garage.x, garage.y], [site.x, site.y],
                        shapely.get_coordinates(bins.geometry.values)])  # fmt: skip
    distance, duration = network.matrices(network.RoadNetwork.from_lines(town_roads), points)
    stops = [Stop(b.bin_id, b.geometry.x, b.geometry.y, int(b.capacity_l) // 100, 120,
                  fraction=b.fraction) for b in bins.itertuples()]  # fmt: skip
    trucks = [Truck(f"{f}-{k}", 200, 4 * 3600, f) for f in ("glass", "paper") for k in range(2)]
    problem = Problem((garage.x, garage.y), (site.x, site.y), stops, trucks, distance, duration,
                      disposal_service_s=900)  # fmt: skip
    solution = PyVRPEngine(iterations=500).solve(problem, seconds=10, seed=0)
    assert check_solution(problem, solution) == [] and solution.feasible
    assert sum(r.visits.count(DISPOSAL) for r in solution.routes) > len(solution.routes)
