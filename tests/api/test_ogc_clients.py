"""Real clients against a real server: GDAL's OAPIF driver, geopandas/pyogrio, OWSLib.

The server runs on a loopback port (`geoby serve` in a subprocess); the clients are the
ones GIS users and researchers run: ``ogrinfo``/``ogr2ogr`` from the OS
package gdal-bin, geopandas through pyogrio's bundled GDAL, OWSLib. Filters
and boxes must reach the server (the items handler logs what it was asked),
not be applied by the client after downloading everything.
"""

from __future__ import annotations

import shutil
import subprocess

import geopandas as gpd
import pyogrio
import pytest
from owslib.ogcapi.features import Features
from psycopg2 import sql

from tests.api.live_server import serve_process
from tests.api.ogc_data import create_lines, table_sql
from tests.db_helpers import rows

LAYER = "test_ogc_clients"
BOX = (12.50, 55.64, 12.52, 55.655)  # lon/lat, inside the data


def _q(text: str, where: str = "TRUE") -> sql.Composed:
    return table_sql(LAYER, text, where)


@pytest.fixture(scope="module")
def server(settings, database):
    create_lines(database, 2500, LAYER)
    with serve_process(settings) as process:
        yield process


def _truth(database, where: str = "TRUE", *params) -> set[int]:
    with database.connection("owner") as conn:
        found = rows(
            conn,
            _q(
                "SELECT fid FROM {t} WHERE ST_Intersects(ST_Transform(geom, 4326),"
                " ST_MakeEnvelope(%s, %s, %s, %s, 4326)) AND {w}",
                where,
            ),
            *BOX,
            *params,
        )
    return {fid for (fid,) in found}


def _all(database) -> int:
    with database.connection("owner") as conn:
        return rows(conn, _q("SELECT count(*) FROM {t}"))[0][0]


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def gdal() -> None:
    if shutil.which("ogrinfo") is None:
        pytest.fail("ogrinfo is missing: install the OS package gdal-bin (make install does)")


def test_ogrinfo_reads_the_collection_summary(server, database, gdal):
    out = _run("ogrinfo", "-ro", "-so", f"OAPIF:{server.url}/ogc", LAYER)
    assert f"Feature Count: {_all(database)}" in out
    assert "diameter_mm: Integer" in out


def test_ogr2ogr_copies_every_feature(server, database, gdal, tmp_path):
    out = tmp_path / "all.gpkg"
    _run(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.url}/ogc", LAYER, "-oo", "PAGE_SIZE=1000"
    )
    copied = pyogrio.read_dataframe(out, read_geometry=False)
    assert len(copied) == _all(database)
    assert copied["name"].is_unique


def test_ogrinfo_pushes_bbox_and_where_to_the_server(server, database, gdal):
    before = len(server.lines)
    out = _run(
        "ogrinfo",
        "-ro",
        "-q",
        "-spat",
        *map(str, BOX),
        "-where",
        "kind = 'gas'",
        f"OAPIF:{server.url}/ogc",
        LAYER,
    )
    expected = _truth(database, "kind = 'gas'")
    assert out.count("OGRFeature(") == len(expected) > 0
    # the access log shows the box and the filter in every page GDAL asked for
    asked = [line for line in server.lines[before:] if f"/collections/{LAYER}/items?" in line]
    pages = [line for line in asked if "offset=" in line]
    assert pages and all("bbox=" in line and "kind=gas" in line for line in pages), asked


def test_geopandas_reads_with_crs84_bbox_and_where(server, database):
    frame = gpd.read_file(
        f"OAPIF:{server.url}/ogc",
        layer=LAYER,
        engine="pyogrio",
        CRS="OGC:CRS84",
        bbox=BOX,
        where="kind = 'gas'",
        PAGE_SIZE=1000,
    )
    assert len(frame) == len(_truth(database, "kind = 'gas'")) > 0
    assert frame.crs.to_epsg() in (4326, None) or "CRS84" in frame.crs.to_string()
    assert set(frame["kind"]) == {"gas"}


def test_geopandas_reads_in_the_storage_crs(server, database):
    frame = gpd.read_file(f"OAPIF:{server.url}/ogc", layer=LAYER, engine="pyogrio", PAGE_SIZE=1000)
    assert len(frame) == _all(database)
    assert frame.crs.to_epsg() == 25832  # GDAL >= 3.7 takes the storage CRS
    x, y = frame.geometry.iloc[0].coords[0]
    assert 719000 < x < 725000 and 6169000 < y < 6175000


def test_owslib_features_items_bbox_and_cql2_filter(server, database):
    features = Features(f"{server.url}/ogc")
    assert LAYER in [c["id"] for c in features.collections()["collections"]]
    page = features.collection_items(LAYER, limit=1000, bbox=list(BOX))
    assert {f["id"] for f in page["features"]} == _truth(database)
    filtered = features.collection_items(LAYER, limit=5, filter="kind='gas' AND diameter_mm > 400")
    with database.connection("owner") as conn:
        count = rows(conn, _q("SELECT count(*) FROM {t} WHERE kind = 'gas' AND diameter_mm > 400"))
    assert filtered["numberMatched"] == count[0][0] > 0
    assert filtered["numberReturned"] == 5
    queryables = features.collection_queryables(LAYER)
    assert "diameter_mm" in queryables["properties"]
    one = features.collection_item(LAYER, str(page["features"][0]["id"]))
    assert one["id"] == page["features"][0]["id"]
