"""Flood scenarios on the platform: the sample town's terrain, and a hand-made polder.

What is stored is read back and checked against the algorithms run directly on
the same terrain (depth COG = fill-spill-merge; flooded polygons cover exactly
the wet cells), water is conserved, runs are reproducible, terrain edits change
the run and never the stored terrain, and bad parameters are refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from psycopg2 import sql
from rasterio.transform import from_origin

from flood import scenario as scenario_mod
from flood.depressions import depression_hierarchy
from flood.edits import Edits
from flood.fsm import fill_spill_merge
from flood.io import rain_depth_mm, read_dem, read_terrain_layer, write_cog
from flood.scenario import Scenario, parameters, run, sea_level_m
from layers import catalog
from layers.crs import reproject
from layers.errors import InvalidInput, NotFound

POLDER = "terrain_test_polder"
X0, Y0 = 500_000.0, 6_000_040.0  # far from the town: no buildings, roads or assets


def polder_dem() -> np.ndarray:
    """Sea (-2 m, west), land at 1 m, a 3 m dike, a polder at 0.5 m behind it."""
    dem = np.full((40, 60), 0.5, np.float32)
    dem[:, :10] = -2.0
    dem[:, 10:20] = 1.0
    dem[:, 20:22] = 3.0
    return dem


@pytest.fixture(scope="module")
def polder(flood_town):
    path = flood_town.settings.data_dir / "flood-test" / "polder.tif"
    write_cog(path, polder_dem(), from_origin(X0, Y0, 1.0, 1.0), 25832, overviews=False)
    layer = catalog.Layer(id=POLDER, title="Test polder", theme="terrain", kind="raster",
                          raster_path=str(path), extent=(X0, Y0 - 40, X0 + 60, Y0),
                          vertical_datum="DVR90")  # fmt: skip
    with flood_town.connection("ingest") as conn:
        catalog.register(conn, layer)
    return flood_town


def stored_raster(database, layer_id: str) -> np.ndarray:
    with database.connection("read") as conn:
        layer = catalog.get(conn, layer_id)
    assert layer.kind == "raster" and layer.access == "open"
    with rasterio.open(database.settings.data_dir / layer.raster_path) as src:
        return src.read(1)


def rows(database, layer_id: str, columns: str = "count(*)") -> list[tuple]:
    with database.connection("read") as conn, conn.cursor() as cur:
        query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(columns),  # test-only, fixed text
                                                    sql.Identifier("data", layer_id))  # fmt: skip
        cur.execute(query)
        return cur.fetchall()


# -- cloudburst on the sample town ------------------------------------------------------


@pytest.fixture(scope="module")
def cloudburst(flood_town):
    scenario = Scenario("cloudburst", {"return_period_years": 100, "duration_min": 60})
    progress: list[tuple[int, str]] = []
    summary = run(flood_town, scenario, progress=lambda p, m: progress.append((p, m)))
    return scenario, summary, progress


def test_cloudburst_uses_the_ingested_design_rain(flood_town, cloudburst):
    _, summary, _ = cloudburst
    design = rain_depth_mm(flood_town, 100, 60)
    assert summary["rain"]["rain_mm"] == pytest.approx(design.rain_mm)
    assert summary["rain"]["climate_factor"] == pytest.approx(design.climate_factor)
    assert design.rain_mm == pytest.approx(design.idf_depth_mm * design.climate_factor)


def test_cloudburst_conserves_water_and_stores_the_fsm_depth(flood_town, cloudburst):
    scenario, summary, _ = cloudburst
    assert summary["rain_m3"] == pytest.approx(summary["stored_m3"] + summary["lost_m3"],
                                               rel=1e-9)  # fmt: skip
    dem = read_terrain_layer(flood_town)
    expected = fill_spill_merge(dem.array, depression_hierarchy(dem.array, dem.nodata,
                                dem.cell_area_m2), summary["rain"]["rain_mm"], dem.nodata,
                                dem.cell_area_m2)  # fmt: skip
    depth = stored_raster(flood_town, f"flood_{scenario.id}_depth")
    np.testing.assert_allclose(depth, expected.depth.astype(np.float32), atol=1e-6)
    stored = float(np.nansum(depth.astype(np.float64))) * dem.cell_area_m2
    assert stored == pytest.approx(summary["stored_m3"], rel=1e-5)
    assert summary["wet_area_m2"] == (depth > 0).sum() * dem.cell_area_m2 > 0


def test_flooded_polygons_cover_the_wet_cells_by_depth_class(flood_town, cloudburst):
    scenario, summary, _ = cloudburst
    depth = stored_raster(flood_town, f"flood_{scenario.id}_depth")
    found = rows(flood_town, f"flood_{scenario.id}_flooded", "sum(ST_Area(geom))")[0][0]
    cell = read_terrain_layer(flood_town).cell_area_m2
    shallowest = scenario_mod.DEPTH_CLASSES[0]
    assert found == pytest.approx((depth >= shallowest).sum() * cell, rel=1e-9)
    classes = rows(flood_town, f"flood_{scenario.id}_flooded", "DISTINCT min_depth_m")
    assert {c[0] for c in classes} <= set(scenario_mod.DEPTH_CLASSES)


def test_bluespot_fill_state_is_stored_per_depression(flood_town, cloudburst):
    scenario, summary, _ = cloudburst
    states = rows(flood_town, f"flood_{scenario.id}_bluespots",
                  "fill_fraction, stored_m3, volume_m3, state, max_depth_m")  # fmt: skip
    assert len(states) > 10
    for fraction, stored, volume, state, depth in states:
        assert 0.0 <= fraction <= 1.0 and depth >= scenario_mod.DEFAULT_MIN_DEPTH_M
        assert stored <= volume * (1 + 1e-6) + 1e-6
        assert state == ("full" if fraction >= 1 - 1e-9 else "filling" if fraction > 0 else "dry")
    assert summary["full_depressions"] == sum(s[3] == "full" for s in states)


def test_exposure_layers_are_open_for_buildings_and_restricted_for_assets(flood_town, cloudburst):
    scenario, summary, _ = cloudburst
    open_id, assets_id = summary["layers"][-2:]
    with flood_town.connection("read") as conn:
        assert catalog.get(conn, open_id).access == "open"
    with flood_town.connection("admin") as conn:
        assets = catalog.get(conn, assets_id)
    assert assets.access == "restricted" and assets.table_schema == "restricted"
    buildings = rows(flood_town, open_id,
                     "count(*) FILTER (WHERE object_class = 'building' AND flooded)")[0][0]  # fmt: skip
    assert buildings == summary["exposure"]["buildings"]["count"] > 0
    assert summary["exposure"]["assets"]["count"] > 0


def test_progress_is_reported_in_order_up_to_100(cloudburst):
    _, _, progress = cloudburst
    percents = [p for p, _ in progress]
    assert percents == sorted(percents) and percents[-1] == 100 and len(percents) >= 6
    assert any("fill-spill-merge" in m for _, m in progress)


def test_a_run_is_reproducible(flood_town, cloudburst):
    scenario, summary, _ = cloudburst
    before = stored_raster(flood_town, f"flood_{scenario.id}_depth")
    again = Scenario("cloudburst", {"duration_min": 60.0, "return_period_years": 100.0})
    assert again.id == scenario.id
    second = run(flood_town, again)
    assert second == summary
    np.testing.assert_array_equal(stored_raster(flood_town, f"flood_{scenario.id}_depth"), before)


def test_more_rain_stores_more_water_and_floods_more(flood_town, cloudburst):
    _, summary, _ = cloudburst
    more = run(flood_town, Scenario("cloudburst", {"rain_mm": 2 * summary["rain"]["rain_mm"]}))
    assert more["stored_m3"] >= summary["stored_m3"] and more["wet_area_m2"] >= summary[
        "wet_area_m2"]  # fmt: skip
    assert more["rain_m3"] == pytest.approx(2 * summary["rain_m3"], rel=1e-9)


# -- sea level, bluespots, flow paths on the sample town ---------------------------------


def test_sealevel_from_a_scenario_year_floods_only_connected_cells(flood_town):
    sea = sea_level_m(flood_town, 2100, "SSP2-4.5", 100)
    summary = run(flood_town, Scenario("sealevel", {"year": 2100, "surge_return_period": 100}))
    assert summary["sea"] == sea and sea["level_m"] > sea["mean_sea_level_m"]
    assert summary["connected_area_m2"] <= summary["bathtub_area_m2"]
    assert summary["protected_area_m2"] == pytest.approx(
        summary["bathtub_area_m2"] - summary["connected_area_m2"]
    )
    depth = stored_raster(
        flood_town,
        f"flood_{Scenario('sealevel', {'year': 2100, 'surge_return_period': 100}).id}_depth",
    )  # noqa: E501
    dem = read_terrain_layer(flood_town)
    wet = depth > 0
    assert np.all(dem.array[wet] < sea["level_m"])
    np.testing.assert_allclose(depth[wet], sea["level_m"] - dem.array[wet], atol=1e-5)


def test_sea_level_is_interpolated_between_scenario_years(flood_town):
    a = sea_level_m(flood_town, 2050, "SSP2-4.5", 0)["level_m"]
    b = sea_level_m(flood_town, 2060, "SSP2-4.5", 0)["level_m"]
    mid = sea_level_m(flood_town, 2055, "SSP2-4.5", 0)["level_m"]
    assert mid == pytest.approx((a + b) / 2, abs=1e-4)
    with pytest.raises(InvalidInput, match="outside"):
        sea_level_m(flood_town, 1800, "SSP2-4.5", 0)
    with pytest.raises(NotFound, match="SSP9"):
        sea_level_m(flood_town, 2050, "SSP9", 0)


def test_bluespots_layer_has_the_issue_attributes(flood_town):
    scenario = Scenario("bluespots", {"min_depth_m": 0.1})
    summary = run(flood_town, scenario)
    with flood_town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                    "'data' AND table_name = %s", (f"flood_{scenario.id}_bluespots",))  # fmt: skip
        names = {r[0] for r in cur.fetchall()}
    assert {
        "max_depth_m",
        "area_m2",
        "volume_m3",
        "pour_x",
        "pour_y",
        "spill_target",
        "catchment_m2",
        "rain_to_fill_mm",
        "parent",
        "is_leaf",
        "is_top",
    } <= names
    depths = rows(flood_town, f"flood_{scenario.id}_bluespots", "max_depth_m")
    assert len(depths) == summary["bluespots"] > 0 and min(d[0] for d in depths) >= 0.1


def test_flowpaths_drain_downhill_into_larger_catchments(flood_town):
    scenario = Scenario("flowpaths", {"min_area_m2": 20_000})
    summary = run(flood_town, scenario)
    acc = stored_raster(flood_town, f"flood_{scenario.id}_flowacc")
    cell = read_terrain_layer(flood_town).cell_area_m2
    assert np.nanmax(acc) * cell > 20_000
    paths = rows(flood_town, f"flood_{scenario.id}_flowpaths", "upstream_area_m2, length_m")
    assert len(paths) == summary["flow_paths"] > 0
    assert all(area >= 20_000 and length > 0 for area, length in paths)


# -- terrain edits on a hand-made polder --------------------------------------------------


def _wet_columns(database, scenario: Scenario) -> set[int]:
    depth = stored_raster(database, f"flood_{scenario.id}_depth")
    return set(np.flatnonzero((depth > 0).any(axis=0)).tolist())


def test_the_dike_keeps_the_sea_out_of_the_polder_and_bathtub_does_not(polder):
    scenario = Scenario("sealevel", {"level_m": 2.0}, terrain_layer=POLDER)
    summary = run(polder, scenario)
    assert _wet_columns(polder, scenario) == set(range(20))
    assert summary["connected_area_m2"] == 40 * 20
    assert summary["bathtub_area_m2"] == 40 * 58  # all but the dike
    assert summary["protected_area_m2"] == 40 * 38
    assert summary["exposure"]["buildings"]["count"] == 0


def _feature(coords: list, **props) -> dict:
    line = shapely.LineString([(X0 + x, Y0 - y) for x, y in coords])
    geometry = shapely.geometry.mapping(reproject(line, 25832, 0))
    return {"type": "Feature", "geometry": geometry, "properties": props}


def test_an_opening_through_the_dike_lets_the_sea_into_the_polder(polder):
    edits = Edits.from_json({"openings": [_feature([(15.5, 20.5), (25.5, 20.5)])]})
    scenario = Scenario("sealevel", {"level_m": 2.0}, edits, POLDER)
    summary = run(polder, scenario)
    assert _wet_columns(polder, scenario) == set(range(60))
    assert summary["protected_area_m2"] == 0
    stored = read_dem(polder.settings.data_dir / "flood-test" / "polder.tif").array
    np.testing.assert_array_equal(stored, polder_dem())  # the stored terrain is untouched


def test_a_barrier_removes_exactly_the_flooding_behind_it(polder):
    wall = _feature([(12.5, -1), (12.5, 41)], crest_height_m=2.5)
    scenario = Scenario("sealevel", {"level_m": 2.0}, Edits.from_json({"barriers": [wall]}),
                        POLDER)  # fmt: skip
    summary = run(polder, scenario)
    assert _wet_columns(polder, scenario) == set(range(12))
    assert summary["connected_area_m2"] == 40 * 12
    low = Scenario("sealevel", {"level_m": 2.0},
                   Edits.from_json({"barriers": [{**wall, "properties": {"crest_height_m": 1.5}}]}),
                   POLDER)  # fmt: skip
    run(polder, low)  # a wall lower than the water is overtopped
    assert _wet_columns(polder, low) == set(range(20))


def test_cloudburst_on_the_polder_fills_it_like_fill_spill_merge(polder):
    scenario = Scenario("cloudburst", {"rain_mm": 100}, terrain_layer=POLDER)
    summary = run(polder, scenario)
    dem = polder_dem()
    expected = fill_spill_merge(dem, depression_hierarchy(dem, cell_area=1.0), 100.0)
    np.testing.assert_allclose(stored_raster(polder, f"flood_{scenario.id}_depth"),
                               expected.depth, atol=1e-6)  # fmt: skip
    assert summary["rain_m3"] == pytest.approx(40 * 60 * 0.1)


# -- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("tsunami", {}, "kind"),
        ("cloudburst", {}, "rain_mm"),
        ("cloudburst", {"rain_mm": 50, "return_period_years": 10}, "rain_mm"),
        ("cloudburst", {"return_period_years": 10}, "duration_min"),
        ("cloudburst", {"rain_mm": -1}, "rain_mm"),
        ("cloudburst", {"rain_mm": "lots"}, "rain_mm"),
        ("cloudburst", {"rain_mm": float("nan")}, "rain_mm"),
        ("cloudburst", {"rain_mm": 10, "drainage_mm": 5}, "rain_mm"),
        ("cloudburst", {"return_period_years": 10, "duration_min": 60, "climate_factor": 0},
         "climate_factor"),
        ("cloudburst", {"rain_mm": 10, "level_m": 1}, "level_m"),
        ("sealevel", {}, "level_m"),
        ("sealevel", {"level_m": 1, "year": 2050}, "level_m"),
        ("sealevel", {"year": 2050, "surge_return_period": 50}, "surge_return_period"),
        ("sealevel", {"level_m": 400}, "level_m"),
        ("bluespots", {"min_depth_m": -0.1}, "min_depth_m"),
        ("flowpaths", {"min_area_m2": True}, "min_area_m2"),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_by_name(kind, params, field):
    with pytest.raises(InvalidInput) as info:
        parameters(kind, params)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"dams": []}, "edits"),
        ({"barriers": {}}, "edits.barriers"),
        ({"barriers": [{"geometry": {"type": "LineString", "coordinates": [[12, 55], [12.1, 55]]}}]},
         "edits.barriers[0]"),
        ({"barriers": [{"geometry": {"type": "Blob"}, "crest_height_m": 2}]}, "edits.barriers[0]"),
        ({"openings": [{"geometry": {"type": "Point", "coordinates": [12, 55]}}]},
         "edits.openings[0]"),
        ({"openings": ["culvert"]}, "edits.openings[0]"),
    ],
)  # fmt: skip
def test_bad_edits_are_refused_by_name(doc, field):
    with pytest.raises(InvalidInput) as info:
        Edits.from_json(doc)
    assert info.value.field == field


def test_a_missing_terrain_layer_is_not_found(flood_town):
    with pytest.raises(NotFound):
        run(flood_town, Scenario("bluespots", {}, terrain_layer="terrain_nowhere"))


# -- real terrain ----------------------------------------------------------------------------


def test_scenarios_on_the_real_danish_terrain(flood_town, shared_data):
    """The DTM tile 6171_727 (10 m, DVR90) registered as a layer and run through scenarios."""
    path = shared_data / "dk-terrain" / "dk_dtm_6171_727_10m_dvr90.tif"
    dem = read_dem(path)
    with flood_town.connection("ingest") as conn:
        catalog.register(conn, catalog.Layer(
            id="terrain_test_dk", title="DTM 6171_727", theme="terrain", kind="raster",
            raster_path=str(path), extent=dem.bounds, vertical_datum="DVR90"))  # fmt: skip
    rain = Scenario("cloudburst", {"rain_mm": 90}, terrain_layer="terrain_test_dk")
    summary = run(flood_town, rain)
    expected = fill_spill_merge(dem.array, depression_hierarchy(dem.array, dem.nodata,
                                dem.cell_area_m2), 90.0, dem.nodata, dem.cell_area_m2)  # fmt: skip
    np.testing.assert_allclose(stored_raster(flood_town, f"flood_{rain.id}_depth"),
                               expected.depth, atol=1e-6)  # fmt: skip
    assert summary["rain_m3"] == pytest.approx(summary["stored_m3"] + summary["lost_m3"])
    level = float(np.nanpercentile(dem.array, 25))
    sea = Scenario("sealevel", {"level_m": level}, terrain_layer="terrain_test_dk")
    found = run(flood_town, sea)
    assert 0 < found["connected_area_m2"] <= found["bathtub_area_m2"]
    spots = Scenario("bluespots", {"min_depth_m": 0.0}, terrain_layer="terrain_test_dk")
    assert (
        run(flood_town, spots)["depressions"]
        == depression_hierarchy(dem.array, dem.nodata, dem.cell_area_m2).count
    )
