"""flood.io: DEMs in (real Danish and Texas terrain), COGs out, terrain layer and design rain."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_validate
from scipy.ndimage import map_coordinates

from flood.io import DesignRain, rain_depth_mm, read_dem, read_terrain_layer, target_crs, write_cog
from ingest.pipelines import IngestOptions, ingest
from ingest.sample.climate import write_climate
from layers.database import Database
from layers.errors import CRSMismatch, InvalidInput, NotFound
from tests.db_helpers import drop_layers

DK_DTM = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"
TEXAS = "dem-texas/dem.tif"
TERRAIN_LAYER = "terrain_flood_io"
CLIMATE_LAYERS = ("climate_idf", "climate_factors")


def _write(path: Path, array: np.ndarray, transform: Affine, crs="EPSG:25832", nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype=array.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:  # fmt: skip
        dst.write(array, 1)
    return path


# -- reading ------------------------------------------------------------------------


def test_danish_dtm_is_read_as_it_is(shared_data, caplog):
    path = shared_data / DK_DTM
    with rasterio.open(path) as src:
        raw, transform = src.read(1), src.transform
    with caplog.at_level(logging.WARNING, logger="flood.io"):
        dem = read_dem(path)
    assert not caplog.records
    assert dem.crs.to_epsg() == 25832 and dem.reprojected_from is None
    assert dem.array.dtype == np.float32 and dem.shape == (100, 100)
    assert dem.transform == transform and dem.cell_size == 10.0 and dem.cell_area_m2 == 100.0
    assert dem.vertical_datum == "DVR90"  # tag "DVR90 via dkgeoid13b"
    holes = raw == -9999
    assert holes.sum() == 6
    np.testing.assert_array_equal(dem.nodata, holes)
    np.testing.assert_array_equal(np.isnan(dem.array), holes)
    np.testing.assert_array_equal(dem.array[~holes], raw[~holes])


def _texas_check(dem, src_path: Path) -> np.ndarray:
    """Heights at the centres of valid cells against bilinear sampling of the source by hand."""
    with rasterio.open(src_path) as src:
        raw, t = src.read(1).astype(np.float64), src.transform
    rows, cols = np.nonzero(~dem.nodata)
    x, y = dem.transform @ (cols + 0.5, rows + 0.5)
    lon, lat = Transformer.from_crs(dem.crs, "EPSG:4326", always_xy=True).transform(x, y)
    c, r = ~t @ (lon, lat)
    expected = map_coordinates(raw, [r - 0.5, c - 0.5], order=1, mode="nearest")
    return np.abs(dem.array[rows, cols] - expected)


def test_texas_dem_is_reprojected_to_its_utm_zone_with_a_warning(shared_data, caplog):
    path = shared_data / TEXAS
    with caplog.at_level(logging.WARNING, logger="flood.io"):
        dem = read_dem(path)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "EPSG:4326" in message and "EPSG:32614" in message
    assert f"{dem.cell_size:.3f} m" in message
    assert dem.crs.to_epsg() == 32614 and dem.reprojected_from.to_epsg() == 4326
    # 3 arc-seconds at 32.7 N: 92.6 m north-south, 78 m east-west
    assert 78.0 < dem.cell_size < 92.6
    assert dem.transform.a == -dem.transform.e
    assert dem.cell_area_m2 == pytest.approx(dem.cell_size**2)
    assert dem.array.dtype == np.float32  # int16 in the file
    assert np.nanmin(dem.array) >= 147 and np.nanmax(dem.array) <= 298  # the source range
    np.testing.assert_array_equal(np.isnan(dem.array), dem.nodata)
    # the source is rotated by the projection: the corners of the new grid lie outside it
    assert dem.nodata[0, 0] and dem.nodata[-1, -1] and not dem.nodata[dem.shape[0] // 2].all()
    assert 0.8 < (~dem.nodata).sum() * dem.cell_area_m2 / (367 * 359 * 92.6 * 78.0) < 1.2
    diff = _texas_check(dem, path)
    assert np.median(diff) < 0.1 and np.percentile(diff, 99) < 1.0  # shifted 1 cell: 1.0, 6.3


def test_nodata_is_kept_through_reprojection(shared_data, tmp_path):
    with rasterio.open(shared_data / TEXAS) as src:
        raw, profile = src.read(1), src.profile
    raw[100:150, 200:260] = -32768  # a hole of 50 x 60 cells
    holed = tmp_path / "holed.tif"
    with rasterio.open(holed, "w", **profile) as dst:
        dst.write(raw, 1)
    whole, dem = read_dem(shared_data / TEXAS), read_dem(holed)
    assert dem.transform == whole.transform and dem.shape == whole.shape
    assert (dem.nodata >= whole.nodata).all()  # nothing valid appears
    extra = dem.nodata & ~whole.nodata
    area = extra.sum() * dem.cell_area_m2
    hole_area = 50 * 60 * 92.6 * 78.0  # cells of 3 arc-seconds at 32.7 N
    assert area == pytest.approx(hole_area, rel=0.05)
    # cells whose centre falls inside the hole (1 cell in from its edge) are nodata
    rows, cols = np.indices(dem.shape)
    x, y = dem.transform @ (cols + 0.5, rows + 0.5)
    lon, lat = Transformer.from_crs(dem.crs, "EPSG:4326", always_xy=True).transform(x, y)
    with rasterio.open(holed) as src:
        c, r = ~src.transform @ (lon, lat)
    inside = (r >= 101) & (r < 149) & (c >= 201) & (c < 259)
    assert inside.sum() > 2000 and dem.nodata[inside].all()
    assert np.median(_texas_check(dem, holed)) < 0.1  # heights beside the hole stay right


def test_target_crs_prefers_the_storage_crs_in_denmark():
    assert target_crs(CRS.from_epsg(4326), (12.4, 55.6, 12.6, 55.7)).to_epsg() == 25832
    assert target_crs(CRS.from_epsg(4326), (-97.5, 32.5, -97.2, 32.8)).to_epsg() == 32614
    assert target_crs(CRS.from_epsg(4326), (151.1, -33.9, 151.3, -33.8)).to_epsg() == 32756


def test_a_danish_geographic_dem_goes_to_the_storage_crs(tmp_path, caplog):
    array = np.linspace(0, 5, 60 * 80, dtype=np.float32).reshape(60, 80)
    path = _write(tmp_path / "dk_ll.tif", array, Affine(0.0002, 0, 12.5, 0, -0.0001, 55.7),
                  crs="EPSG:4326")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="flood.io"):
        dem = read_dem(path, resolution=5.0)
    assert dem.crs.to_epsg() == 25832 and dem.cell_size == 5.0 and dem.cell_area_m2 == 25.0
    assert "EPSG:25832 at 5.000 m cells" in caplog.text
    assert dem.transform.c % 5 == 0 and dem.transform.f % 5 == 0  # aligned to the resolution


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (Affine(10, 2, 727000, 2, -10, 6172000), "rotated or sheared"),
        (Affine(10, 0, 727000, 0.5, -10, 6172000), "rotated or sheared"),
        (Affine(10, 0, 727000, 0, -5, 6172000), r"non-square cells \(10 x 5\)"),
        (Affine(-10, 0, 728000, 0, -10, 6172000), "columns running west"),
    ],
)
def test_grids_that_are_not_north_up_and_square_are_refused(tmp_path, transform, message):
    path = _write(tmp_path / "bad.tif", np.ones((20, 30), dtype=np.float32), transform)
    with pytest.raises(InvalidInput, match=message) as err:
        read_dem(path)
    assert err.value.record == "bad.tif" and err.value.field == "transform"


def test_south_up_integer_dem_is_flipped_to_float32(tmp_path):
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    array[1, 2] = -1
    path = _write(tmp_path / "south_up.tif", array, Affine(2, 0, 700000, 0, 2, 6100000), nodata=-1)
    dem = read_dem(path)
    assert dem.transform == Affine(2, 0, 700000, 0, -2, 6100006)
    assert dem.array.dtype == np.float32 and dem.cell_area_m2 == 4.0
    expected = array[::-1].astype(np.float32)
    nodata = expected == -1
    np.testing.assert_array_equal(dem.nodata, nodata)
    np.testing.assert_array_equal(dem.array[~nodata], expected[~nodata])


def test_files_that_are_not_dems_are_refused(tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(InvalidInput, match="notes.tif is not a raster"):
        read_dem(text)
    nocrs = _write(tmp_path / "nocrs.tif", np.ones((4, 4), np.float32),
                   Affine(1, 0, 0, 0, -1, 4), crs=None)  # fmt: skip
    with pytest.raises(CRSMismatch, match="declares no coordinate reference system"):
        read_dem(nocrs)
    with pytest.raises(InvalidInput, match="has 1 band"):
        read_dem(nocrs, band=2)


def test_an_ascii_grid_reads_like_a_geotiff(tmp_path):
    asc = tmp_path / "dem.asc"
    asc.write_text("ncols 3\nnrows 2\nxllcorner 727000\nyllcorner 6171000\ncellsize 0.4\n"
                   "NODATA_value -9999\n1.5 2.5 -9999\n4 5 6\n")  # fmt: skip
    asc.with_suffix(".prj").write_text(CRS.from_epsg(25832).to_wkt(version="WKT1_ESRI"))
    dem = read_dem(asc)
    assert dem.crs.to_epsg() == 25832 and dem.cell_area_m2 == pytest.approx(0.16)
    np.testing.assert_array_equal(dem.nodata, [[False, False, True], [False, False, False]])
    assert dem.array[0, 0] == 1.5 and dem.array[1, 2] == 6


# -- writing ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cog_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(6)
    array = rng.gamma(2.0, 0.3, size=(1100, 900)).astype(dtype)
    array[rng.random(array.shape) < 0.01] = np.nan
    transform = Affine(0.4, 0, 727000, 0, -0.4, 6172000)
    path = write_cog(tmp_path / "out" / "depth.tif", array, transform, 25832,
                     tags={"VERTICAL_DATUM": "DVR90", "RAIN_MM": "100"})  # fmt: skip
    assert cog_validate(path) == (True, [], [])
    with rasterio.open(path) as cog:
        back = cog.read(1)
        assert cog.crs.to_epsg() == 25832 and cog.transform == transform
        assert np.isnan(cog.nodata) and cog.dtypes[0] == np.dtype(dtype).name
        assert cog.overviews(1) == [2] and cog.block_shapes[0] == (512, 512)
        assert cog.tags()["VERTICAL_DATUM"] == "DVR90" and cog.tags()["RAIN_MM"] == "100"
    np.testing.assert_array_equal(back, array)  # NaN where NaN
    assert read_dem(path).vertical_datum == "DVR90"


def test_cog_without_overviews_and_of_integers(tmp_path):
    labels = np.arange(600 * 700, dtype=np.int32).reshape(600, 700)
    path = write_cog(tmp_path / "labels.tif", labels, Affine(1, 0, 0, 0, -1, 600), 25832,
                     overviews=False)  # fmt: skip
    assert cog_validate(path)[0]
    with rasterio.open(path) as cog:
        assert cog.overviews(1) == [] and cog.nodata is None
        np.testing.assert_array_equal(cog.read(1), labels)
    mask = write_cog(tmp_path / "mask.tif", labels % 3 == 0, Affine(1, 0, 0, 0, -1, 600), 25832)
    with rasterio.open(mask) as cog:
        assert cog.dtypes[0] == "uint8" and cog.read(1).sum() == (labels % 3 == 0).sum()


def test_cog_is_replaced_whole_or_not_at_all(tmp_path):
    path = tmp_path / "depth.tif"
    grid = Affine(1, 0, 0, 0, -1, 10)
    write_cog(path, np.zeros((10, 10), np.float32), grid, 25832)
    write_cog(path, np.ones((10, 10), np.float32), grid, 25832)
    with rasterio.open(path) as cog:
        assert cog.read(1).min() == 1.0
    with pytest.raises(TypeError):
        write_cog(path, np.full((10, 10), "x", dtype=object), grid, 25832)
    with pytest.raises(InvalidInput, match="north-up"):
        write_cog(path, np.zeros((10, 10)), Affine(1, 0, 0, 0, 1, 0), 25832)
    with rasterio.open(path) as cog:
        assert cog.read(1).min() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["depth.tif"]  # no temporary files left


# -- from the database --------------------------------------------------------------


@pytest.fixture(scope="module")
def db(settings, shared_data):
    """A Database with a data directory of its own, holding the Danish DTM as a layer."""
    data_dir = settings.data_dir / settings.database.name / "flood_io"
    shutil.rmtree(data_dir, ignore_errors=True)
    database = Database(settings.model_copy(update={"data_dir": data_dir}))
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = %s", (TERRAIN_LAYER,))
    ingest(database, "terrain", [shared_data / DK_DTM],
           IngestOptions(show_progress=False, extra={"layer": TERRAIN_LAYER}))  # fmt: skip
    yield database
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = %s", (TERRAIN_LAYER,))
    database.close()
    shutil.rmtree(data_dir, ignore_errors=True)


def test_terrain_layer_reads_from_the_catalog(db, shared_data):
    dem = read_terrain_layer(db, TERRAIN_LAYER)
    source = read_dem(shared_data / DK_DTM)
    assert dem.crs.to_epsg() == 25832 and dem.transform == source.transform
    assert dem.vertical_datum == "DVR90" and dem.cell_area_m2 == 100.0
    np.testing.assert_array_equal(dem.nodata, source.nodata)
    np.testing.assert_array_equal(dem.array, source.array)  # NaN where NaN
    with pytest.raises(NotFound, match="no layer 'terrain_nowhere'"):
        read_terrain_layer(db, "terrain_nowhere")


def test_terrain_layer_with_its_file_gone_is_not_found(db, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("INSERT INTO geoby.layers (id, title, theme, kind, raster_path) VALUES"
                    " ('terrain_flood_gone', 'gone', 'terrain', 'raster', 'terrain/gone.tif')")  # fmt: skip
    try:
        with pytest.raises(NotFound, match="raster of layer 'terrain_flood_gone' is missing"):
            read_terrain_layer(db, "terrain_flood_gone")
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM geoby.layers WHERE id = 'terrain_flood_gone'")


@pytest.fixture(scope="module")
def climate(database, tmp_path_factory):
    """The sample town's IDF table and climate factors, loaded; dropped afterwards."""
    out = tmp_path_factory.mktemp("flood_climate")
    write_climate(out, seed=7)
    with database.connection("ingest") as conn:
        drop_layers(conn, CLIMATE_LAYERS)
    files = [out / "climate" / "idf_table.csv", out / "climate" / "climate_factors.csv"]
    ingest(database, "climate", files, IngestOptions(show_progress=False))
    yield out / "climate"
    with database.connection("ingest") as conn:
        drop_layers(conn, CLIMATE_LAYERS)


def test_rain_depth_is_idf_times_climate_factor_minus_drainage(database, climate):
    idf = pd.read_csv(climate / "idf_table.csv")
    factors = pd.read_csv(climate / "climate_factors.csv")
    depth = idf.query("duration_min == 60 and return_period_years == 100")["depth_mm"].item()
    factor = factors.query("return_period_years == 100")["climate_factor"].item()
    rain = rain_depth_mm(database, 100, 60, drainage_mm=10.0)
    assert isinstance(rain, DesignRain)
    assert rain.idf_depth_mm == pytest.approx(depth) and rain.climate_factor == pytest.approx(
        factor
    )
    assert rain.drainage_mm == 10.0 and rain.design_depth_mm == pytest.approx(depth * factor)
    assert float(rain) == rain.rain_mm == pytest.approx(depth * factor - 10.0)
    today = rain_depth_mm(database, 100, 60, climate_factor=1.0)
    assert today.rain_mm == pytest.approx(depth) and today.climate_factor == 1.0
    # between table entries the IDF depth is log-linear, as ingest.climate_design has it
    between = rain_depth_mm(database, 30, 45, climate_factor=1.0)
    rows = idf.set_index(["duration_min", "return_period_years"])["depth_mm"]
    assert rows[30, 20] < between.idf_depth_mm < rows[60, 50]


def test_drainage_beyond_the_rain_leaves_none_and_bad_values_are_refused(database, climate):
    dry = rain_depth_mm(database, 2, 10, drainage_mm=500.0)
    assert dry.rain_mm == 0.0 and dry.design_depth_mm > 0
    with pytest.raises(InvalidInput, match="drainage_mm must be a number >= 0"):
        rain_depth_mm(database, 100, 60, drainage_mm=-1.0)
    with pytest.raises(InvalidInput, match="climate_factor must be a positive"):
        rain_depth_mm(database, 100, 60, climate_factor=0.0)
    with pytest.raises(InvalidInput, match="outside the tabulated"):
        rain_depth_mm(database, 1000, 60)


@pytest.mark.parametrize("staged_above", [None, 0])
def test_write_cog_in_memory_and_staged_on_disk_give_the_same_valid_cog(
    tmp_path, monkeypatch, staged_above
):
    import flood.io

    if staged_above is not None:  # force the on-disk path a large raster takes
        monkeypatch.setattr(flood.io, "IN_MEMORY_BYTES", staged_above)
    depth = np.random.default_rng(3).random((700, 900)).astype(np.float32)
    depth[:5, :5] = np.nan
    out = write_cog(tmp_path / "depth.tif", depth, Affine(2, 0, 700_000, 0, -2, 6_200_000), 25832)
    assert cog_validate(out)[0]
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), depth)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth.tif"]  # nothing left behind
