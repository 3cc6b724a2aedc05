"""The utilities family on the sample town and on real KLIC, IMKL2015 and NVDB files."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from psycopg2 import sql
from pyproj import Transformer
from shapely.geometry import LineString, box

from ingest.pipelines import IngestOptions, ingest
from ingest.sample import generate
from ingest.utilities import derive_interest_areas, detect
from layers.errors import Conflict, InvalidInput

LAYERS = ("utilities_lines", "utilities_points", "utilities_areas", "utilities_interest_areas",
          "utilities_dig_areas")  # fmt: skip
ASSETS = ("utilities_lines", "utilities_points", "utilities_areas")
KLIC = "klic-imkl2/Levering_22C001967_3.zip"
IMKL2015 = "imkl2015-best/VoorbeeldbestandBest.IMKL2015-v1.1_snetten.gml"
E, N = 721_000.0, 6_171_000.0  # inside the sample town


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("utilities") / "egevig"
    generate(out, size="small", seed=42, progress=False)
    return out / "utilities"


@pytest.fixture
def clean(owner_conn):
    """No utilities tables, catalog rows, provenance or rejects before and after a test."""
    _drop(owner_conn)
    yield owner_conn
    _drop(owner_conn)


def _drop(conn) -> None:
    with conn.cursor() as cur:
        for layer_id in LAYERS:
            cur.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("restricted", layer_id))
            )
            cur.execute("DELETE FROM geoby.load_rejects WHERE layer_id = %s", (layer_id,))
            cur.execute("DELETE FROM geoby.layers WHERE id = %s", (layer_id,))


def _rows(conn, query, *params) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _count(conn, layer_id: str, where: str = "TRUE", *params) -> int | None:
    if _rows(conn, "SELECT to_regclass(%s)", f"restricted.{layer_id}")[0][0] is None:
        return None
    query = sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(  # noqa: S608 (fixed text)
        sql.Identifier("restricted", layer_id)
    )
    return _rows(conn, query, *params)[0][0]


def _options(**kw) -> IngestOptions:
    return IngestOptions(show_progress=False, **kw)


def _ler_files(sample: Path) -> list[Path]:
    return sorted(sample.glob("*.gml"))


# -- the sample town: LER GML and GeoPackages ------------------------------------


def test_sample_ler_gml_then_gpkg_upsert(clean, database, sample):
    reports = ingest(database, "utilities", _ler_files(sample), _options())
    assert len(reports) == 7 and all(r.inserted > 0 and r.rejected == 0 for r in reports)
    conn = clean
    owners = {o for (o,) in _rows(conn, "SELECT DISTINCT owner FROM restricted.utilities_lines")}
    assert len(owners) >= 5 and "Kystnet El A/S" in owners
    hazards = _rows(
        conn, "SELECT DISTINCT hazard_class, hazard_source FROM restricted.utilities_lines"
    )
    assert {h for h, _ in hazards} == {"not_dangerous", "dangerous", "very_dangerous"}
    assert {s for _, s in hazards} == {"data"}  # LER gives fareklasse
    # unknown depth stays unknown: as many NULL depths as the owner's GeoPackage has empty ones
    gpkg = pyogrio.read_dataframe(sample / "kystnet-el.gpkg", layer="lines")
    nulls = _count(conn, "utilities_lines", "owner = %s AND depth_m IS NULL", "Kystnet El A/S")
    assert nulls == int(gpkg["depth_m"].isna().sum()) > 0
    assert _count(conn, "utilities_lines", "depth_m IS NOT NULL AND depth_reference IS NULL") == 0
    accuracy = {
        a for (a,) in _rows(conn, "SELECT DISTINCT accuracy_class FROM restricted.utilities_lines")
    }
    assert accuracy == {"0.25", "0.5", "1", "2", ">2", None}
    kinds = dict(_rows(conn, "SELECT asset_kind, count(*) FROM restricted.utilities_points"
                             " WHERE owner = 'Egevig Forsyning A/S' GROUP BY 1"))  # fmt: skip
    assert kinds["manhole"] > 1000 and kinds["hydrant"] > 100
    fibre = _rows(conn, "SELECT DISTINCT utility_type, subtype FROM restricted.utilities_lines"
                        " WHERE owner = 'NordFiber ApS'")  # fmt: skip
    assert fibre == [("telecom", "fibre")]
    n_lines = _count(conn, "utilities_lines")

    with pytest.raises(Conflict, match="already loaded from kystnet-el.gml"):
        ingest(database, "utilities", [sample / "kystnet-el.gpkg"], _options())
    reports = ingest(database, "utilities", sorted(sample.glob("*.gpkg")), _options(mode="upsert"))
    assert all(r.inserted == 0 and r.updated == r.rows_in for r in reports)
    assert any("layer owner has no geometry" in w for w in reports[0].warnings)
    assert _count(conn, "utilities_lines") == n_lines
    assert (
        _count(conn, "utilities_lines", "owner = %s AND depth_m IS NULL", "Kystnet El A/S") == nulls
    )
    assert _count(conn, "utilities_lines", "source_format = 'GPKG'") == n_lines


def test_interest_areas_cover_every_asset_with_the_accuracy_buffer(clean, database, sample):
    ingest(database, "utilities", _ler_files(sample)[:3], _options())
    conn = clean
    areas = _rows(
        conn, "SELECT owner, utility_type, origin FROM restricted.utilities_interest_areas"
    )
    assert {o for o, _, _ in areas} == {"Egevig Fjernvarme A.m.b.A.", "Egevig Forsyning A/S",
                                         "Egevig Kommune, Vej og Park"}  # fmt: skip
    assert {origin for _, _, origin in areas} == {"derived"}
    uncovered = """
        SELECT count(*) FROM restricted.{t} a LEFT JOIN restricted.utilities_interest_areas i
          ON i.owner = a.owner AND i.utility_type = a.utility_type
        WHERE a.accuracy_class {acc}
          AND (i.geom IS NULL OR NOT ST_Covers(i.geom, ST_Buffer(a.geom, %s)))"""
    # quad_segs=4 buffers reach at least 98 % of their width between vertices
    for table in ("utilities_lines", "utilities_points"):
        for acc, width in (("IN ('0.25', '0.5')", 0.98), ("= '1'", 1.96), ("= '2'", 2.94),
                           ("IS NULL", 4.9)):  # fmt: skip
            assert _rows(conn, uncovered.format(t=table, acc=acc), width)[0][0] == 0, (table, acc)


def test_rerun_is_a_no_op_and_replace_reloads(clean, database, sample):
    path = sample / "ostkyst-gas.gml"
    first = ingest(database, "utilities", [path], _options())[0]
    again = ingest(database, "utilities", [path], _options())[0]
    assert again.skipped and "already loaded" in again.summary()
    replaced = ingest(database, "utilities", [path], _options(mode="replace"))[0]
    assert replaced.deleted == first.inserted == replaced.inserted
    assert _count(clean, "utilities_lines") + _count(clean, "utilities_points") == first.inserted


def _break(sample: Path, tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "ostkyst-gas.gml"
    text = (sample / "ostkyst-gas.gml").read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_broken_ler_files_are_refused_naming_record_and_field(clean, database, sample, tmp_path):
    ingest(database, "utilities", [sample / "nordfiber.gml"], _options())
    before = _count(clean, "utilities_lines")
    first_id = (sample / "ostkyst-gas.gml").read_text(encoding="utf-8").split('gml:id="L-')[1][:36]
    bad = _break(sample, tmp_path, "<ler:fareklasse>farlig</ler:fareklasse>",
                 "<ler:fareklasse>lidt farlig</ler:fareklasse>")  # fmt: skip
    with pytest.raises(InvalidInput, match="'lidt farlig' is not a hazard class") as err:
        ingest(database, "utilities", [bad], _options())
    assert err.value.record == f"record L-{first_id}" and err.value.field == "fareklasse"
    bad = _break(sample, tmp_path, "<gml:posList>721500.86", "<gml:posList>72x500.86")
    with pytest.raises(InvalidInput, match="geometry that cannot be read") as err:
        ingest(database, "utilities", [bad], _options())
    assert err.value.record == f"record L-{first_id}" and err.value.field == "geometry"
    bad = _break(sample, tmp_path, "</ler:Gasledning>", "</ler:Gas>")
    with pytest.raises(InvalidInput, match="not well-formed XML at line"):
        ingest(database, "utilities", [bad], _options())
    bad = _break(
        sample, tmp_path, '<ler:vejledendeDybde uom="m">', '<ler:vejledendeDybde uom="ft">'
    )
    with pytest.raises(InvalidInput, match="unit 'ft'") as err:
        ingest(database, "utilities", [bad], _options())
    assert err.value.field == "vejledendeDybde"
    assert _count(clean, "utilities_lines") == before
    assert _count(clean, "utilities_lines", "owner = 'Østkyst Gasdistribution A/S'") == 0


LER_3D = """<?xml version="1.0" encoding="UTF-8"?>
<ler:Graveforespoergselssvar xmlns:ler="http://data.gov.dk/schemas/LER/2/gml"
  xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  gml:id="svar">
<ler:ledningMember><ler:Elledning gml:id="L-1"><ler:driftsstatus>i drift</ler:driftsstatus>
<ler:fareklasse>meget farlig</ler:fareklasse><ler:id>el-1</ler:id>
<ler:noejagtighedsklasse xsi:nil="true" nilReason="unknown"/>
<ler:vejledendeDybde uom="mm">2500</ler:vejledendeDybde>
<ler:geometri><gml:MultiCurve gml:id="g1" srsName="http://www.opengis.net/def/crs/EPSG/0/7416"
  srsDimension="3"><gml:curveMember><gml:LineString gml:id="g2"><gml:posList>
721000 6171000 -99 721050 6171010 2.5 721100 6171020 -99</gml:posList></gml:LineString>
</gml:curveMember></gml:MultiCurve></ler:geometri>
<ler:spaendingsniveau uom="kV">132</ler:spaendingsniveau></ler:Elledning></ler:ledningMember>
</ler:Graveforespoergselssvar>
"""


def test_ler_3d_in_epsg7416_keeps_heights_and_units(clean, database, tmp_path):
    path = tmp_path / "hv.gml"
    path.write_text(LER_3D, encoding="utf-8")
    assert detect(path) == "ler"
    ingest(database, "utilities", [path], _options(owner="Højspænding A/S"))
    row = _rows(clean, "SELECT asset_id, subtype, hazard_class, depth_m, accuracy_class, voltage_kv,"
                       " ST_NDims(geom), ST_SRID(geom), ST_Z(ST_PointN(ST_GeometryN(geom, 1), 2)),"
                       " ST_Z(ST_PointN(ST_GeometryN(geom, 1), 1))::text"
                       " FROM restricted.utilities_lines")  # fmt: skip
    assert row == [
        ("el-1", "high_voltage", "very_dangerous", 2.5, None, 132.0, 3, 25832, 2.5, "NaN")
    ]


# -- GeoJSON / GeoPackage with a column mapping ----------------------------------


def _cables(tmp_path: Path, name: str = "cables.geojson", **columns) -> Path:
    lines = [LineString([(E, N + 10 * i), (E + 100, N + 10 * i)]) for i in range(3)]
    frame = gpd.GeoDataFrame(columns, geometry=lines, crs="EPSG:25832")
    path = tmp_path / name
    frame.to_file(path, driver="GeoJSON")
    return path


def test_tabular_default_mapping_and_missing_owner(clean, database, tmp_path):
    path = _cables(tmp_path, ledningstype=["el", "Fjernvarme", "fiber"],
                   fareklasse=["meget farlig", None, None], dybde=[0.8, None, 0.4],
                   noejagtighed=["<= 0.50 m", "100cm", None], farve=["rød", "grøn", "blå"])  # fmt: skip
    with pytest.raises(InvalidInput, match="no owner") as err:
        ingest(database, "utilities", [path], _options())
    assert err.value.record == "record 0" and err.value.field == "owner"
    assert _count(clean, "utilities_lines") is None
    report = ingest(database, "utilities", [path], _options(owner="Testnet A/S"))[0]
    assert report.inserted == 3
    rows = _rows(clean, "SELECT asset_id, utility_type, subtype, asset_kind, hazard_class,"
                        " hazard_source, depth_m, accuracy_class, attributes"
                        " FROM restricted.utilities_lines ORDER BY asset_id")  # fmt: skip
    assert [r[0] for r in rows] == ["cables-1", "cables-2", "cables-3"]
    assert [r[1:6] for r in rows] == [
        ("electricity", None, "cable", "very_dangerous", "data"),
        ("district_heating", None, "pipe", "dangerous", "rule"),
        ("telecom", "fibre", "cable", "not_dangerous", "rule"),
    ]
    assert [r[6] for r in rows] == [0.8, None, 0.4]
    assert [r[7] for r in rows] == ["0.5", "1", None]
    assert rows[0][8]["farve"] == "rød" and rows[2][8]["source_utility_type"] == "fiber"


def test_tabular_mapping_overrides(clean, database, tmp_path):
    path = _cables(tmp_path, TYPE_COL=["gas", "gas", "water"], Press=[19.0, 4.0, None],
                   Company=["Gasnet", "Gasnet", "Vandnet"], Pos=["2", "> 2 m", "onbekend"],
                   Ref=["a", "b", "c"])  # fmt: skip
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("owner: Company\npressure_bar: Press\nasset_id: Ref\n", encoding="utf-8")
    extra = {"map.utility_type": "TYPE_COL", "mapping": str(mapping), "map.accuracy_class": "Pos"}
    ingest(database, "utilities", [path], _options(extra=extra))
    rows = _rows(clean, "SELECT asset_id, owner, utility_type, subtype, hazard_class,"
                        " accuracy_class, pressure_bar FROM restricted.utilities_lines ORDER BY 1")  # fmt: skip
    assert rows == [("a", "Gasnet", "gas", "high_pressure", "very_dangerous", "2", 19.0),
                    ("b", "Gasnet", "gas", "low_pressure", "dangerous", ">2", 4.0),
                    ("c", "Vandnet", "water", None, "not_dangerous", None, None)]  # fmt: skip
    with pytest.raises(InvalidInput, match="no such field") as err:
        ingest(database, "utilities", [path], _options(extra={"map.utility_type": "NOPE"},
                                                       mode="replace"))  # fmt: skip
    assert err.value.field == "utility_type"
    bad = _cables(tmp_path, "bad.geojson", type=["el", "el", "el"], owner=["X", "X", "X"],
                  accuracy=["0.25", "about a metre", "1"])  # fmt: skip
    with pytest.raises(InvalidInput, match="'about a metre' is not a position accuracy") as err:
        ingest(database, "utilities", [bad], _options())
    assert err.value.record == "record 1" and err.value.field == "accuracy"


def test_uploaded_interest_areas_replace_the_derived_ones(clean, database, sample, tmp_path):
    ingest(
        database, "utilities", [sample / "nordfiber.gml", sample / "ostkyst-gas.gml"], _options()
    )
    conn = clean
    assert _count(conn, "utilities_interest_areas", "owner = 'NordFiber ApS'") == 1
    areas = gpd.GeoDataFrame({"owner": ["NordFiber ApS"] * 2, "type": ["telecom", None]},
                             geometry=[box(E, N, E + 500, N + 500), box(E + 600, N, E + 900, N + 300)],
                             crs="EPSG:25832")  # fmt: skip
    upload = tmp_path / "nordfiber_interest.geojson"
    areas.to_file(upload, driver="GeoJSON")
    report = ingest(database, "utilities", [upload], _options())[0]  # named for interest areas
    assert report.layers == ["utilities_interest_areas"]
    rows = _rows(conn, "SELECT owner, utility_type, origin, round(area_m2)"
                       " FROM restricted.utilities_interest_areas ORDER BY 1, 2")  # fmt: skip
    assert rows == [("NordFiber ApS", "telecom", "uploaded", 250000),
                    ("NordFiber ApS", None, "uploaded", 90000),
                    ("Østkyst Gasdistribution A/S", "gas", "derived", rows[2][3])]  # fmt: skip
    ingest(database, "utilities", [sample / "nordfiber.gml"], _options(mode="replace"))
    assert (
        _count(conn, "utilities_interest_areas", "origin = 'derived' AND owner = 'NordFiber ApS'")
        == 0
    )
    with database.connection("ingest") as ingest_conn:
        assert derive_interest_areas(ingest_conn, "NordFiber ApS") == 0
        assert derive_interest_areas(ingest_conn, "Østkyst Gasdistribution A/S") == 1
    # with the assets, as --option interest_areas=FILE (any name)
    gas = tmp_path / "gas.geojson"
    gpd.GeoDataFrame({"owner": ["Østkyst Gasdistribution A/S"]}, geometry=[box(E, N, E + 10, N + 10)],
                     crs="EPSG:25832").to_file(gas, driver="GeoJSON")  # fmt: skip
    reports = ingest(database, "utilities", [sample / "ostkyst-gas.gml"],
                     _options(mode="replace", extra={"interest_areas": str(gas)}))  # fmt: skip
    assert reports[-1].source == "gas.geojson" and reports[-1].inserted == 1
    assert _rows(conn, "SELECT origin, round(area_m2) FROM restricted.utilities_interest_areas"
                       " WHERE owner = 'Østkyst Gasdistribution A/S'") == [("uploaded", 100)]  # fmt: skip


def test_derived_buffer_widths_follow_the_accuracy_class(clean, database, tmp_path):
    lines = [LineString([(E, N + 100 * i), (E + 100, N + 100 * i)]) for i in range(3)]
    frame = gpd.GeoDataFrame({"type": ["el", "water", "gas"], "accuracy": ["0.25", None, "1"]},
                             geometry=lines, crs="EPSG:25832")  # fmt: skip
    path = tmp_path / "three.gpkg"
    frame.to_file(path, layer="cables", driver="GPKG")
    ingest(database, "utilities", [path], _options(owner="Bufnet"))
    areas = dict(
        _rows(clean, "SELECT utility_type, area_m2 FROM restricted.utilities_interest_areas")
    )
    # a 100 m line buffered by w: 200 w + pi w^2 (slightly less with quad_segs=4)
    assert areas["electricity"] == pytest.approx(200 * 1 + 3.14159 * 1, rel=0.01)
    assert areas["gas"] == pytest.approx(200 * 2 + 3.14159 * 4, rel=0.01)
    assert areas["water"] == pytest.approx(200 * 5 + 3.14159 * 25, rel=0.01)


# -- real data: KLIC delivery, IMKL2015, NVDB ------------------------------------


def test_klic_delivery_zip_lands_with_owners_types_and_dig_polygon(clean, database, shared_data):
    path = shared_data / KLIC
    assert detect(path) == "imkl"
    report = ingest(database, "utilities", [path], _options())[0]
    assert report.layers == ["utilities_lines", "utilities_points", "utilities_areas",
                             "utilities_dig_areas"]  # fmt: skip
    assert report.rows_in == report.inserted == 4_174 and report.rejected == 0
    assert any("3,591 Maatvoering" in w for w in report.warnings)
    conn = clean
    lines = dict(
        _rows(conn, "SELECT utility_type, count(*) FROM restricted.utilities_lines GROUP BY 1")
    )
    assert lines == {"electricity": 856, "gas": 606, "sewer": 168, "water": 372}
    points = dict(
        _rows(conn, "SELECT utility_type, count(*) FROM restricted.utilities_points GROUP BY 1")
    )
    assert points == {"electricity": 836, "gas": 845, "sewer": 300, "water": 160}
    for table in ASSETS:
        assert _count(conn, table, "owner IS NULL OR owner = ''") == 0
        assert _count(conn, table, "utility_type IS NULL OR hazard_class IS NULL") == 0
    owners = _rows(
        conn, "SELECT owner, count(*) FROM restricted.utilities_lines GROUP BY 1 ORDER BY 1"
    )
    assert owners == [("Enexis B.V.", 1_460), ("Gemeente Maasgouw", 170), ("WML N.V.", 372)]
    zones = _rows(conn, "SELECT owner, utility_type, subtype, hazard_class, attributes->>'eisVoorzorgsmaatregel'"
                        " FROM restricted.utilities_areas WHERE asset_kind = 'precaution_zone'")  # fmt: skip
    assert len(zones) == 8
    assert set(zones) == {("Enexis B.V.", "gas", "high_pressure", "very_dangerous", "C_GHDW3-hoog")}
    assert (
        _count(
            conn,
            "utilities_lines",
            "subtype = 'high_pressure' AND hazard_class <> 'very_dangerous'",
        )
        == 0
    )
    assert _count(conn, "utilities_points", "asset_kind = 'depth_marker' AND depth_m = 1.3") >= 1
    assert _count(conn, "utilities_lines", "depth_m IS NOT NULL") == 0
    dig = _rows(conn, "SELECT request_id, requester, ST_Area(geom), ST_XMin(geom), ST_YMin(geom)"
                      " FROM restricted.utilities_dig_areas")  # fmt: skip
    assert len(dig) == 1 and dig[0][:2] == ("KLIC 22C001967", "FTO Grondroerder01")
    assert dig[0][2] == pytest.approx(90_800, rel=0.02)
    assert 250_000 < dig[0][3] < 300_000 and 5_600_000 < dig[0][4] < 5_700_000  # NL in UTM 32
    interest = dict(
        _rows(conn, "SELECT owner, count(*) FROM restricted.utilities_interest_areas GROUP BY 1")
    )
    assert interest == {"Enexis B.V.": 2, "Gemeente Maasgouw": 2, "WML N.V.": 1}


def test_imkl2015_lon_lat_links_refuse_the_file(clean, database, shared_data):
    path = shared_data / IMKL2015
    with pytest.raises(InvalidInput, match="has no owner") as err:
        ingest(database, "utilities", [path], _options())
    assert err.value.field == "owner"
    with pytest.raises(InvalidInput) as err:
        ingest(database, "utilities", [path], _options(owner="Snetten"))
    message = str(err.value)
    assert "18 records refused, nothing loaded" in message
    assert (
        "record nl.imkl.snetten.y-1: coordinate (5.37678, 51.4927) cannot be in EPSG:28992"
        in message
    )
    assert "looks like longitude/latitude" in message
    for table in LAYERS:
        assert _count(clean, table) is None
    assert _rows(clean, "SELECT count(*) FROM geoby.layer_sources WHERE source_file LIKE %s",
                 "%snetten.gml")[0][0] == 0  # fmt: skip


def test_imkl2015_skip_invalid_loads_the_rest_and_keeps_the_rejects(clean, database, shared_data):
    path = shared_data / IMKL2015
    report = ingest(database, "utilities", [path], _options(owner="Snetten", skip_invalid=True))[0]
    assert (report.inserted, report.rejected) == (296, 18)
    rejects = _rows(clean, "SELECT record, reason FROM geoby.load_rejects"
                           " WHERE layer_id = 'utilities_lines' ORDER BY record")  # fmt: skip
    assert len(rejects) == 18
    assert {r for r, _ in rejects} == {f"nl.imkl.snetten.y-{i}" for i in range(1, 19)}
    assert all("looks like longitude/latitude" in reason for _, reason in rejects)
    assert _count(clean, "utilities_lines", "asset_id LIKE 'nl.imkl.snetten.y-%%'") == 0
    assert (
        _count(clean, "utilities_lines", "source_format = 'IMKL2015' AND owner = 'Snetten'") > 100
    )


def test_nvdb_is_reprojected_from_utm33(clean, database, shared_data):
    folder = shared_data / "nvdb-gml"
    paths = sorted(folder.glob("*.gml"))
    reports = ingest(database, "utilities", paths, _options())
    by_file = {r.source: r for r in reports}
    assert by_file["GLA_0501_Kabel.gml"].inserted == 61
    assert by_file["GLA_0501_Lysmast.gml"].inserted == 1_423
    assert by_file["NIFS_0520_Kum.gml"].inserted == 249
    culverts = by_file["NIFS_0520_StikkrenneKulvert.gml"]
    assert (culverts.inserted, culverts.rejected) == (1_273, 1_537)  # 1,537 have no geometry at all
    conn = clean
    for table in ("utilities_lines", "utilities_points"):
        x0, y0, x1, y1, srid = _rows(conn, sql.SQL(
            "SELECT min(ST_XMin(geom)), min(ST_YMin(geom)), max(ST_XMax(geom)), max(ST_YMax(geom)),"
            " min(ST_SRID(geom)) FROM {}").format(sql.Identifier("restricted", table)))[0]  # fmt: skip
        assert srid == 25832 and 500_000 < x0 < x1 < 600_000 and 6_700_000 < y0 < y1 < 6_900_000
    assert (
        _count(conn, "utilities_lines", "asset_kind = 'culvert' AND NOT ST_IsEmpty(geom)") == 1_273
    )
    assert _count(conn, "utilities_lines", "owner <> 'Statens vegvesen'") == 0
    kinds = _rows(conn, "SELECT asset_kind, utility_type, subtype FROM restricted.utilities_points"
                        " GROUP BY 1, 2, 3 ORDER BY 1")  # fmt: skip
    assert kinds == [("manhole", "sewer", "storm"), ("mast", "electricity", "low_voltage")]
    # the first mast, reprojected independently
    mast = gpd.read_file(folder / "GLA_0501_Lysmast.gml", engine="pyogrio").iloc[0]
    x, y = Transformer.from_crs(25833, 25832, always_xy=True).transform(
        mast.geometry.x, mast.geometry.y
    )
    stored = _rows(conn, "SELECT ST_X(ST_GeometryN(geom, 1)), ST_Y(ST_GeometryN(geom, 1))"
                         " FROM restricted.utilities_points WHERE asset_id = %s", mast["gml_id"])  # fmt: skip
    assert stored[0] == pytest.approx((x, y), abs=0.001)
    unlocated = _rows(conn, "SELECT count(*), min(reason) FROM geoby.load_rejects"
                            " WHERE source_file = 'NIFS_0520_StikkrenneKulvert.gml'")[0]  # fmt: skip
    assert unlocated[0] == 1_537 and "no position in the file" in unlocated[1]


def test_files_without_owner_in_nvdb_register_need_one(clean, database, shared_data, tmp_path):
    text = (shared_data / "nvdb-gml" / "NIFS_0520_Kum.gml").read_text(encoding="utf-8")
    path = tmp_path / "kum.gml"
    path.write_text(text.replace("<nvdb:navnerom>vegvesen.no.nvdb</nvdb:navnerom>",
                                 "<nvdb:navnerom>example.no</nvdb:navnerom>", 1), encoding="utf-8")  # fmt: skip
    with pytest.raises(InvalidInput, match="names no owner") as err:
        ingest(database, "utilities", [path], _options())
    assert err.value.field == "owner" and err.value.record.startswith("record vegvesen.no.nvdb.")
    assert _count(clean, "utilities_points") is None
    report = ingest(database, "utilities", [path], _options(owner="Ringebu kommune"))[0]
    assert report.inserted == 249
