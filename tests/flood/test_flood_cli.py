"""``geoby flood ...`` as a researcher runs it: real DEM files in, files out, no database;
and ``geoby flood run`` on the platform's terrain."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from flood.depressions import depression_hierarchy
from flood.fill import fill_depressions
from flood.flow import d8_directions, flow_accumulation
from flood.fsm import fill_spill_merge
from flood.io import read_dem
from flood.sealevel import bathtub_depth, connected_depth, flood_levels
from tests.api.test_cli import env as env  # noqa: F401, PLC0414 - the fixture
from tests.api.test_cli import geoby

DK = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"
TEXAS = "dem-texas/dem.tif"


def band(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.parametrize("name", [DK, TEXAS])
def test_fill_cloudburst_and_flowacc_write_what_the_library_computes(
    env,
    shared_data,
    tmp_path,
    name,  # noqa: F811
):
    dem_path = shared_data / name
    dem = read_dem(dem_path)
    result = geoby(env, "flood", "fill", str(dem_path), str(tmp_path / "filled.tif"))
    assert result.returncode == 0, result.stderr
    assert "raised" in result.stdout
    np.testing.assert_array_equal(band(tmp_path / "filled.tif"),
                                  fill_depressions(dem.array, dem.nodata))  # fmt: skip
    result = geoby(env, "flood", "cloudburst", str(dem_path), str(tmp_path / "depth.tif"),
                   "--rain-mm", "80")  # fmt: skip
    assert result.returncode == 0, result.stderr
    hierarchy = depression_hierarchy(dem.array, dem.nodata, dem.cell_area_m2)
    expected = fill_spill_merge(dem.array, hierarchy, 80.0, dem.nodata, dem.cell_area_m2)
    np.testing.assert_allclose(band(tmp_path / "depth.tif"), expected.depth, atol=1e-6)
    result = geoby(env, "flood", "flowacc", str(dem_path), str(tmp_path / "acc.tif"))
    assert result.returncode == 0, result.stderr
    acc = flow_accumulation(d8_directions(dem.array, dem.nodata), dem.nodata)
    np.testing.assert_allclose(band(tmp_path / "acc.tif"), acc)
    if dem.reprojected_from is not None:  # Texas is geographic: reprojected with a warning
        assert "reproject" in result.stderr.lower()


def test_bluespots_writes_a_geopackage_of_depressions(env, shared_data, tmp_path):  # noqa: F811
    out = tmp_path / "spots.gpkg"
    result = geoby(env, "flood", "bluespots", str(shared_data / DK), str(out),
                   "--min-depth", "0.05")  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = gpd.read_file(out)
    dem = read_dem(shared_data / DK)
    hierarchy = depression_hierarchy(dem.array, dem.nodata, dem.cell_area_m2)
    assert f"{len(frame):,} bluespots of {hierarchy.count:,} depressions" in result.stdout
    assert len(frame) > 0 and frame["max_depth_m"].min() >= 0.05
    assert {"volume_m3", "pour_x", "spill_target", "catchment_m2", "rain_to_fill_mm"} <= set(frame)
    assert frame.crs.to_epsg() == 25832


def test_sealevel_with_a_barrier_file_floods_no_more_than_without(
    env,
    shared_data,
    tmp_path,  # noqa: F811
):
    dem_path = shared_data / DK
    dem = read_dem(dem_path)
    level = float(np.nanpercentile(dem.array, 30))
    result = geoby(env, "flood", "sealevel", str(dem_path), str(tmp_path / "sea.tif"),
                   "--level", str(level), "--bathtub", str(tmp_path / "tub.tif"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = connected_depth(dem.array, flood_levels(dem.array, None, dem.nodata), level,
                               dem.nodata)  # fmt: skip
    np.testing.assert_allclose(band(tmp_path / "sea.tif"), expected, atol=1e-6)
    np.testing.assert_allclose(band(tmp_path / "tub.tif"),
                               bathtub_depth(dem.array, level, dem.nodata), atol=1e-6)  # fmt: skip
    x0, y0, x1, y1 = dem.bounds
    wall = gpd.GeoDataFrame({"crest_height_m": [level + 10]},
                            geometry=gpd.GeoSeries.from_wkt(
                                [f"LINESTRING({(x0 + x1) / 2} {y0 - 10}, {(x0 + x1) / 2} {y1 + 10})"]),
                            crs=dem.crs)  # fmt: skip
    wall.to_file(tmp_path / "wall.gpkg")
    result = geoby(env, "flood", "sealevel", str(dem_path), str(tmp_path / "walled.tif"),
                   "--level", str(level), "--barriers", str(tmp_path / "wall.gpkg"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    walled, plain = band(tmp_path / "walled.tif"), band(tmp_path / "sea.tif")
    assert np.nansum(walled > 0) <= np.nansum(plain > 0)


def test_outputs_are_kept_unless_overwrite_and_bad_input_is_named(
    env,
    shared_data,
    tmp_path,  # noqa: F811
):
    out = tmp_path / "filled.tif"
    out.write_bytes(b"precious")
    refused = geoby(env, "flood", "fill", str(shared_data / DK), str(out))
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert out.read_bytes() == b"precious"
    assert (
        geoby(env, "flood", "fill", str(shared_data / DK), str(out), "--overwrite").returncode == 0
    )
    not_a_dem = tmp_path / "notes.tif"
    not_a_dem.write_text("not a raster")
    bad = geoby(env, "flood", "fill", str(not_a_dem), str(tmp_path / "x.tif"))
    assert bad.returncode != 0 and "notes.tif" in bad.stderr
    negative = geoby(env, "flood", "cloudburst", str(shared_data / DK), str(tmp_path / "y.tif"),
                     "--rain-mm", "-3")  # fmt: skip
    assert negative.returncode == 2 and "--rain-mm" in negative.stderr


def test_run_stores_a_scenario_on_the_platform_terrain(env, flood_town):  # noqa: F811
    local = dict(env, GEOBY_DATA_DIR=str(flood_town.settings.data_dir))
    result = geoby(local, "flood", "run", "cloudburst", "-p", "return_period_years=10",
                   "-p", "duration_min=30", "-p", "drainage_mm=5")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rain"]["drainage_mm"] == 5.0
    assert summary["rain"]["rain_mm"] == pytest.approx(
        summary["rain"]["idf_depth_mm"] * summary["rain"]["climate_factor"] - 5
    )
    with flood_town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM geoby.layers WHERE id = ANY(%s)", (summary["layers"][:-1],))
        assert len(cur.fetchall()) == len(summary["layers"]) - 1
    bad = geoby(local, "flood", "run", "sealevel", "-p", "level_m=2", "-p", "year=2050")
    assert bad.returncode == 2 and "level_m" in bad.stderr


def test_tiled_fill_equals_the_in_memory_fill(env, shared_data, tmp_path):  # noqa: F811
    dem_path = shared_data / DK
    result = geoby(env, "flood", "fill", str(dem_path), str(tmp_path / "tiled.tif"),
                   "--tile", "37")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tile by tile (37 x 37 cells)" in result.stdout
    dem = read_dem(dem_path)
    np.testing.assert_array_equal(band(tmp_path / "tiled.tif"),
                                  fill_depressions(dem.array, dem.nodata))  # fmt: skip
    lonely = geoby(env, "flood", "fill", str(dem_path), str(tmp_path / "x.tif"),
                   "--scheduler", "tcp://127.0.0.1:1")  # fmt: skip
    assert lonely.returncode == 2 and "--tile" in lonely.stderr
