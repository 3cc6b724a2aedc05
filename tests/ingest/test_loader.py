"""The shared loader on the real test database, with files written per test."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, Polygon

from ingest.loader import Part, load_file
from ingest.source import SourceFile
from ingest.spec import TableSpec
from ingest.vector import read_chunks, vector_parts
from layers import catalog
from layers.catalog import Layer
from layers.errors import Conflict, CRSMismatch, InvalidInput
from tests.db_helpers import count, drop_layers

E, N = 720_000, 6_170_000  # inside the sample town, EPSG:25832


def _layer(layer_id: str) -> Layer:
    return Layer(id=layer_id, title=layer_id, theme="water", kind="vector",
                 table_schema="data", table_name=layer_id)  # fmt: skip


@pytest.fixture
def fresh(owner_conn):
    """Drop the tables and catalog rows a test uses, before and after."""
    used: list[str] = []

    def use(*ids: str) -> None:
        used.extend(ids)
        _drop(owner_conn, ids)

    yield use
    _drop(owner_conn, used)


def _drop(conn, ids) -> None:
    drop_layers(conn, ids)


def _count(conn, table: str) -> int | None:
    return count(conn, table)


def _wells(n: int = 5, **columns) -> gpd.GeoDataFrame:
    data = {"well_id": [f"W{i}" for i in range(n)], "depth_m": [1.5 * i for i in range(n)]}
    data.update(columns)
    geometry = [Point(E + 10 * i, N + 10 * i) for i in range(n)]
    return gpd.GeoDataFrame(data, geometry=geometry, crs=25832)


def _spec(layer_id: str, key=("well_id",)) -> TableSpec:
    return TableSpec(layer=_layer(layer_id), columns={"well_id": "text", "depth_m": "double precision"},
                     geometry_type="MultiPoint", key=key, required=("well_id",))  # fmt: skip


def _load(database, path, spec, **kw):
    source = SourceFile.open(path)
    return load_file(database, source, [Part(spec, read_chunks(path))], **kw)


def test_insert_reprojects_and_records_provenance(database, owner_conn, fresh, tmp_path):
    fresh("ld_wells")
    path = tmp_path / "wells.geojson"
    _wells().to_crs(4326).to_file(path)
    report = _load(database, path, _spec("ld_wells"))
    assert (report.rows_in, report.inserted, report.rejected) == (5, 5, 0)
    assert report.layers == ["ld_wells"]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT Find_SRID('data', 'ld_wells', 'geom'), GeometryType(geom),"
                    " ST_X(ST_GeometryN(geom, 1)), _record, _source FROM data.ld_wells"
                    " WHERE well_id = 'W1'")  # fmt: skip
        srid, kind, x, record, label = cur.fetchone()
    assert (srid, kind, label) == (25832, "MULTIPOINT", "wells.geojson")
    assert x == pytest.approx(E + 10, abs=0.01)  # through EPSG:4326 and back
    assert record == "1"
    with database.connection("read") as conn:
        layer = catalog.get(conn, "ld_wells")
        sources = catalog.sources(conn, "ld_wells")
    assert layer.row_count == 5 and layer.geometry_type == "MultiPoint"
    assert layer.extent == pytest.approx((E, N, E + 40, N + 40), abs=0.01)
    assert [s.checksum for s in sources] == [SourceFile.open(path).checksum]


def test_rerun_is_a_no_op_and_replace_reloads(database, owner_conn, fresh, tmp_path):
    fresh("ld_rerun")
    path = tmp_path / "wells.gpkg"
    _wells().to_file(path)
    first = _load(database, path, _spec("ld_rerun"))
    again = _load(database, path, _spec("ld_rerun"))
    assert first.inserted == 5 and again.skipped and "already loaded" in again.summary()
    reloaded = _load(database, path, _spec("ld_rerun"), mode="replace")
    assert (reloaded.deleted, reloaded.inserted) == (5, 5)
    assert _count(owner_conn, "ld_rerun") == 5


def test_upsert_by_natural_key(database, owner_conn, fresh, tmp_path):
    fresh("ld_upsert")
    first, second = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    _wells(3).to_file(first)
    changed = _wells(5)
    changed.loc[0, "depth_m"] = 99.0
    changed.to_file(second)
    _load(database, first, _spec("ld_upsert"))
    report = _load(database, second, _spec("ld_upsert"), mode="upsert")
    assert (report.inserted, report.updated) == (2, 3)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT depth_m, _source FROM data.ld_upsert WHERE well_id = 'W0'")
        assert cur.fetchone() == (99.0, "b.gpkg")
    assert _count(owner_conn, "ld_upsert") == 5


def test_insert_of_loaded_keys_is_a_conflict_and_changes_nothing(
    database, owner_conn, fresh, tmp_path
):
    fresh("ld_conflict")
    first, second = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    _wells(3).to_file(first)
    _wells(4).to_file(second)
    _load(database, first, _spec("ld_conflict"))
    with pytest.raises(Conflict, match="record 1 has a key already loaded from a.gpkg"):
        _load(database, second, _spec("ld_conflict"))
    assert _count(owner_conn, "ld_conflict") == 3


def test_duplicate_key_in_file_names_both_records(database, owner_conn, fresh, tmp_path):
    fresh("ld_dups")
    path = tmp_path / "dups.gpkg"
    _wells(4, well_id=["A", "B", "A", "C"]).to_file(path)
    with pytest.raises(InvalidInput, match=r"well_id = A occurs in records 1, 3"):
        _load(database, path, _spec("ld_dups"))
    assert _count(owner_conn, "ld_dups") is None


def test_bad_value_names_record_and_field_and_loads_nothing(database, owner_conn, fresh, tmp_path):
    fresh("ld_badvalue")
    path = tmp_path / "bad.geojson"
    frame = _wells(4)
    frame["depth_m"] = ["1.0", "2,5", "deep", "4"]
    frame.to_file(path)
    with pytest.raises(InvalidInput) as info:
        _load(database, path, _spec("ld_badvalue"))
    err = info.value
    assert "field 'depth_m' value 'deep' is not a valid double precision" in err.detail
    assert (err.record, err.field) == ("record 2", "depth_m")
    assert "bad.geojson" in err.detail
    assert _count(owner_conn, "ld_badvalue") is None
    with database.connection("read") as conn:
        assert catalog.list_layers(conn, ids=["ld_badvalue"]) == []


def test_missing_required_value_is_named(database, fresh, tmp_path):
    fresh("ld_required")
    path = tmp_path / "req.geojson"
    _wells(3, well_id=["A", None, "C"]).to_file(path)
    with pytest.raises(InvalidInput, match="required field 'well_id' is empty") as info:
        _load(database, path, _spec("ld_required", key=()))
    assert info.value.record == "record 1"


SQUARE = [(E, N), (E + 10, N), (E + 10, N + 10), (E, N + 10), (E, N)]
# a ring that touches itself at one vertex: invalid, and make_valid keeps its area
SELF_TOUCHING = [(E, N), (E + 10, N), (E + 10, N + 10), (E + 5, N), (E, N + 10), (E, N)]
BOW_TIE = [(E, N), (E + 10, N + 10), (E + 10, N), (E, N + 10), (E, N)]


def _parcels(rings) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"p{i}" for i in range(len(rings))]},
                            geometry=[Polygon(r) for r in rings], crs=25832)  # fmt: skip


def _parcel_parts(path, layer_id):
    return vector_parts(path, lambda name, kind: _layer(layer_id))


def test_repairable_geometry_is_repaired_and_counted(database, owner_conn, fresh, tmp_path):
    fresh("ld_repair")
    path = tmp_path / "parcels.gpkg"
    _parcels([SQUARE, SELF_TOUCHING]).to_file(path)
    report = load_file(database, SourceFile.open(path), _parcel_parts(path, "ld_repair"))
    assert (report.inserted, report.repaired, report.rejected) == (2, 1, 0)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT bool_and(ST_IsValid(geom)) FROM data.ld_repair")
        assert cur.fetchone() == (True,)


def test_repair_that_changes_meaning_is_refused(database, owner_conn, fresh, tmp_path):
    fresh("ld_bowtie")
    path = tmp_path / "bowtie.gpkg"
    _parcels([SQUARE, BOW_TIE]).to_file(path)
    with pytest.raises(InvalidInput, match=r"1 records refused, nothing loaded: record 2: invalid"):
        load_file(database, SourceFile.open(path), _parcel_parts(path, "ld_bowtie"))
    assert _count(owner_conn, "ld_bowtie") is None


def test_skip_invalid_keeps_the_refused_records(database, owner_conn, fresh, tmp_path):
    fresh("ld_skip")
    path = tmp_path / "bowtie.gpkg"
    _parcels([SQUARE, BOW_TIE, SQUARE]).to_file(path)
    report = load_file(database, SourceFile.open(path), _parcel_parts(path, "ld_skip"),
                       skip_invalid=True)  # fmt: skip
    assert (report.inserted, report.rejected) == (2, 1)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT record, reason FROM geoby.load_rejects WHERE layer_id = 'ld_skip'")
        record, reason = cur.fetchone()
    assert record == "2" and "Self-intersection" in reason


def test_lon_lat_in_a_projected_file_is_refused(database, owner_conn, fresh, tmp_path):
    fresh("ld_lonlat")
    path = tmp_path / "lonlat.geojson"
    frame = _wells(3)
    frame.loc[1, "geometry"] = Point(12.5, 55.7)  # lon/lat in a file that says EPSG:25832
    frame.to_file(path)
    with pytest.raises(InvalidInput, match=r"record 1: coordinate \(12.5, 55.7\) cannot be in "
                                           r"EPSG:25832; it looks like longitude/latitude"):  # fmt: skip
        _load(database, path, _spec("ld_lonlat"))
    assert _count(owner_conn, "ld_lonlat") is None


def test_file_without_crs_needs_one(database, fresh, tmp_path):
    fresh("ld_nocrs")
    path = tmp_path / "nocrs.csv"
    path.write_text("well_id,depth_m,WKT\nA,1,POINT (720000 6170000)\n")
    with pytest.raises(CRSMismatch, match="declares no coordinate reference system"):
        _load(database, path, _spec("ld_nocrs"))
    source = SourceFile.open(path)
    report = load_file(database, source, [Part(_spec("ld_nocrs"),
                       read_chunks(path, crs="EPSG:25832"))])  # fmt: skip
    assert report.inserted == 1


def test_three_d_is_kept_and_missing_z_stays_unknown(database, owner_conn, fresh, tmp_path):
    fresh("ld_pipes3d")
    first, second = tmp_path / "flat.gpkg", tmp_path / "deep.gpkg"
    spec = TableSpec(layer=_layer("ld_pipes3d"), columns={"pipe": "text"},
                     geometry_type="MultiLineString")  # fmt: skip
    gpd.GeoDataFrame({"pipe": ["flat"]}, geometry=[LineString([(E, N), (E + 5, N)])],
                     crs=25832).to_file(first)  # fmt: skip
    gpd.GeoDataFrame({"pipe": ["deep"]}, geometry=[LineString([(E, N, -1.2), (E + 5, N, -1.4)])],
                     crs=25832).to_file(second)  # fmt: skip
    load_file(database, SourceFile.open(first), [Part(spec, read_chunks(first))])
    load_file(database, SourceFile.open(second), [Part(spec, read_chunks(second))])
    with owner_conn.cursor() as cur:
        cur.execute("SELECT pipe, ST_Z(ST_StartPoint(ST_GeometryN(geom, 1))) FROM data.ld_pipes3d"
                    " ORDER BY pipe")  # fmt: skip
        rows = dict(cur.fetchall())
    assert rows["deep"] == pytest.approx(-1.2)
    assert rows["flat"] != rows["flat"]  # NaN: unknown, not an invented 0


def test_all_layers_of_a_file_or_none(database, owner_conn, fresh, tmp_path):
    fresh("ld_multi_a", "ld_multi_b")
    path = tmp_path / "two.gpkg"
    _wells(3).to_file(path, layer="a")
    _parcels([SQUARE, BOW_TIE]).to_file(path, layer="b")
    parts = vector_parts(path, lambda name, kind: _layer(f"ld_multi_{name}"))
    with pytest.raises(InvalidInput, match="record 2: invalid geometry"):
        load_file(database, SourceFile.open(path), parts)
    assert _count(owner_conn, "ld_multi_a") is None  # layer a was loaded, then rolled back


def test_far_away_feature_is_reported(database, fresh, tmp_path):
    fresh("ld_outlier")
    path = tmp_path / "outlier.gpkg"
    frame = _wells(30)
    frame.loc[7, "geometry"] = Point(E + 200_000, N)
    frame.to_file(path)
    report = _load(database, path, _spec("ld_outlier"))
    assert report.inserted == 30
    assert len(report.warnings) == 1
    assert "record 8 lies 200 km from the other features" in report.warnings[0]


def test_appending_to_a_table_in_another_crs_is_refused(database, owner_conn, fresh, tmp_path):
    fresh("ld_wrongsrid")
    with owner_conn.cursor() as cur:
        cur.execute("CREATE TABLE data.ld_wrongsrid (fid serial, well_id text,"
                    " depth_m double precision, geom geometry(MultiPoint, 4326),"
                    " _source text, _record text, _loaded_at timestamptz)")  # fmt: skip
    path = tmp_path / "wells.gpkg"
    _wells().to_file(path)
    with pytest.raises(InvalidInput, match="not EPSG:25832; refusing to append"):
        _load(database, path, _spec("ld_wrongsrid", key=()))


def test_missing_and_empty_files_are_named(tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        SourceFile.open(tmp_path / "nope.gpkg")
    (tmp_path / "empty.gpkg").write_bytes(b"")
    with pytest.raises(InvalidInput, match="the file is empty"):
        SourceFile.open(tmp_path / "empty.gpkg")
