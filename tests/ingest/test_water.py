"""The water family on the sample town and on real Danish vectors (dk-vectors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from psycopg2 import sql
from shapely.geometry import LineString

from ingest.pipelines import IngestOptions, ingest
from ingest.sample import generate
from layers import catalog
from layers.database import Database
from layers.errors import InvalidInput

WATER_LAYERS = ("water_streams", "water_lakes", "water_coastline", "water_sewer_pipes",
                "water_manholes", "water_roads")  # fmt: skip
TERRAIN_LAYER = "terrain_water_test"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("water") / "egevig"
    manifest = generate(out, size="small", seed=42, progress=False)
    return out, manifest


@pytest.fixture(scope="module")
def db(settings):
    """A Database whose data directory (terrain COGs) belongs to this test database alone."""
    data_dir = settings.data_dir / settings.database.name
    shutil.rmtree(data_dir, ignore_errors=True)
    database = Database(settings.model_copy(update={"data_dir": data_dir}))
    yield database
    database.close()


@pytest.fixture
def clean(owner_conn):
    """No water layers (tables, catalog, provenance, rejects) before and after a test."""
    _drop(owner_conn)
    yield owner_conn
    _drop(owner_conn)


def _drop(conn) -> None:
    with conn.cursor() as cur:
        for layer_id in WATER_LAYERS:
            table = sql.Identifier("data", layer_id)
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            cur.execute("DELETE FROM geoby.load_rejects WHERE layer_id = %s", (layer_id,))
        cur.execute(
            "DELETE FROM geoby.layers WHERE id = ANY(%s)", ([*WATER_LAYERS, TERRAIN_LAYER],)
        )
        cur.execute("DELETE FROM data.raster_tiles WHERE layer_id = %s", (TERRAIN_LAYER,))


def _rows(conn, sql: str, *params) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _counts(conn) -> dict[str, int | None]:
    out = {}
    for layer_id in WATER_LAYERS:
        exists = _rows(conn, "SELECT to_regclass(%s)", f"data.{layer_id}")[0][0]
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("data", layer_id))
        out[layer_id] = _rows(conn, query)[0][0] if exists else None
    return out


def _options(**kw) -> IngestOptions:
    return IngestOptions(show_progress=False, **kw)


def test_sample_water_and_roads_load_with_keys(db, clean, sample):
    out, manifest = sample
    files = {f["path"]: f for f in manifest["files"]}
    reports = ingest(
        db, "water", [out / "water.gpkg", out / "roads.gpkg"], _options(owner="Egevig")
    )
    assert reports[0].layers == ["water_streams", "water_lakes", "water_coastline",
                                 "water_sewer_pipes", "water_manholes"]  # fmt: skip
    assert reports[1].layers == ["water_roads"]
    expected = {f"water_{k}": v for k, v in files["water.gpkg"]["layers"].items()}
    expected["water_roads"] = files["roads.gpkg"]["layers"]["roads"]
    assert _counts(clean) == expected
    assert reports[0].rejected == 0 and reports[0].warnings == []

    raw = pyogrio.read_dataframe(out / "water.gpkg", layer="sewer_pipes").iloc[7]
    row = _rows(clean, "SELECT system, diameter_mm, material, upstream_manhole_id,"
                " upstream_invert_m, downstream_invert_m, ST_AsText(ST_StartPoint(ST_GeometryN(geom, 1))),"
                " ST_SRID(geom) FROM data.water_sewer_pipes WHERE pipe_id = %s", raw["pipe_id"])[0]  # fmt: skip
    assert row[:6] == (raw["system"], raw["diameter_mm"], raw["material"],
                       raw["upstream_manhole_id"], raw["upstream_invert_m"],
                       raw["downstream_invert_m"])  # fmt: skip
    assert shapely.from_wkt(row[6]).equals_exact(shapely.get_point(raw.geometry, 0), 1e-6)
    assert row[7] == 25832
    layer = catalog.get(clean, "water_sewer_pipes")
    assert (layer.theme, layer.access, layer.table_schema, layer.vertical_datum, layer.owner_org) == (
        "water", "open", "data", "DVR90", "Egevig")  # fmt: skip
    assert "invert" in layer.description and layer.row_count == expected["water_sewer_pipes"]
    roads = catalog.get(clean, "water_roads")
    assert "runoff" in roads.description and roads.vertical_datum is None


def test_rerun_is_a_no_op_and_replace_reloads(db, clean, sample):
    out, _ = sample
    first = ingest(db, "water", [out / "roads.gpkg"], _options())[0]
    again = ingest(db, "water", [out / "roads.gpkg"], _options())[0]
    assert again.skipped and again.inserted == 0 and "already loaded" in again.summary()
    replaced = ingest(db, "water", [out / "roads.gpkg"], _options(mode="replace"))[0]
    assert (replaced.deleted, replaced.inserted) == (first.inserted, first.inserted)
    assert _counts(clean)["water_roads"] == first.inserted
    assert len(catalog.sources(clean, "water_roads")) == 1


def test_real_danish_roads_and_lakes(db, clean, shared_data):
    folder = shared_data / "dk-vectors"
    roads, lakes = (
        folder / "dhmqc_roads_1km_6173_632.geojson",
        folder / "dhmqc_water_1km_6173_632.geojson",
    )
    reports = ingest(db, "water", [roads, lakes], _options())
    assert [r.layers for r in reports] == [["water_roads"], ["water_lakes"]]
    assert [r.inserted for r in reports] == [13, 2]
    raw = json.loads(roads.read_text())["features"][0]
    row = _rows(clean, "SELECT ST_X(p), ST_Y(p), ST_Z(p), properties->>'kn1kmdk', ST_NDims(geom)"
                " FROM (SELECT geom, ST_StartPoint(ST_GeometryN(geom, 1)) AS p, properties"
                " FROM data.water_roads WHERE road_id = %s) s",
                "dhmqc_roads_1km_6173_632-1")[0]  # fmt: skip
    assert row == (*raw["geometry"]["coordinates"][0], raw["properties"]["kn1kmdk"], 3)
    raw_lakes = gpd.read_file(lakes)
    stored = dict(_rows(clean, "SELECT lake_id, ST_Area(geom) FROM data.water_lakes"))
    assert stored == pytest.approx(
        {str(i): a for i, a in zip(raw_lakes["id"], raw_lakes.area, strict=True)}
    )


def test_buildings_are_refused_with_the_family_to_use(db, clean, shared_data):
    path = shared_data / "dk-vectors" / "dhmqc_build_1km_6173_632.geojson"
    with pytest.raises(InvalidInput, match="looks like buildings.*energy family") as err:
        ingest(db, "water", [path], _options())
    assert err.value.field == "kind"
    assert set(_counts(clean).values()) == {None}


def test_unrecognised_layer_lists_the_kinds_unless_forced(db, clean, tmp_path):
    path = tmp_path / "lines.geojson"
    line = LineString([(720_100, 6_170_100), (720_200, 6_170_150)])
    gpd.GeoDataFrame({"a": [1], "b": ["x"]}, geometry=[line], crs=25832).to_file(path)
    with pytest.raises(InvalidInput) as err:
        ingest(db, "water", [path], _options())
    message = str(err.value)
    assert "streams (lines: stream_id, name" in message and "sewer_pipes" in message
    assert "manholes (points" in message and "--option kind=KIND" in message
    report = ingest(db, "water", [path], _options(extra={"kind": "streams"}))[0]
    assert report.layers == ["water_streams"]
    assert _rows(clean, "SELECT stream_id, properties->>'b' FROM data.water_streams") == [
        ("lines-1", "x")]  # fmt: skip


@pytest.mark.parametrize(("column", "value", "field", "says"), [
    ("system", "grey water", "system", "not a sewer system"),
    ("diameter_mm", -300.0, "diameter_mm", "greater than 0"),
])  # fmt: skip
def test_broken_copy_is_refused_naming_record_and_field(db, clean, sample, tmp_path, column,
                                                        value, field, says):  # fmt: skip
    out, _ = sample
    broken = tmp_path / "water.gpkg"
    for layer in pyogrio.list_layers(out / "water.gpkg")[:, 0]:
        frame = pyogrio.read_dataframe(out / "water.gpkg", layer=layer)
        if layer == "sewer_pipes":
            frame[column] = frame[column].astype(object)
            frame.loc[41, column] = value
        pyogrio.write_dataframe(frame, broken, layer=layer)
    with pytest.raises(InvalidInput, match=says) as err:
        ingest(db, "water", [broken], _options())
    assert (err.value.record, err.value.field) == ("record 42", field)
    assert set(_counts(clean).values()) == {None}  # the streams before it are not kept either


def test_inverts_above_the_terrain_are_reported(db, clean, sample, tmp_path):
    out, _ = sample
    tiles = sorted((out / "terrain").glob("DTM_1km_*.tif"))
    ingest(db, "terrain", tiles, _options(extra={"layer": TERRAIN_LAYER}))
    clean_report = ingest(db, "water", [out / "water.gpkg"], _options())[0]
    assert clean_report.warnings == []  # the sample keeps at least 1.2 m of cover

    pipes = pyogrio.read_dataframe(out / "water.gpkg", layer="sewer_pipes")
    manholes = pyogrio.read_dataframe(out / "water.gpkg", layer="manholes")
    pipes.loc[10, "upstream_invert_m"] += 40.0
    manholes.loc[3, "invert_level_m"] = manholes.loc[3, "rim_level_m"] + 0.5
    broken = tmp_path / "sewers_2024.gpkg"
    pyogrio.write_dataframe(pipes, broken, layer="sewer_pipes")
    pyogrio.write_dataframe(manholes, broken, layer="manholes")
    report = ingest(db, "water", [broken], _options(mode="upsert"))[0]
    assert report.updated == len(pipes) + len(manholes)
    pipe, manhole = pipes.loc[10, "pipe_id"], manholes.loc[3, "manhole_id"]
    assert len(report.warnings) == 2
    assert f"pipe {pipe} (record 11) upstream invert" in report.warnings[0]
    assert "above the terrain" in report.warnings[0] and TERRAIN_LAYER in report.warnings[0]
    assert f"manhole {manhole} (record 4) has its invert" in report.warnings[1]
