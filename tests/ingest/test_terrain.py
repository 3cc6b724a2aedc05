"""The terrain family on the real test database: COGs, mosaics, LAS, PostGIS heights."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import laspy
import numpy as np
import pytest
import rasterio
from rasterio.windows import from_bounds
from rio_cogeo.cogeo import cog_validate

from ingest.pipelines import IngestOptions
from ingest.sample.dem import ASC_TILE, XYZ_TILE, tile_name, write_dem
from ingest.sample.terrain import TerrainModel
from ingest.terrain import ingest, terrain_height
from ingest.terrain_cog import FileSwap
from layers import catalog
from layers.database import Database
from layers.errors import CRSMismatch, DatabaseError, InvalidInput

DK_DTM = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"
DK_LAS = "dk-terrain/surfclass_1km_6171_727_decimated.las"
DK_GEOID = "dk-terrain/dkgeoid13b_utm32.tif"
TEXAS = "dem-texas/dem.tif"
SAMPLE_CELL = 5.0  # 16 tiles of 200 x 200: an 800 x 800 mosaic, so it gets an overview


@pytest.fixture(scope="module")
def db(settings):
    """A Database whose data directory belongs to this test database alone."""
    data_dir = settings.data_dir / settings.database.name
    shutil.rmtree(data_dir, ignore_errors=True)
    database = Database(settings.model_copy(update={"data_dir": data_dir}))
    yield database
    database.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The sample town's DEM files (16 DHM tiles, one ASCII grid, one XYZ) at 5 m."""
    out = tmp_path_factory.mktemp("sample")
    write_dem(out, TerrainModel.build(42), SAMPLE_CELL, False)
    return out / "terrain"


@pytest.fixture
def fresh(owner_conn):
    """Remove the catalog rows and PostGIS tiles of the layers a test uses."""
    used: list[str] = []

    def use(*ids: str) -> None:
        used.extend(ids)
        _drop(owner_conn, ids)

    yield use
    _drop(owner_conn, used)


def _drop(conn, ids) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = ANY(%s)", (list(ids),))


def _run(db, paths, **options) -> list:
    extra = options.pop("extra", {})
    return ingest(db, [Path(p) for p in paths], IngestOptions(show_progress=False, extra=extra,
                                                              **options))  # fmt: skip


def _cog(db, layer_id: str) -> Path:
    return Path(db.settings.data_dir) / "terrain" / f"{layer_id}.tif"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sql_matches_cog(db, layer_id: str, points) -> list[float | None]:
    """Heights through SQL (as the public read role) next to rasterio's sample of the COG."""
    with rasterio.open(_cog(db, layer_id)) as cog:
        expected = [None if v.mask[0] else float(v[0]) for v in cog.sample(points, masked=True)]
    with db.connection("read") as conn:
        got = [terrain_height(conn, layer_id, x, y) for x, y in points]
    assert got == expected
    return got


def _tiles(sample: Path) -> list[Path]:
    return sorted(sample.glob("DTM_1km_*_*[0-9].tif"))


# -- real data ----------------------------------------------------------------------


def test_dk_dtm_ingests_as_cog_with_heights_in_sql(db, fresh, shared_data):
    fresh("terrain_dk")
    source = shared_data / DK_DTM
    [report] = _run(db, [source], extra={"layer": "terrain_dk"}, licence="Danish free geodata")
    assert not report.skipped and report.layers == ["terrain_dk"]
    path = _cog(db, "terrain_dk")
    valid, errors, _ = cog_validate(str(path), quiet=True)
    assert valid and not errors
    assert path.stat().st_mode & 0o777 == 0o644
    with rasterio.open(source) as src, rasterio.open(path) as cog:
        assert cog.crs.to_epsg() == 25832 and cog.dtypes[0] == "float32" and cog.nodata == -9999
        assert cog.transform == src.transform and cog.block_shapes[0] == (512, 512)
        assert cog.profile["compress"] == "deflate"
        assert np.array_equal(cog.read(1), src.read(1))  # nodata was -9999 already
        nodata_rows, nodata_cols = np.nonzero(src.read_masks(1) == 0)
        hole = src.xy(nodata_rows[0], nodata_cols[0])
    with db.connection("read") as conn:
        layer = catalog.get(conn, "terrain_dk")
        [loaded] = catalog.sources(conn, "terrain_dk")
    assert (layer.kind, layer.theme, layer.vertical_datum) == ("raster", "terrain", "DVR90")
    assert layer.raster_path == "terrain/terrain_dk.tif"
    assert layer.extent == pytest.approx((727000, 6171000, 728000, 6172000))
    assert layer.properties["resolution"] == 10 and layer.properties["source_count"] == 1
    assert loaded.checksum == _digest(source) and loaded.row_count == 10_000
    rng = np.random.default_rng(7)
    points = [(727100.0, 6171900.0), (727010.0, 6171970.0), (727999.9, 6171000.1), hole]
    points += [tuple(p) for p in rng.uniform((727000, 6171000), (728000, 6172000), (20, 2))]
    heights = _sql_matches_cog(db, "terrain_dk", points)
    assert heights[3] is None and all(h is not None for h in heights[:3])
    with db.connection("read") as conn:
        assert terrain_height(conn, "terrain_dk", 726999.0, 6171500.0) is None
        assert terrain_height(conn, "terrain_dk", 728000.0, 6171500.0) is None


def test_rerun_is_a_no_op_and_replace_rebuilds(db, fresh, shared_data):
    fresh("terrain_rerun")
    source = [shared_data / DK_DTM]
    _run(db, source, extra={"layer": "terrain_rerun"})
    inode = _cog(db, "terrain_rerun").stat().st_ino
    [again] = _run(db, source, extra={"layer": "terrain_rerun"})
    assert again.skipped
    assert _cog(db, "terrain_rerun").stat().st_ino == inode
    [rebuilt] = _run(db, source, mode="replace", extra={"layer": "terrain_rerun"})
    assert not rebuilt.skipped
    assert _cog(db, "terrain_rerun").stat().st_ino != inode
    with db.connection("read") as conn:
        assert [s.mode for s in catalog.sources(conn, "terrain_rerun")] == ["replace"]


def test_las_ground_points_grid_to_the_dtm_of_the_same_tile(db, fresh, shared_data):
    fresh("terrain_las")
    extra = {"layer": "terrain_las", "geoid": str(shared_data / DK_GEOID), "resolution": "10"}
    [report] = _run(db, [shared_data / DK_LAS], crs="EPSG:25832", extra=extra)
    assert report.rows_in == 9608 and not report.warnings  # class 2 points of 16,133
    with rasterio.open(_cog(db, "terrain_las")) as cog, rasterio.open(shared_data / DK_DTM) as ref:
        assert cog.transform == ref.transform and cog.crs.to_epsg() == 25832
        diff = (cog.read(1, masked=True) - ref.read(1, masked=True)).compressed()
    assert diff.size > 9900
    assert np.median(np.abs(diff)) < 0.05  # measured: 0.009 m
    assert abs(float(np.mean(diff))) < 0.05 and np.mean(np.abs(diff) < 0.5) > 0.98
    with db.connection("read") as conn:
        layer = catalog.get(conn, "terrain_las")
        names = {Path(s.source_file).name for s in catalog.sources(conn, "terrain_las")}
    assert layer.vertical_datum == "DVR90" and "ground points" in layer.title
    assert names == {Path(DK_LAS).name, Path(DK_GEOID).name}
    _sql_matches_cog(db, "terrain_las", [(727505.0, 6171505.0), (727000.0, 6172000.0)])


def test_laz_grids_like_its_las(db, fresh, shared_data, tmp_path):
    fresh("terrain_laz")
    laz = tmp_path / "tile.laz"
    laspy.read(shared_data / DK_LAS).write(laz)  # LAZ through lazrs
    extra = {"layer": "terrain_laz", "geoid": str(shared_data / DK_GEOID)}  # default resolution
    [report] = _run(db, [laz], crs="EPSG:25832", extra=extra)
    assert report.rows_in == 9608
    with rasterio.open(_cog(db, "terrain_laz")) as cog, rasterio.open(shared_data / DK_DTM) as ref:
        assert cog.res == (10.0, 10.0)  # the round spacing nearest the ground point spacing
        diff = (cog.read(1, masked=True) - ref.read(1, masked=True)).compressed()
    assert np.median(np.abs(diff)) < 0.05


def test_las_without_geoid_keeps_ellipsoidal_heights_and_says_so(db, fresh, shared_data):
    fresh("terrain_ellipsoid")
    [report] = _run(db, [shared_data / DK_LAS], crs="EPSG:25832",
                    extra={"layer": "terrain_ellipsoid", "resolution": "10"})  # fmt: skip
    assert any("no geoid grid" in w for w in report.warnings)
    with (
        rasterio.open(_cog(db, "terrain_ellipsoid")) as cog,
        rasterio.open(shared_data / DK_DTM) as ref,
    ):
        diff = (cog.read(1, masked=True) - ref.read(1, masked=True)).compressed()
    assert 35 < np.median(diff) < 40  # the geoid undulation near Copenhagen
    with db.connection("read") as conn:
        assert catalog.get(conn, "terrain_ellipsoid").vertical_datum == "unknown"


def test_las_without_crs_is_refused(db, fresh, shared_data):
    fresh("terrain_nocrs")
    with pytest.raises(CRSMismatch, match="surfclass_1km_6171_727_decimated.las declares no"):
        _run(db, [shared_data / DK_LAS], extra={"layer": "terrain_nocrs"})
    assert not _cog(db, "terrain_nocrs").exists()


def test_texas_dem_is_reprojected_to_metres(db, fresh, shared_data, tmp_path):
    fresh("terrain_texas")
    source = tmp_path / "dem.tif"
    shutil.copy(shared_data / TEXAS, source)
    with rasterio.open(source, "r+") as dem:  # punch a nodata hole to follow through
        heights = dem.read(1)
        heights[150:200, 150:200] = dem.nodata
        dem.write(heights, 1)
        hole = dem.xy(175, 175)
        original = dem.read(1, masked=True)
    [report] = _run(db, [source], extra={"layer": "terrain_texas"})
    assert any("outside the area of use" in w for w in report.warnings)
    assert any("vertical datum of dem.tif is unknown" in w for w in report.warnings)
    from layers.crs import transformer

    hole_xy = transformer(4326, 25832).transform(*hole)
    with rasterio.open(_cog(db, "terrain_texas")) as cog:
        assert cog.crs.to_epsg() == 25832 and cog.dtypes[0] == "float32" and cog.nodata == -9999
        assert 100 < cog.res[0] < 200 and cog.res[0] == cog.res[1]  # metres, not degrees
        out = cog.read(1, masked=True)
        assert next(cog.sample([hole_xy], masked=True)).mask[0]
    assert abs(out.mean() - original.mean()) < 1.0
    assert np.percentile(out.compressed(), [5, 50, 95]) == pytest.approx(
        np.percentile(original.compressed(), [5, 50, 95]), abs=2.0
    )
    assert original.min() - 1 <= out.min() and out.max() <= original.max() + 1
    with db.connection("read") as conn:
        assert catalog.get(conn, "terrain_texas").vertical_datum == "unknown"
        assert terrain_height(conn, "terrain_texas", *hole_xy) is None
    _run(db, [source], mode="replace", extra={"layer": "terrain_texas", "vertical_datum": "EGM96"})
    with db.connection("read") as conn:
        assert catalog.get(conn, "terrain_texas").vertical_datum == "EGM96"


# -- the sample town ----------------------------------------------------------------


def test_sample_tiles_mosaic_into_one_seamless_cog(db, fresh, sample):
    fresh("terrain_sample")
    tiles = _tiles(sample)
    assert len(tiles) == 16
    [report] = _run(db, tiles, extra={"layer": "terrain_sample"})
    assert report.rows_in == report.inserted == 800 * 800
    path = _cog(db, "terrain_sample")
    assert cog_validate(str(path), quiet=True)[0]
    with rasterio.open(path) as cog:
        assert (cog.width, cog.height, cog.overviews(1)) == (800, 800, [2])
        assert not (cog.read(1) == -9999).any()
        for tile in tiles:
            with rasterio.open(tile) as src:
                window = from_bounds(*src.bounds, transform=cog.transform)
                assert np.array_equal(cog.read(1, window=window), src.read(1)), tile.name
    with db.connection("read") as conn:
        layer = catalog.get(conn, "terrain_sample")
        assert len(catalog.sources(conn, "terrain_sample")) == 16
    assert layer.vertical_datum == "DVR90" and layer.properties["overview_levels"] == [2]
    assert layer.extent == pytest.approx((720000, 6170000, 724000, 6174000))
    edges = [(721000.0, 6171000.0), (720999.99, 6171000.01), (722000.0, 6172560.0)]
    _sql_matches_cog(db, "terrain_sample", edges + [(723999.0, 6170001.0)])


def test_ascii_grid_and_xyz_tiles_ingest(db, fresh, sample):
    fresh("terrain_asc", "terrain_xyz")
    asc = sample / f"{tile_name(*ASC_TILE)}_10m.asc"
    _run(db, [asc, asc.with_suffix(".prj")], extra={"layer": "terrain_asc"})
    with rasterio.open(asc) as src, rasterio.open(_cog(db, "terrain_asc")) as cog:
        assert cog.crs.to_epsg() == 25832 and cog.transform == src.transform
        assert np.array_equal(cog.read(1), src.read(1).astype(np.float32))
    with db.connection("read") as conn:  # no tag, but in Denmark: DVR90
        assert catalog.get(conn, "terrain_asc").vertical_datum == "DVR90"
    xyz = sample / f"{tile_name(*XYZ_TILE)}_10m.xyz"
    with pytest.raises(CRSMismatch, match="declares no coordinate reference system"):
        _run(db, [xyz], extra={"layer": "terrain_xyz"})
    _run(db, [xyz], crs="EPSG:25832", extra={"layer": "terrain_xyz"})
    points = np.loadtxt(xyz)
    with rasterio.open(_cog(db, "terrain_xyz")) as cog:
        assert cog.bounds == (722000, 6172000, 723000, 6173000) and cog.res == (10, 10)
        got = np.array([v[0] for v in cog.sample(points[::97, :2])])
    assert np.array_equal(got, points[::97, 2].astype(np.float32))


def test_insert_fills_gaps_and_upsert_overwrites(db, fresh, sample, tmp_path):
    fresh("terrain_parts")
    tiles = _tiles(sample)
    _run(db, tiles[:8], extra={"layer": "terrain_parts"})
    [report] = _run(db, tiles, extra={"layer": "terrain_parts"})
    assert report.warnings == ["8 files already in terrain_parts were skipped"]
    with rasterio.open(_cog(db, "terrain_parts")) as cog:
        assert (cog.width, cog.height) == (800, 800) and not (cog.read(1) == -9999).any()
    raised = tmp_path / tiles[0].name
    with rasterio.open(tiles[0]) as src:
        profile, heights, centre = src.profile, src.read(1), src.xy(100, 100)
    with rasterio.open(raised, "w", **profile) as out:
        out.write(heights + 100, 1)
    before = _sql_matches_cog(db, "terrain_parts", [centre])[0]
    _run(db, [raised], mode="upsert", extra={"layer": "terrain_parts"})
    assert _sql_matches_cog(db, "terrain_parts", [centre])[0] == pytest.approx(before + 100)
    with rasterio.open(raised, "w", **profile) as out:
        out.write(heights + 200, 1)
    _run(db, [raised], extra={"layer": "terrain_parts"})  # insert: cells already there win
    assert _sql_matches_cog(db, "terrain_parts", [centre])[0] == pytest.approx(before + 100)
    with db.connection("read") as conn:
        assert len(catalog.sources(conn, "terrain_parts")) == 18
        assert catalog.get(conn, "terrain_parts").properties["source_count"] == 18


# -- bad input: clear errors, nothing half-done ---------------------------------------


def test_a_failed_load_leaves_the_previous_cog_and_catalog(db, fresh, shared_data, tmp_path):
    fresh("terrain_keep")
    _run(db, [shared_data / DK_DTM], extra={"layer": "terrain_keep"})
    digest = _digest(_cog(db, "terrain_keep"))
    with db.connection("read") as conn:
        before = catalog.get(conn, "terrain_keep"), catalog.sources(conn, "terrain_keep")
        height = terrain_height(conn, "terrain_keep", 727505.0, 6171505.0)
    broken = tmp_path / "not_a_raster.tif"
    broken.write_text("this is not a GeoTIFF\n")
    with pytest.raises(InvalidInput, match="not_a_raster.tif is not a raster") as err:
        _run(db, [shared_data / DK_DTM, broken], mode="replace", extra={"layer": "terrain_keep"})
    assert err.value.record == "not_a_raster.tif"
    assert _digest(_cog(db, "terrain_keep")) == digest
    assert sorted(p.name for p in _cog(db, "x").parent.iterdir() if "keep" in p.name) == [
        "terrain_keep.tif"]  # fmt: skip
    with db.connection("read") as conn:
        assert (catalog.get(conn, "terrain_keep"), catalog.sources(conn, "terrain_keep")) == before
        assert terrain_height(conn, "terrain_keep", 727505.0, 6171505.0) == height


def test_a_database_failure_after_the_swap_puts_the_previous_cog_back(
    db, fresh, shared_data, owner_conn
):
    fresh("terrain_trap")
    _run(db, [shared_data / DK_DTM], extra={"layer": "terrain_trap"})
    digest = _digest(_cog(db, "terrain_trap"))
    with db.connection("read") as conn:
        before = catalog.get(conn, "terrain_trap"), catalog.sources(conn, "terrain_trap")
    with (
        owner_conn.cursor() as cur
    ):  # a failure inside the transaction, after the new COG is in place
        cur.execute(
            "CREATE FUNCTION pg_temp.trap() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'trapped'; END$$;"
            " CREATE TRIGGER trap BEFORE INSERT ON data.raster_tiles FOR EACH ROW"
            " WHEN (NEW.layer_id = 'terrain_trap') EXECUTE FUNCTION pg_temp.trap()"
        )
    try:
        with pytest.raises(DatabaseError):
            _run(db, [shared_data / TEXAS], mode="replace", extra={"layer": "terrain_trap"})
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DROP TRIGGER trap ON data.raster_tiles")
    assert _digest(_cog(db, "terrain_trap")) == digest
    leftovers = [p.name for p in _cog(db, "x").parent.iterdir() if "trap" in p.name]
    assert leftovers == ["terrain_trap.tif"]
    with db.connection("read") as conn:
        assert (catalog.get(conn, "terrain_trap"), catalog.sources(conn, "terrain_trap")) == before
    _sql_matches_cog(db, "terrain_trap", [(727505.0, 6171505.0)])


def test_tiles_of_another_resolution_or_crs_are_refused_by_name(db, fresh, sample, tmp_path):
    fresh("terrain_mixed")
    tiles = _tiles(sample)
    asc = sample / f"{tile_name(*ASC_TILE)}_10m.asc"
    with pytest.raises(InvalidInput, match=r"_10m.asc does not fit .*cells are 10 m.* 5 m"):
        _run(db, [*tiles, asc], extra={"layer": "terrain_mixed"})
    other = tmp_path / "DTM_1km_6174_720.tif"
    with rasterio.open(tiles[0]) as src:
        profile, heights = src.profile, src.read(1)
    profile.update(crs="EPSG:25833")
    with rasterio.open(other, "w", **profile) as out:
        out.write(heights, 1)
    with pytest.raises(InvalidInput, match="DTM_1km_6174_720.tif does not fit .* EPSG:25833"):
        _run(db, [*tiles[:2], other], extra={"layer": "terrain_mixed"})
    with db.connection("read") as conn:
        assert catalog.list_layers(conn, ids=["terrain_mixed"]) == []
    assert not _cog(db, "terrain_mixed").exists()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["0 0 1", "10 0 2", "20 0 3", "30 0 4", "0 10 4", "13 10 5", "20 10 6"],
            r"line 6: x = 720013.0 is not on the regular grid \(spacing 10",
        ),
        (["x y z", "0 0 1", "10 0 2", "0 10 3", "10 10 x"], r"line 5: z is not a number"),
        (
            ["0 0 1", "10 0 2", "0 10 3", "0 10 4"],
            r"line 4: point \(720000.0, 6170010.0\) is repeated",
        ),
        (["0 0 1", "0.01 0 2", "1000 1000 3"], r"is not a regular grid"),
    ],
)
def test_bad_xyz_is_refused_with_its_line(db, fresh, tmp_path, lines, message):
    fresh("terrain_badxyz")
    path = tmp_path / "bad.xyz"
    path.write_text("\n".join(f"{line}" for line in _shift(lines)) + "\n")
    with pytest.raises(InvalidInput, match=message):
        _run(db, [path], crs="EPSG:25832", extra={"layer": "terrain_badxyz"})
    assert not _cog(db, "terrain_badxyz").exists()


def _shift(lines: list[str]) -> list[str]:
    """Move the test grids into the sample town (keeping the header and bad fields)."""
    out = []
    for line in lines:
        parts = line.split()
        try:
            out.append(f"{float(parts[0]) + 720000:.2f} {float(parts[1]) + 6170000:.2f} "
                       + parts[2])  # fmt: skip
        except ValueError:
            out.append(line)
    return out


def _write_las(path: Path, classes: np.ndarray) -> None:
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.offsets, header.scales = [720000, 6170000, 0], [0.01, 0.01, 0.01]
    las = laspy.LasData(header)
    n = len(classes)
    las.x, las.y = 720000 + np.arange(n) * 3.0, 6170000 + np.arange(n) * 2.0
    las.z = np.full(n, 40.0)
    las.classification = classes
    las.write(path)


def test_point_clouds_without_points_or_ground_are_refused(db, fresh, tmp_path):
    fresh("terrain_badlas")
    no_ground = tmp_path / "unclassified.las"
    _write_las(no_ground, np.ones(50, dtype=np.uint8))
    with pytest.raises(InvalidInput, match=r"unclassified.las holds 50 points but none of class 2"):
        _run(db, [no_ground], crs="EPSG:25832", extra={"layer": "terrain_badlas"})
    empty = tmp_path / "empty.las"
    _write_las(empty, np.zeros(0, dtype=np.uint8))
    with pytest.raises(InvalidInput, match="empty.las holds no points"):
        _run(db, [empty], crs="EPSG:25832", extra={"layer": "terrain_badlas"})
    not_las = tmp_path / "text.las"
    not_las.write_text("x y z\n")
    with pytest.raises(InvalidInput, match="text.las is not a LAS/LAZ point cloud"):
        _run(db, [not_las], crs="EPSG:25832", extra={"layer": "terrain_badlas"})
    assert not _cog(db, "terrain_badlas").exists()


def test_inputs_that_cannot_form_a_layer_are_refused(db, shared_data, sample):
    with pytest.raises(InvalidInput, match="point clouds and rasters cannot form one layer"):
        _run(db, [shared_data / DK_LAS, shared_data / DK_DTM])
    with pytest.raises(InvalidInput, match="only sidecar files"):
        _run(db, [sample / f"{tile_name(*ASC_TILE)}_10m.prj"])
    with pytest.raises(InvalidInput, match="start with 'terrain_'"):
        _run(db, [shared_data / DK_DTM], extra={"layer": "dtm"})
    with pytest.raises(InvalidInput, match="geoid applies to point clouds"):
        _run(db, [shared_data / DK_DTM], extra={"geoid": str(shared_data / DK_GEOID)})
    with pytest.raises(InvalidInput, match="resolution must be a positive number"):
        _run(db, [shared_data / DK_LAS], crs="EPSG:25832", extra={"resolution": "-1"})
    with pytest.raises(InvalidInput, match="classes must be class numbers"):
        _run(db, [shared_data / DK_LAS], crs="EPSG:25832", extra={"classes": "ground"})
    with pytest.raises(InvalidInput, match="unknown mode 'merge'"):
        _run(db, [shared_data / DK_DTM], mode="merge")


def test_swap_puts_the_previous_file_back_on_failure(tmp_path):
    target, new = tmp_path / "layer.tif", tmp_path / "new.tif"
    target.write_text("old")
    new.write_text("new")
    swap = FileSwap(target)
    swap.install(new)
    assert target.read_text() == "new"
    swap.undo()
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "layer.tif"]  # fmt: skip
    fresh_target = tmp_path / "first.tif"
    new.write_text("new")
    swap = FileSwap(fresh_target)
    swap.install(new)
    swap.undo()
    assert not fresh_target.exists()


def test_new_sessions_read_out_db_rasters(db):
    with db.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('postgis.enable_outdb_rasters'),"
                    " current_setting('postgis.gdal_enabled_drivers')")  # fmt: skip
        enabled, drivers = cur.fetchone()
        cur.execute("SELECT has_function_privilege('geoby.terrain_height(text, float8, float8)',"
                    " 'EXECUTE')")  # fmt: skip
        can_call = cur.fetchone()[0]
    assert enabled in ("true", "on") and drivers == "GTiff" and can_call
