"""The waste family on the sample town and on real Edinburgh data (waste-edinburgh)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from psycopg2 import sql
from pyproj import Transformer

from ingest.pipelines import IngestOptions, ingest
from ingest.sample import generate
from ingest.source import sha256
from layers import catalog
from layers.errors import Conflict, InvalidInput

WASTE_LAYERS = ("waste_bins", "waste_recycling_stations", "waste_facilities", "waste_fleet",
                "waste_readings", "waste_collections")  # fmt: skip


def _options(**kw) -> IngestOptions:
    return IngestOptions(show_progress=False, **kw)


def _rows(conn, sql: str, *params) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _one(conn, sql: str, *params):
    return _rows(conn, sql, *params)[0][0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("waste") / "egevig"
    manifest = generate(out, size="small", seed=42, progress=False)
    return out / "waste", manifest


@pytest.fixture(scope="module")
def loaded(database, settings, sample):
    """The sample's waste folder loaded once, files given in the wrong order on purpose."""
    from layers.database import connect

    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for layer_id in WASTE_LAYERS:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_table(layer_id)))
        cur.execute("DELETE FROM geoby.layers WHERE id = ANY(%s)", (list(WASTE_LAYERS),))
        cur.execute(
            "DELETE FROM geoby.load_rejects WHERE layer_id = ANY(%s)", (list(WASTE_LAYERS),)
        )
    conn.close()
    folder, _ = sample
    paths = [
        folder / n for n in ("collections.csv", "sensor_readings.csv", "fleet.csv", "bins.gpkg")
    ]
    return ingest(database, "waste", paths, _options(owner="Egevig Kommune"))


@pytest.fixture
def forget(owner_conn):
    """Remove what given files loaded (rows, provenance, rejects), before and after a test."""
    files: list[Path] = []

    def use(*paths: Path) -> None:
        files.extend(paths)
        _forget(owner_conn, paths)

    yield use
    _forget(owner_conn, files)


def _forget(conn, paths) -> None:
    with conn.cursor() as cur:
        for path in paths:
            for layer_id in WASTE_LAYERS:
                if _one(conn, "SELECT to_regclass(%s)", f"data.{layer_id}"):
                    cur.execute(
                        sql.SQL("DELETE FROM {} WHERE _source = %s").format(_table(layer_id)),
                        (path.name,),
                    )
            checksum = sha256(path) if path.exists() else ""
            cur.execute("DELETE FROM geoby.layer_sources WHERE checksum = %s", (checksum,))
            cur.execute("DELETE FROM geoby.load_rejects WHERE source_file = %s", (path.name,))


def _count(conn, layer_id: str, source: str | None = None) -> int:
    if not _one(conn, "SELECT to_regclass(%s)", f"data.{layer_id}"):
        return 0
    query = sql.SQL("SELECT count(*) FROM {} WHERE %s::text IS NULL OR _source = %s")
    return _one(conn, query.format(_table(layer_id)), source, source)


def _table(layer_id: str) -> sql.Composed:
    return sql.Identifier("data", layer_id)


# -- the sample town ---------------------------------------------------------------------


def test_sample_folder_loads_bins_first(loaded, owner_conn, sample):
    _, manifest = sample
    files = {f["path"]: f for f in manifest["files"]}
    assert [r.source for r in loaded] == ["bins.gpkg", "fleet.csv", "sensor_readings.csv",
                                          "collections.csv"]  # fmt: skip
    assert loaded[0].layers == ["waste_bins", "waste_recycling_stations", "waste_facilities"]
    layers = files["waste/bins.gpkg"]["layers"]
    defects = manifest["waste_defects"]
    expected = {
        "waste_bins": layers["bins"], "waste_recycling_stations": layers["recycling_stations"],
        "waste_facilities": layers["facilities"], "waste_fleet": files["waste/fleet.csv"]["rows"],
        "waste_readings": files["waste/sensor_readings.csv"]["rows"] - len(defects["duplicates"]),
        "waste_collections": files["waste/collections.csv"]["rows"],
    }  # fmt: skip
    assert {k: _count(owner_conn, k) for k in expected} == expected
    assert all(r.rejected == 0 for r in loaded)
    assert loaded[2].warnings == [
        "sensor_readings.csv: 3 exact duplicate records collapsed (record = earlier record: "
        "34239 = 34238, 35716 = 35715, 101735 = 101734)"
    ]
    layer = catalog.get(owner_conn, "waste_readings")
    assert (layer.theme, layer.kind, layer.access, layer.owner_org) == (
        "waste", "table", "open", "Egevig Kommune")  # fmt: skip


def test_sample_readings_keep_the_documented_defects(loaded, owner_conn, sample):
    folder, manifest = sample
    defects = manifest["waste_defects"]
    for bad in defects["out_of_range"]:
        row = _rows(owner_conn, "SELECT fill_level, fill_level_reported, quality FROM"
                    " data.waste_readings WHERE bin_id = %s AND time = %s",
                    bad["bin_id"], bad["time"])  # fmt: skip
        assert row == [(min(max(bad["fill_level"], 0.0), 1.0), bad["fill_level"], "clamped")]
    assert _one(owner_conn, "SELECT count(*) FROM data.waste_readings WHERE quality <> 'ok'") == 2
    fire = defects["fire"][0]
    assert _rows(owner_conn, "SELECT DISTINCT bin_id FROM data.waste_readings WHERE fire_flag") == [
        (fire["bin_id"],)]  # fmt: skip
    tilts = _rows(
        owner_conn, "SELECT bin_id, time FROM data.waste_readings WHERE tilt_flag ORDER BY 1"
    )
    assert [(b, t.strftime("%Y-%m-%dT%H:%M:%SZ")) for b, t in tilts] == sorted(
        (t["bin_id"], t["time"]) for t in defects["tilt"])  # fmt: skip
    dead = defects["dead_sensor"]
    last = _one(
        owner_conn, "SELECT max(time) FROM data.waste_readings WHERE bin_id = %s", dead["bin_id"]
    )
    assert last.strftime("%Y-%m-%dT%H:%M:%SZ") == dead["last_reading"]
    raw = pd.read_csv(folder / "sensor_readings.csv", nrows=60).iloc[56]  # record 57
    row = _rows(owner_conn, "SELECT fill_level, temperature_c, battery_v, fire_flag, _record"
                " FROM data.waste_readings WHERE bin_id = %s AND time = %s",
                raw["bin_id"], raw["time"])[0]  # fmt: skip
    assert row == (raw["fill_level"], raw["temperature_c"], raw["battery_v"], False, "57")


def test_sample_collections_fleet_and_places(loaded, owner_conn, sample):
    folder, _ = sample
    raw = pd.read_csv(folder / "collections.csv").iloc[0]
    row = _rows(owner_conn, "SELECT bin_id, time, fill_before, weight_kg, truck_id FROM"
                " data.waste_collections WHERE collection_id = %s", raw["collection_id"])[0]  # fmt: skip
    assert row == (raw["bin_id"], datetime.fromisoformat(raw["time"]), raw["fill_before"],
                   raw["weight_kg"], raw["truck_id"])  # fmt: skip
    bins = pyogrio.read_dataframe(folder / "bins.gpkg", layer="bins")
    stored = dict(_rows(owner_conn, "SELECT fraction, count(*) FROM data.waste_bins"
                        " WHERE _source = 'bins.gpkg' GROUP BY 1"))  # fmt: skip
    assert stored == bins["fraction"].value_counts().to_dict()
    assert _one(
        owner_conn, "SELECT accepts FROM data.waste_facilities WHERE facility_id = 'F1'"
    ) == ("residual,litter")  # the sample's street_litter, in the vocabulary
    assert (
        _one(owner_conn, "SELECT capacity_kg FROM data.waste_fleet WHERE truck_id = 'T06'") == 12000
    )


def test_rerun_is_a_no_op_and_replace_reloads(loaded, database, owner_conn, sample):
    folder, _ = sample
    again = ingest(
        database, "waste", [folder / "bins.gpkg", folder / "collections.csv"], _options()
    )
    assert [r.skipped for r in again] == [True, True]
    before = _count(owner_conn, "waste_collections")
    report = ingest(database, "waste", [folder / "collections.csv"], _options(mode="replace"))[0]
    assert (report.deleted, report.inserted) == (before, before)
    assert _count(owner_conn, "waste_collections") == before


# -- broken copies -------------------------------------------------------------------------


def _copy(folder: Path, tmp_path: Path, edit, rows: int = 200) -> Path:
    lines = (folder / "sensor_readings.csv").read_text().splitlines()[: rows + 1]
    edit(lines)
    path = tmp_path / "readings_broken.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _set(lines: list[str], record: int, column: int, value: str) -> None:
    cells = lines[record].split(",")
    cells[column] = value
    lines[record] = ",".join(cells)


@pytest.mark.parametrize(("column", "value", "field", "says"), [
    (2, "1.7", "fill_level", "value '1.7' is not a fill level"),
    (2, "abc", "fill_level", "value 'abc' is not a number"),
    (0, "EGV-B9999", "bin_id", "value 'EGV-B9999' is not a bin in waste_bins"),
    (1, "2023-09-31T00:00:00Z", "time", "is not an ISO 8601 time"),
    (5, "maybe", "fire_flag", "is not yes/no"),
])  # fmt: skip
def test_broken_reading_is_refused_naming_record_and_field(loaded, database, owner_conn, sample,
                                                           tmp_path, forget, column, value,
                                                           field, says):  # fmt: skip
    folder, _ = sample
    path = _copy(folder, tmp_path, lambda lines: _set(lines, 57, column, value))
    forget(path)
    with pytest.raises(InvalidInput, match=says) as err:
        ingest(database, "waste", [path], _options())
    assert (err.value.record, err.value.field) == ("record 57", field)
    assert "readings_broken.csv: record 57" in str(err.value)
    assert _count(owner_conn, "waste_readings", path.name) == 0


def test_conflicting_duplicate_names_both_records(loaded, database, owner_conn, sample, tmp_path,
                                                   forget):  # fmt: skip
    folder, _ = sample

    def edit(lines):
        copy = lines[5].split(",")
        copy[2] = "0.999"
        lines.append(",".join(copy))  # record 201: record 5 with another fill level

    path = _copy(folder, tmp_path, edit)
    forget(path)
    with pytest.raises(InvalidInput, match="record 201: field 'bin_id' conflicts with record 5"):
        ingest(database, "waste", [path], _options())
    assert _count(owner_conn, "waste_readings", path.name) == 0


def test_skip_invalid_keeps_the_unknown_bin_reading_in_rejects(loaded, database, owner_conn,
                                                               sample, tmp_path, forget):  # fmt: skip
    folder, _ = sample

    def edit(lines):
        lines[1:] = [line.replace("2023-", "2030-") for line in lines[1:]]  # keys not loaded yet
        _set(lines, 12, 0, "EGV-B9999")

    path = _copy(folder, tmp_path, edit)
    forget(path)
    report = ingest(database, "waste", [path], _options(skip_invalid=True))[0]
    assert (report.inserted, report.rejected) == (199, 1)
    assert _count(owner_conn, "waste_readings", path.name) == 199
    rejects = _rows(owner_conn, "SELECT layer_id, record, field, reason FROM geoby.load_rejects"
                    " WHERE source_file = %s", path.name)  # fmt: skip
    assert rejects[0][:3] == ("waste_readings", "12", "bin_id")
    assert "EGV-B9999" in rejects[0][3]


def test_unrecognised_table_lists_the_kinds(database, tmp_path):
    path = tmp_path / "mystery.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput) as err:
        ingest(database, "waste", [path], _options())
    message = str(err.value)
    assert "cannot tell what waste table this is (columns a, b)" in message
    assert "readings (bin_id, time, fill_level" in message and "ngsi (NGSI-LD" in message


def test_bins_csv_with_x_y_needs_a_crs(database, owner_conn, tmp_path, forget):
    path = tmp_path / "glass_containers.csv"
    path.write_text("container_id;x;y;capacity\nG1;720100,5;6170100;2500\nG2;720200;6170200;3000\n")
    forget(path)
    with pytest.raises(InvalidInput, match="no CRS; state it with --crs"):
        ingest(database, "waste", [path], _options())
    report = ingest(database, "waste", [path], _options(crs="EPSG:25832"))[0]
    assert report.inserted == 2
    row = _rows(owner_conn, "SELECT fraction, capacity_l, ST_X(ST_GeometryN(geom, 1)) FROM data.waste_bins"
                " WHERE bin_id = 'G1'")  # fmt: skip
    assert row == [("glass", 2500.0, 720100.5)]  # fraction from the file name


# -- NGSI-LD -------------------------------------------------------------------------------


def _entities(level: float = 0.4) -> list[dict]:
    return [
        {"id": "urn:ngsi-ld:WasteContainer:test:1", "type": "WasteContainer",
         "location": {"type": "GeoProperty",
                      "value": {"type": "Point", "coordinates": [10.5, 55.7]}},
         "fillingLevel": {"type": "Property", "value": level,
                          "observedAt": "2024-03-01T10:00:00Z"},
         "storedWasteKind": {"type": "Property", "value": "inorganic"},
         "binCapacity": {"type": "Property", "value": 660},
         "category": {"type": "Property", "value": ["ground"]},
         "status": {"type": "Property", "value": "burning"},
         "serialNumber": {"type": "Property", "value": "ab56kjl"},
         "@context": ["https://smartdatamodels.org/context.jsonld"]},
        {"id": "urn:ngsi-ld:WasteContainer:test:2", "type": "WasteContainer",
         "location": {"type": "Point", "coordinates": [10.501, 55.701]},
         "storedWasteKind": "glass", "binCapacity": 2500},
        {"id": "urn:ngsi-ld:WasteContainerIsle:test:9", "type": "WasteContainerIsle"},
    ]  # fmt: skip


def test_ngsi_ld_containers_give_bins_and_readings(database, owner_conn, tmp_path, forget):
    path = tmp_path / "containers.jsonld"
    path.write_text(json.dumps(_entities()))
    forget(path)
    report = ingest(database, "waste", [path], _options())[0]
    assert report.layers == ["waste_bins", "waste_readings"]
    assert report.warnings == [
        "containers.jsonld: entities of other types than WasteContainer skipped "
        "(1 WasteContainerIsle)"]  # fmt: skip
    bins = _rows(owner_conn, "SELECT bin_id, fraction, capacity_l, bin_type,"
                 " properties->>'fraction_reported', properties->>'serialNumber'"
                 " FROM data.waste_bins WHERE _source = %s ORDER BY 1", path.name)  # fmt: skip
    assert bins == [
        ("urn:ngsi-ld:WasteContainer:test:1", "residual", 660.0, "ground", "inorganic", "ab56kjl"),
        ("urn:ngsi-ld:WasteContainer:test:2", "glass", 2500.0, None, None, None),
    ]
    reading = _rows(owner_conn, "SELECT bin_id, time, fill_level, fire_flag FROM data.waste_readings"
                    " WHERE _source = %s", path.name)  # fmt: skip
    assert reading == [("urn:ngsi-ld:WasteContainer:test:1", datetime(2024, 3, 1, 10, tzinfo=UTC),
                        0.4, True)]  # fmt: skip


def test_ngsi_ld_filling_level_out_of_range_is_refused(database, owner_conn, tmp_path, forget):
    path = tmp_path / "containers.json"
    path.write_text(json.dumps(_entities(level=43)))
    forget(path)
    with pytest.raises(InvalidInput, match="value 43 is not a fill level") as err:
        ingest(database, "waste", [path], _options())
    assert (err.value.record, err.value.field) == (
        "record urn:ngsi-ld:WasteContainer:test:1", "fill_level")  # fmt: skip
    assert _count(owner_conn, "waste_bins", path.name) == 0  # the bins of the file neither


# -- Edinburgh (real) ----------------------------------------------------------------------


def test_edinburgh_litter_bins_geojson_then_csv(database, owner_conn, shared_data, forget):
    folder = shared_data / "waste-edinburgh"
    geojson, csv = folder / "edinburgh_litter-bins.geojson", folder / "edinburgh_litter-bins.csv"
    forget(geojson, csv)
    report = ingest(database, "waste", [geojson], _options(licence="OGL-UK-3.0"))[0]
    assert (report.rows_in, report.inserted, report.rejected) == (3218, 3218, 0)
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("edinburgh_litter-bins.geojson: record 2057 lies 756 km")

    raw = json.loads(geojson.read_text())["features"][0]
    row = _rows(owner_conn, "SELECT name, model, description, fraction, properties->>'ashtray',"
                " ST_X(g), ST_Y(g) FROM (SELECT *, ST_GeometryN(geom, 1) AS g"
                " FROM data.waste_bins) b WHERE bin_id = 'edinburgh_litter-bins-1'")[0]  # fmt: skip
    x, y = Transformer.from_crs(4326, 25832, always_xy=True).transform(
        *raw["geometry"]["coordinates"]
    )
    props = raw["properties"]
    assert row[:5] == (props["name"], props["type"], props["Location"], "litter", props["Ashtray"])
    assert row[5:] == pytest.approx((x, y), abs=0.001)
    outlier = _one(
        owner_conn, "SELECT name FROM data.waste_bins WHERE bin_id = 'edinburgh_litter-bins-2058'"
    )
    assert outlier == "Seafield Street"  # kept, and reported
    assert catalog.get(owner_conn, "waste_bins").licence == "OGL-UK-3.0"

    with pytest.raises(Conflict, match="already loaded from edinburgh_litter-bins.geojson"):
        ingest(database, "waste", [csv], _options())
    report = ingest(database, "waste", [csv], _options(mode="upsert"))[0]
    assert (report.rows_in, report.inserted, report.updated) == (3218, 0, 3218)
    assert report.warnings[0].startswith("edinburgh_litter-bins.csv: record 2058 lies 756 km")
    assert _count(owner_conn, "waste_bins", csv.name) == 3218


def test_edinburgh_sensor_collections_xlsx(database, owner_conn, shared_data, forget):
    path = shared_data / "waste-edinburgh" / "edinburgh_raw_bin_data.xlsx"
    forget(path)
    report = ingest(database, "waste", [path], _options())[0]
    assert report.layers == ["waste_collections"]
    assert (report.rows_in, report.inserted, report.rejected) == (10_000, 10_000, 0)
    assert "collections of 334 bins that are not in waste_bins" in report.warnings[0]
    assert "100% is actually a bin that's 80% full" in report.warnings[1]
    stats = _rows(owner_conn, "SELECT count(DISTINCT bin_id), min(time), max(time), max(fill_before)"
                  " FROM data.waste_collections WHERE _source = %s", path.name)[0]  # fmt: skip
    assert stats[0] == 334 and stats[3] == 1.0
    assert (stats[1].date().isoformat(), stats[2].date().isoformat()) == (
        "2016-06-03",
        "2016-08-09",
    )
    # the first data row (Excel row 4): ID 12371082, site 325048, 2016-08-09 15:46:34 London time
    row = _rows(owner_conn, "SELECT bin_id, time, fill_before, fill_after, volume_l, weight_kg,"
                " fraction, properties->>'Site name', _record FROM data.waste_collections"
                " WHERE collection_id = '12371082'")[0]  # fmt: skip
    assert row == ("325048", datetime(2016, 8, 9, 14, 46, 34, tzinfo=UTC), 0.78, 0.0,
                   pytest.approx(372.27461), pytest.approx(26.059223), "residual",
                   "Princes Street - Outside number 98 primark", "Enevo ONe API v3!4")  # fmt: skip
