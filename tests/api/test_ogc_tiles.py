"""OGC API - Tiles: vector tiles of a real table, checked against PostGIS itself.

The table holds a few thousand wiggly lines (random walks of 20-60 vertices,
10-25 m apart) in EPSG:25832 near Copenhagen. Every tile fetched through the
app is decoded and compared with the features PostGIS says intersect the tile
envelope plus its buffer (``ST_TileEnvelope(z, x, y, margin => 64/4096)``).
"""

from __future__ import annotations

import json

import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from psycopg2.extras import execute_values

from api.app import create_app
from api.ogc import mvt, tables
from layers import catalog
from layers.database import connect

LAYER_ID = "test_tiles_lines"
ORIGIN = (718000.0, 6172000.0)
SIZE_M = 6000.0
ROWS = 4000
COLUMNS = {"kind", "diameter_mm", "depth_m", "installed", "meta", "name"}
WMQ = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"


def _walks(rng: np.random.Generator) -> list[str]:
    lines = []
    for _ in range(ROWS):
        n = int(rng.integers(20, 61))
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.35, n))
        step = rng.uniform(10, 25, n)
        x = ORIGIN[0] + rng.uniform(0, SIZE_M) + np.cumsum(step * np.cos(heading))
        y = ORIGIN[1] + rng.uniform(0, SIZE_M) + np.cumsum(step * np.sin(heading))
        lines.append(
            "LINESTRING(" + ",".join(f"{a:.3f} {b:.3f}" for a, b in zip(x, y, strict=True)) + ")"
        )
    return lines


@pytest.fixture(scope="module")
def owner(database):
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def layer(owner) -> catalog.Layer:
    rng = np.random.default_rng(7)
    kinds = ["gas", "water", "power", "telecom", "heat"]
    rows = [
        (
            kinds[i % 5],
            None if i % 11 == 0 else 50 + (i * 37) % 800,
            round(0.3 + (i % 200) / 100, 2),
            f"{1960 + i % 60}-0{1 + i % 9}-1{i % 10}",
            json.dumps({"owner": f"org{i % 3}", "n": i}),
            f"line {i}",
            wkt,
        )
        for i, wkt in enumerate(_walks(rng), start=1)
    ]
    with owner.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = %s", (LAYER_ID,))
        cur.execute("DROP TABLE IF EXISTS data.test_tiles_lines")
        cur.execute(
            "CREATE TABLE data.test_tiles_lines (fid bigserial PRIMARY KEY, kind text,"
            " diameter_mm integer, depth_m numeric(5, 2), installed date, meta jsonb, name text,"
            " geom geometry(LineString, 25832), _source text DEFAULT 'synthetic',"
            " _record text DEFAULT 'r', _loaded_at timestamptz DEFAULT now())"
        )
        execute_values(
            cur,
            "INSERT INTO data.test_tiles_lines"
            " (kind, diameter_mm, depth_m, installed, meta, name, geom) VALUES %s",
            rows,
            template="(%s, %s, %s, %s, %s, %s, ST_GeomFromText(%s, 25832))",
        )
        cur.execute("CREATE INDEX ON data.test_tiles_lines USING gist (geom)")
        cur.execute("ANALYZE data.test_tiles_lines")
        cur.execute("GRANT SELECT ON data.test_tiles_lines TO geoby_read")
    catalog.register(
        owner,
        catalog.Layer(
            id=LAYER_ID, title="Tile test lines", description="Wiggly synthetic lines.",
            theme="utilities", kind="vector", table_schema="data", table_name=LAYER_ID,
            geometry_type="LineString", licence="CC0-1.0", attribution="geoby tests",
        ),
    )  # fmt: skip
    return catalog.refresh_statistics(owner, LAYER_ID)


@pytest.fixture(scope="module")
def client(settings, layer):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def table(database, layer) -> tables.Table:
    with database.connection("read") as conn:
        return tables.describe(conn, catalog.get(conn, LAYER_ID))


def _center(owner) -> tuple[float, float]:
    with owner.cursor() as cur:
        cur.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_SetSRID(ST_Centroid("
            "ST_Extent(geom)::geometry), 25832), 4326) AS c FROM data.test_tiles_lines) s"
        )
        return cur.fetchone()


def _truth(owner, z: int, x: int, y: int, kind: str | None = None) -> list[int]:
    """fids of the features PostGIS puts in the tile (unsimplified), in order.

    Those intersecting the tile envelope plus its buffer, less the few that only
    touch the buffer's edge, of which ``ST_AsMVTGeom`` leaves nothing to draw
    (:func:`_touching` counts them).
    """
    with owner.cursor() as cur:
        cur.execute(
            "SELECT fid FROM data.test_tiles_lines WHERE ST_Intersects(ST_Transform(geom, 3857),"
            " ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096)) AND ST_AsMVTGeom("
            "ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s), 4096, 64, true) IS NOT NULL"
            " AND (%s::text IS NULL OR kind = %s) ORDER BY fid",
            (z, x, y, z, x, y, kind, kind),
        )
        return [row[0] for row in cur.fetchall()]


def _touching(owner, z: int, x: int, y: int) -> int:
    """How many features intersect the buffered tile but have nothing inside it to draw."""
    with owner.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM data.test_tiles_lines WHERE ST_Intersects(ST_Transform(geom,"
            " 3857), ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096))",
            (z, x, y),
        )
        return cur.fetchone()[0] - len(_truth(owner, z, x, y))


def _decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def _vertices(feature: dict) -> int:
    geometry = feature["geometry"]
    parts = geometry["coordinates"]
    return len(parts) if geometry["type"] == "LineString" else sum(len(p) for p in parts)


def _url(z: int, x: int, y: int, tms: str = "WebMercatorQuad", query: str = "f=mvt") -> str:
    return f"/ogc/collections/{LAYER_ID}/tiles/{tms}/{z}/{y}/{x}?{query}"


@pytest.mark.parametrize("z", [10, 14, 16])
def test_tile_holds_exactly_the_features_postgis_finds(client, owner, z):
    tile = WMQ.tile(*_center(owner), z)
    response = client.get(_url(z, tile.x, tile.y))
    assert response.status_code == 200
    assert response.headers["content-type"] == MVT
    assert "max-age" in response.headers["cache-control"]
    layers = _decode(response.content)
    assert list(layers) == [LAYER_ID]
    layer = layers[LAYER_ID]
    assert layer["extent"] == 4096
    expected = _truth(owner, z, tile.x, tile.y)
    assert len(expected) < mvt.MAX_FEATURES  # the cap is not what limits these tiles
    assert len(expected) > {10: 2000, 14: 150, 16: 15}[z]
    assert sorted(f["id"] for f in layer["features"]) == expected
    assert _touching(owner, z, tile.x, tile.y) <= 2
    for feature in layer["features"]:
        assert set(feature["properties"]) <= COLUMNS
        for x, y in _points(feature):
            assert -64 <= x <= 4096 + 64 and -64 <= y <= 4096 + 64


def _points(feature: dict):
    geometry = feature["geometry"]
    if geometry["type"] == "LineString":
        yield from geometry["coordinates"]
    else:
        for part in geometry["coordinates"]:
            yield from part


def test_attributes_are_the_published_columns_with_their_values(client, owner):
    tile = WMQ.tile(*_center(owner), 14)
    features = _decode(client.get(_url(14, tile.x, tile.y)).content)[LAYER_ID]["features"]
    with owner.cursor() as cur:
        cur.execute(
            "SELECT fid, kind, diameter_mm, depth_m::float8, installed::text, meta::text, name"
            " FROM data.test_tiles_lines WHERE fid = ANY(%s)",
            ([f["id"] for f in features],),
        )
        rows = {row[0]: row[1:] for row in cur.fetchall()}
    names = ("kind", "diameter_mm", "depth_m", "installed", "meta", "name")
    for feature in features:
        stored = {k: v for k, v in zip(names, rows[feature["id"]], strict=True) if v is not None}
        properties = feature["properties"]
        assert set(properties) == set(stored)  # no _source, _record, _loaded_at, fid
        assert properties["depth_m"] == pytest.approx(stored["depth_m"])  # numeric as a number
        assert json.loads(properties["meta"]) == json.loads(stored["meta"])  # json kept whole
        assert properties["kind"] == stored["kind"] and properties["name"] == stored["name"]
        assert properties["installed"] == stored["installed"]
        assert properties.get("diameter_mm") == stored.get("diameter_mm")


def test_properties_selects_attributes(client, owner):
    tile = WMQ.tile(*_center(owner), 14)
    response = client.get(_url(14, tile.x, tile.y, query="f=mvt&properties=kind,diameter_mm"))
    features = _decode(response.content)[LAYER_ID]["features"]
    assert features
    assert {k for f in features for k in f["properties"]} == {"kind", "diameter_mm"}
    bad = client.get(_url(14, tile.x, tile.y, query="properties=kind,_source"))
    assert bad.status_code == 400
    assert "_source" in bad.json()["description"]


def test_filter_selects_features(client, owner):
    tile = WMQ.tile(*_center(owner), 14)
    response = client.get(_url(14, tile.x, tile.y, query="filter=kind%3D%27gas%27"))
    assert response.status_code == 200, response.text
    features = _decode(response.content)[LAYER_ID]["features"]
    assert sorted(f["id"] for f in features) == _truth(owner, 14, tile.x, tile.y, kind="gas")
    assert {f["properties"]["kind"] for f in features} == {"gas"}


def test_the_cap_keeps_the_lowest_ids(database, owner, table):
    tile = WMQ.tile(*_center(owner), 10)
    expected = _truth(owner, 10, tile.x, tile.y)
    assert len(expected) > 500
    with database.connection("read") as conn:
        content = mvt.render(conn, table, mvt.scheme("WebMercatorQuad"), 10, tile.x, tile.y,
                             max_features=100)  # fmt: skip
    ids = sorted(f["id"] for f in _decode(content)[LAYER_ID]["features"])
    assert ids == expected[:100]


def test_the_cap_applies_to_the_http_route(client, owner, monkeypatch):
    monkeypatch.setattr(mvt, "MAX_FEATURES", 25)
    tile = WMQ.tile(*_center(owner), 10)
    features = _decode(client.get(_url(10, tile.x, tile.y)).content)[LAYER_ID]["features"]
    assert sorted(f["id"] for f in features) == _truth(owner, 10, tile.x, tile.y)[:25]


def _unsimplified_vertices(owner, z: int, x: int, y: int) -> int:
    """Vertices of the tile's features as ST_AsMVTGeom alone makes them (no simplification)."""
    with owner.cursor() as cur:
        cur.execute(
            "SELECT sum(ST_NPoints(g)) FROM (SELECT ST_AsMVTGeom(ST_Transform(geom, 3857),"
            " ST_TileEnvelope(%s, %s, %s), 4096, 64, true) AS g FROM data.test_tiles_lines) s",
            (z, x, y),
        )
        return cur.fetchone()[0]


@pytest.mark.parametrize("z", [10, 13, 14, 16])
def test_low_zooms_are_simplified_high_zooms_are_not(client, owner, z):
    """Below zoom 14 lines lose vertices (not features); from 14 on they keep every one."""
    tile = WMQ.tile(*_center(owner), z)
    features = _decode(client.get(_url(z, tile.x, tile.y)).content)[LAYER_ID]["features"]
    assert len(features) == len(_truth(owner, z, tile.x, tile.y))  # vertices go, not features
    vertices = sum(_vertices(f) for f in features)
    unsimplified = _unsimplified_vertices(owner, z, tile.x, tile.y)
    if z < 14:
        assert vertices < (0.6 if z == 10 else 0.9) * unsimplified
    else:
        assert vertices == unsimplified


def test_world_crs84_quad_tile(client, owner):
    lon, lat = _center(owner)
    crs84 = morecantile.tms.get("WorldCRS84Quad")
    tile = crs84.tile(lon, lat, 13)
    b = crs84.xy_bounds(tile)
    pad = (b.right - b.left) * 64 / 4096
    response = client.get(_url(13, tile.x, tile.y, tms="WorldCRS84Quad"))
    assert response.status_code == 200
    ids = sorted(f["id"] for f in _decode(response.content)[LAYER_ID]["features"])
    with owner.cursor() as cur:
        cur.execute(
            "SELECT fid FROM data.test_tiles_lines WHERE ST_Intersects(ST_Transform(geom, 4326),"
            " ST_MakeEnvelope(%s, %s, %s, %s, 4326)) ORDER BY fid",
            (b.left - pad, b.bottom - pad, b.right + pad, b.top + pad),
        )
        expected = [row[0] for row in cur.fetchall()]
    assert len(expected) > 100 and ids == expected


def test_a_tile_away_from_the_data_is_empty(client):
    tile = WMQ.tile(-70.0, -30.0, 12)
    response = client.get(_url(12, tile.x, tile.y))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == MVT


def test_tilesets_list_links_to_the_tile_template(client):
    response = client.get(f"/ogc/collections/{LAYER_ID}/tiles?f=json")
    assert response.status_code == 200
    body = response.json()
    assert {t["tileMatrixSetURI"].rsplit("/", 1)[1] for t in body["tilesets"]} == {
        "WebMercatorQuad",
        "WorldCRS84Quad",
    }
    items = [link for link in body["links"] if link["rel"] == "item"]
    assert items[0]["href"].endswith(
        f"/ogc/collections/{LAYER_ID}/tiles/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt"
    )
    assert items[0]["type"] == MVT


def test_tileset_metadata_template_and_limits_lead_to_tiles(client, owner):
    response = client.get(f"/ogc/collections/{LAYER_ID}/tiles/WebMercatorQuad?f=json")
    assert response.status_code == 200
    body = response.json()
    assert body["dataType"] == "vector"
    assert body["crs"].endswith("/3857")
    rels = {link["rel"]: link for link in body["links"]}
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"]["href"].endswith(
        "/ogc/TileMatrixSets/WebMercatorQuad?f=json"
    )
    template = rels["item"]["href"]
    assert template.endswith("/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}?f=mvt")
    tile = WMQ.tile(*_center(owner), 14)
    limits = {lim["tileMatrix"]: lim for lim in body["tileMatrixSetLimits"]}
    z14 = limits["14"]
    assert z14["minTileRow"] <= tile.y <= z14["maxTileRow"]
    assert z14["minTileCol"] <= tile.x <= z14["maxTileCol"]
    assert set(body["layers"][0]["propertiesSchema"]["properties"]) == COLUMNS
    path = template.split("/ogc/", 1)[1].format(tileMatrix=14, tileRow=tile.y, tileCol=tile.x)
    fetched = client.get("/ogc/" + path)
    assert fetched.status_code == 200
    assert _decode(fetched.content)[LAYER_ID]["features"]


def test_tilejson(client, owner):
    response = client.get(f"/ogc/collections/{LAYER_ID}/tiles/WebMercatorQuad?f=tilejson")
    assert response.status_code == 200
    doc = response.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith(
        f"/ogc/collections/{LAYER_ID}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}?f=mvt"
    )
    assert (doc["minzoom"], doc["maxzoom"]) == (0, 22)
    lon, lat = _center(owner)
    west, south, east, north = doc["bounds"]
    assert west < lon < east and south < lat < north
    assert east - west < 0.2 and north - south < 0.1
    (vector_layer,) = doc["vector_layers"]
    assert vector_layer["id"] == LAYER_ID
    assert vector_layer["fields"]["diameter_mm"] == "Number"
    assert set(vector_layer["fields"]) == COLUMNS
    assert doc["attribution"] == "geoby tests"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("WebMercatorQuad/23/0/0", 404, "tileMatrix 23"),
        ("WebMercatorQuad/-1/0/0", 404, "tileMatrix -1"),
        ("WebMercatorQuad/10/320/1024", 404, "tileCol 0..1023"),
        ("WebMercatorQuad/10/1024/320", 404, "tileRow is 0..1023"),
        ("WorldCRS84Quad/3/8/0", 404, "tileRow is 0..7"),
        ("WebMercatorQuad/ten/1/1", 400, "integers"),
        ("WebMercatorQuad/10/1.5/1", 400, "integers"),
        ("GoogleMapsCompatible/10/1/1", 404, "WebMercatorQuad, WorldCRS84Quad"),
    ],
)
def test_bad_tile_addresses(client, path, status, words):
    response = client.get(f"/ogc/collections/{LAYER_ID}/tiles/{path}?f=mvt")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert words in response.json()["description"]


def test_bad_tile_requests(client):
    base = f"/ogc/collections/{LAYER_ID}/tiles/WebMercatorQuad/10/320/547"
    unknown = client.get("/ogc/collections/no_such_layer/tiles/WebMercatorQuad/10/320/547")
    assert unknown.status_code == 404 and "no_such_layer" in unknown.json()["description"]
    assert client.get(base + "?f=png").status_code == 400
    extra = client.get(base + "?zoom=3")
    assert extra.status_code == 400 and "zoom" in extra.json()["description"]


def test_bad_tileset_requests(client):
    base = f"/ogc/collections/{LAYER_ID}/tiles"
    unknown_tms = client.get(f"{base}/NoSuchQuad?f=json")
    assert unknown_tms.status_code == 404
    assert "WebMercatorQuad" in unknown_tms.json()["description"]
    assert client.get(f"{base}/WorldCRS84Quad?f=tilejson").status_code == 400
    assert client.get(f"{base}/WebMercatorQuad?f=mvt").status_code == 400
    assert client.get("/ogc/collections/no_such_layer/tiles?f=json").status_code == 404


def test_collections_without_geometry_have_no_tiles(client):
    # The layer catalog is published as a record collection, not as a table with geometry.
    for path in ("/ogc/collections/catalog/tiles?f=json",
                 "/ogc/collections/catalog/tiles/WebMercatorQuad?f=json",
                 "/ogc/collections/catalog/tiles/WebMercatorQuad/0/0/0?f=mvt"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 404, path
        assert "has no vector tiles" in response.json()["description"]


def test_html_pages(client):
    base = f"/ogc/collections/{LAYER_ID}/tiles"
    pages = {
        "?f=html": "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}?f=mvt",
        "/WebMercatorQuad?f=html": "/tiles/WebMercatorQuad?f=tilejson",
    }
    for path, link in pages.items():
        response = client.get(base + path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert link in response.text
