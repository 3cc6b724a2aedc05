"""The OGC APIs on real Danish files (../shared/data): features, tiles and coverage.

Real roads and lakes from the Danish DHM quality-control vectors and a
real 10 m DTM tile are ingested through geoby's pipelines, then read back
through the OGC APIs and compared with the source files: coordinates (3D
kept), vector tile contents, and the terrain coverage pixel for pixel.
"""

from __future__ import annotations

import io
import json

import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from psycopg2 import sql
from pyproj import Transformer
from rasterio.windows import from_bounds

from api.app import create_app
from ingest.pipelines import IngestOptions, ingest
from layers.database import connect
from tests.db_helpers import drop_layers, rows

ROADS = "dk-vectors/dhmqc_roads_1km_6173_632.geojson"
LAKES = "dk-vectors/dhmqc_water_1km_6173_632.geojson"
DTM = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"
LAYERS = ["water_roads", "water_lakes", "terrain_ogc_dk"]


@pytest.fixture(scope="module")
def client(settings, database, shared_data):
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    drop_layers(conn, LAYERS)
    options = IngestOptions(show_progress=False)
    ingest(database, "water", [shared_data / ROADS, shared_data / LAKES], options)
    ingest(
        database, "terrain", [shared_data / DTM],
        IngestOptions(show_progress=False, extra={"layer": "terrain_ogc_dk"}),
    )  # fmt: skip
    try:
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        drop_layers(conn, LAYERS)
        conn.close()


def test_real_roads_round_trip_in_storage_crs_and_crs84(client, shared_data):
    source = json.loads((shared_data / ROADS).read_text())["features"]
    doc = client.get(
        "/ogc/collections/water_roads/items",
        params={"crs": "http://www.opengis.net/def/crs/EPSG/0/25832", "limit": 100},
    ).json()
    assert doc["numberMatched"] == len(source) == 13
    by_start = {tuple(f["geometry"]["coordinates"][0][0][:2]) for f in doc["features"]}
    for feature in source:
        x, y, z = feature["geometry"]["coordinates"][0]
        assert (round(x, 3), round(y, 3)) in {(round(a, 3), round(b, 3)) for a, b in by_start}
    assert all(len(f["geometry"]["coordinates"][0][0]) == 3 for f in doc["features"])  # 3D kept
    lonlat = client.get("/ogc/collections/water_roads/items", params={"limit": 100}).json()
    to_lonlat = Transformer.from_crs(25832, 4326, always_xy=True)
    expected = sorted(to_lonlat.transform(*f["geometry"]["coordinates"][0][:2]) for f in source)
    got = sorted(tuple(f["geometry"]["coordinates"][0][0][:2]) for f in lonlat["features"])
    assert np.allclose(got, expected, atol=1e-7, rtol=0)  # written with 7 decimals


@pytest.mark.parametrize("layer", ["water_roads", "water_lakes"])
def test_real_vectors_in_a_vector_tile(client, database, layer):
    with database.connection("owner") as conn:
        [(lon, lat)] = rows(
            conn,
            sql.SQL(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid("
                "ST_Collect(geom)), 4326) c FROM {}) s"
            ).format(sql.Identifier("data", layer)),
        )  # fmt: skip
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 15)
    r = client.get(
        f"/ogc/collections/{layer}/tiles/WebMercatorQuad/15/{tile.y}/{tile.x}",
        params={"f": "mvt"},
    )
    assert r.status_code == 200
    decoded = mapbox_vector_tile.decode(r.content)
    with database.connection("owner") as conn:
        [(inside,)] = rows(
            conn,
            sql.SQL(
                "SELECT count(*) FROM {} WHERE ST_Intersects("
                "ST_Transform(geom, 3857), ST_TileEnvelope(15, %s, %s))"
            ).format(sql.Identifier("data", layer)),
            tile.x,
            tile.y,
        )
    assert inside > 0
    assert len(decoded[layer]["features"]) == inside


def test_real_dtm_coverage_equals_the_source_pixels(client, shared_data):
    meta = client.get("/ogc/collections/terrain_ogc_dk").json()
    assert any(link["rel"].endswith("/coverage") for link in meta["links"])
    r = client.get("/ogc/collections/terrain_ogc_dk/coverage", params={"f": "GTiff"})
    assert r.status_code == 200
    with rasterio.open(io.BytesIO(r.content)) as served, rasterio.open(shared_data / DTM) as src:
        assert served.crs.to_epsg() == 25832
        window = from_bounds(*served.bounds, transform=src.transform)
        expected = src.read(1, window=window.round_offsets().round_lengths())
        got = served.read(1)
        assert got.shape == expected.shape
        assert np.array_equal(got, expected)
