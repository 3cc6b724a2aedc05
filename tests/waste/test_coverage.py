"""Recycling-station coverage over the walking network, and siting new stations.

Distances are checked against hand-worked values and against one Dijkstra per
station (brute force); the sited stations against every alternative on a small
case and against a greedy choice on the sample town; the pipeline runs on the
real Danish roads and buildings of tile 6173_632.
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy.sparse.csgraph import dijkstra

from ingest.pipelines import IngestOptions, ingest
from layers.errors import InvalidInput
from waste import coverage as cov


def grid_lines(n: int = 5, step: float = 100.0) -> gpd.GeoSeries:
    """An n x n street grid, ``step`` metres apart."""
    lines = [shapely.LineString([(0, i * step), ((n - 1) * step, i * step)]) for i in range(n)]
    lines += [shapely.LineString([(i * step, 0), (i * step, (n - 1) * step)]) for i in range(n)]
    return gpd.GeoSeries(lines, crs=25832)


def points(coords, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=[shapely.Point(c) for c in coords], crs=25832)


def test_walking_distance_follows_the_streets_not_the_crow():
    net = cov.Walkways.from_lines(grid_lines())
    station = points([(0, 0)], site_id=["S"], fraction_list=[["glass"]])
    homes = points([(100, 100), (200, 0), (400, 400), (110, 0)], building_id=list("abcd"))
    summary, per_home = cov.coverage(net, homes, station, walk_m=200)
    walks = per_home.set_index("building_id")["walk_m"]
    # (100, 100): two blocks along the streets, not 141 m; (110, 0): 10 m off vertex (100, 0)
    assert walks["a"] == pytest.approx(200) and walks["b"] == pytest.approx(200)
    assert walks["c"] == pytest.approx(800) and walks["d"] == pytest.approx(110)
    assert summary.loc[0, ["stations", "homes", "covered"]].tolist() == [1, 4, 3]


def test_each_fraction_counts_only_stations_that_take_it():
    net = cov.Walkways.from_lines(grid_lines())
    stations = points([(0, 0), (400, 400)], site_id=["A", "B"],
                      fraction_list=[["glass", "paper"], ["glass"]])  # fmt: skip
    homes = points([(400, 300), (0, 100)], building_id=["near_b", "near_a"])
    summary, _ = cov.coverage(net, homes, stations, walk_m=150)
    shares = summary.set_index("fraction")["covered"].to_dict()
    assert shares == {"glass": 2, "paper": 1}


def test_sited_stations_are_the_best_choice_of_all_pairs():
    net = cov.Walkways.from_lines(grid_lines(4))
    existing = points([(0, 0)], site_id=["S"], fraction_list=[["glass"]])
    rng = np.random.default_rng(7)
    homes = points(rng.uniform(0, 300, size=(40, 2)), building_id=[str(i) for i in range(40)])
    found = cov.propose_stations(net, homes, existing, 2, walk_m=120, spacing_m=1)
    candidates = cov.candidate_sites(net, 1)
    vertex, access = net.snap(shapely.get_coordinates(homes.geometry.values))
    dist = dijkstra(net.graph, directed=False)

    def covered(sites):
        walk = np.min([dist[s][vertex] + access for s in sites], axis=0)
        return int((walk <= 120).sum())

    s0 = net.snap(np.array([[0.0, 0.0]]))[0][0]
    best = max(covered([s0, *pair]) for pair in itertools.combinations(candidates, 2))
    assert found["covered_after"] == best
    assert found["covered_before"] == covered([s0]) and len(found["sites"]) == 2


def test_bad_parameters_are_refused():
    net = cov.Walkways.from_lines(grid_lines())
    homes = points([(0, 0)], building_id=["a"])
    station = points([(0, 0)], site_id=["S"], fraction_list=[["glass"]])
    with pytest.raises(InvalidInput, match="walking"):
        cov.coverage(net, homes, station, walk_m=-1)
    with pytest.raises(InvalidInput, match="budget"):
        cov.propose_stations(net, homes, station, 0)
    with pytest.raises(InvalidInput, match="roads"):
        cov.Walkways.from_lines(gpd.GeoSeries([], crs=25832))


@pytest.fixture(scope="module")
def town(database, town_dir):
    """Roads, buildings and recycling stations of the sample town."""
    options = IngestOptions(show_progress=False)
    ingest(database, "water", [town_dir / "roads.gpkg"], options)
    ingest(database, "energy", [town_dir / "buildings.gpkg"], options)
    ingest(database, "waste", [town_dir / "waste" / "bins.gpkg"], options)
    return database


def test_sample_town_coverage_equals_one_dijkstra_per_station(town):
    net, homes, stations = cov.walkways(town), cov.homes(town), cov.stations(town)
    summary, per_home = cov.coverage(net, homes, stations, walk_m=400)
    glass = stations[[("glass" in f) for f in stations["fraction_list"]]]
    vertex, access = net.snap(shapely.get_coordinates(homes.geometry.values))
    sv, sa = net.snap(shapely.get_coordinates(glass.geometry.values))
    brute = np.min([dijkstra(net.graph, directed=False, indices=v)[vertex] + a + access
                    for v, a in zip(sv, sa, strict=True)], axis=0)  # fmt: skip
    got = per_home[per_home["fraction"] == "glass"]["walk_m"].to_numpy()
    np.testing.assert_allclose(got, brute, atol=1e-6)
    row = summary.set_index("fraction").loc["glass"]
    assert row["covered"] == int((brute <= 400).sum()) and 0 < row["share"] < 1
    assert summary.set_index("fraction").loc["textile", "stations"] < len(stations)


def test_sample_town_proposals_beat_a_greedy_choice(town):
    net, homes, stations = cov.walkways(town), cov.homes(town), cov.stations(town)
    found = cov.propose_stations(net, homes, stations, 3, walk_m=400)
    vertex, access = net.snap(shapely.get_coordinates(homes.geometry.values))
    sv, sa = net.snap(shapely.get_coordinates(stations.geometry.values))
    dist = dijkstra(net.graph, directed=False, limit=400)
    walk = np.min([dist[v][vertex] + a + access for v, a in zip(sv, sa, strict=True)], axis=0)
    covered = walk <= 400
    for _ in range(3):  # greedy: add the candidate that covers most of the rest
        gains = [(((dist[c][vertex] + access) <= 400) & ~covered).sum()
                 for c in cov.candidate_sites(net)]  # fmt: skip
        best = cov.candidate_sites(net)[int(np.argmax(gains))]
        covered |= (dist[best][vertex] + access) <= 400
    assert found["covered_before"] == int((walk <= 400).sum())
    assert found["covered_after"] >= int(covered.sum()) > found["covered_before"]
    assert sum(s["newly_covered"] for s in found["sites"]) >= found["covered_after"] - found[
        "covered_before"]  # fmt: skip


def test_real_danish_roads_and_buildings(shared_data):
    roads = gpd.read_file(shared_data / "dk-vectors" / "dhmqc_roads_1km_6173_632.geojson")
    buildings = gpd.read_file(shared_data / "dk-vectors" / "dhmqc_build_1km_6173_632.geojson")
    roads, buildings = roads.set_crs(25832, allow_override=True), buildings.set_crs(
        25832, allow_override=True)  # EPSG:3044 has the same coordinates  # fmt: skip
    net = cov.Walkways.from_lines(roads.geometry)
    homes = gpd.GeoDataFrame({"building_id": [str(i) for i in range(len(buildings))]},
                             geometry=buildings.geometry.representative_point(), crs=25832)  # fmt: skip
    centre = net.xy[np.argmax(np.diff(net.graph.indptr))]  # the busiest junction
    station = points([tuple(centre)], site_id=["S"], fraction_list=[["glass"]])
    summary, per_home = cov.coverage(net, homes, station, walk_m=500)
    straight = homes.geometry.distance(shapely.Point(centre)).to_numpy()
    assert len(per_home) == len(buildings) == 11
    assert np.all(per_home["walk_m"].to_numpy() >= straight - 1e-6)  # never shorter than straight
    found = cov.propose_stations(net, homes, station, 1, walk_m=200, spacing_m=50)
    assert found["covered_after"] >= found["covered_before"]


def test_coverage_over_http(town, settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from dig_coordination.users import add_user, ensure_organisation
    from tests.dig.conftest import bearer

    with town.connection("admin") as conn:
        ensure_organisation(conn, "Egevig Kommune, Affald")
        planner = add_user(conn, org="Egevig Kommune, Affald", role="planner")[1]
        ensure_organisation(conn, "Graveselskabet A/S")
        contractor = add_user(conn, org="Graveselskabet A/S", role="contractor")[1]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        doc = client.get("/api/waste/coverage?walk_m=400&gaps=true").json()
        summary, _ = cov.coverage(cov.walkways(town), cov.homes(town), cov.stations(town),
                                  walk_m=400)  # fmt: skip
        assert doc["fractions"] == summary.to_dict(orient="records")
        glass = next(f for f in doc["fractions"] if f["fraction"] == "glass")
        assert len(doc["gaps"]["glass"]["features"]) == glass["homes"] - glass["covered"]
        lon, lat = doc["gaps"]["glass"]["features"][0]["geometry"]["coordinates"]
        assert 8 < lon < 13 and 54 < lat < 58
        assert client.get("/api/waste/coverage?walk_m=-5").status_code == 400  # problem details
        body = {"budget": 2}
        assert client.post("/api/waste/coverage/proposals", json=body).status_code == 401
        assert client.post("/api/waste/coverage/proposals", json=body,
                           headers=bearer(contractor)).status_code == 403  # fmt: skip
        found = client.post("/api/waste/coverage/proposals", json=body,
                            headers=bearer(planner)).json()  # fmt: skip
        assert len(found["sites"]) == 2 and found["covered_after"] > found["covered_before"]
        assert {"lon", "lat", "x", "y", "newly_covered"} <= set(found["sites"][0])
