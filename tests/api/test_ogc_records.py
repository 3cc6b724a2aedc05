"""The layer catalog as OGC API - Records at /ogc/collections/catalog."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from owslib.ogcapi.records import Records
from psycopg2 import sql
from rasterio.transform import from_origin

from api.app import create_app
from layers import catalog
from layers.catalog import Layer
from layers.crs import transformer
from tests.api.live_server import serve
from tests.db_helpers import drop_layers, rows

ITEMS = "/ogc/collections/catalog/items"
LAKES_EXTENT = (720000.0, 6170000.0, 724000.0, 6174000.0)
BINS_EXTENT = (500000.0, 6250000.0, 502000.0, 6252000.0)
UPDATED = {
    "rec_lakes": "2020-03-01T00:00:00Z",
    "rec_bins": "2022-06-01T00:00:00Z",
    "rec_heat": "2023-01-01T00:00:00Z",
    "rec_dtm": "2024-01-01T00:00:00Z",
}
OPEN = set(UPDATED)


def _table(conn, schema: str, name: str, geometry: bool) -> None:
    table = sql.Identifier(schema, name)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        geom = sql.SQL(", geom geometry(Polygon, 25832)") if geometry else sql.SQL("")
        cur.execute(
            sql.SQL("CREATE TABLE {} (fid bigserial PRIMARY KEY, name text{})").format(table, geom)
        )
        if schema == "data":
            cur.execute(sql.SQL("GRANT SELECT ON {} TO geoby_read").format(table))


def _raster(path) -> str:
    profile = {
        "driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32",
        "crs": "EPSG:25832", "transform": from_origin(600000, 6200000, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.arange(16, dtype="float32").reshape(1, 4, 4))
    return str(path)


@pytest.fixture(scope="module")
def layers(settings, tmp_path_factory):
    from layers.database import Database, connect

    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    drop_layers(conn, ["rec_lakes", "rec_bins", "rec_heat", "rec_dtm"])
    drop_layers(conn, ["rec_gas"], schema="restricted")
    _table(conn, "data", "rec_lakes", True)
    _table(conn, "data", "rec_bins", True)
    _table(conn, "data", "rec_heat", False)
    _table(conn, "restricted", "rec_gas", True)
    dtm = _raster(tmp_path_factory.mktemp("records") / "dtm.tif")
    common = {"table_schema": "data", "kind": "vector", "geometry_type": "Polygon"}
    registered = [
        Layer(id="rec_lakes", title="Lakes and ponds", theme="water", table_name="rec_lakes",
              description="Standing water bodies of the municipality.",
              keywords=["hydrology", "surface water"], extent=LAKES_EXTENT,
              owner_org="Municipality of Example", licence="CC-BY-4.0",
              attribution="© Municipality of Example", **common),
        Layer(id="rec_bins", title="Waste bins", theme="waste", table_name="rec_bins",
              description="Bins with fill-level sensors.", keywords=["sensors", "fill level"],
              extent=BINS_EXTENT, licence="https://example.org/licence", **common),
        Layer(id="rec_heat", title="Heat consumption", theme="energy", kind="table",
              table_schema="data", table_name="rec_heat", keywords=["hourly"],
              properties={"temporal_extent": ["2023-01-01T00:00:00Z", None]}),
        Layer(id="rec_dtm", title="Terrain model", theme="terrain", kind="raster",
              raster_path=dtm, extent=(600000.0, 6199960.0, 600040.0, 6200000.0),
              keywords=["elevation"], licence="CC0 1.0"),
        Layer(id="rec_gas", title="Gas mains near the lakes", theme="utilities",
              kind="vector", table_schema="restricted", table_name="rec_gas",
              access="restricted", keywords=["hydrology", "surface water"],
              extent=LAKES_EXTENT, description="Buried lakes pipes."),
    ]  # fmt: skip
    for layer in registered:
        catalog.register(conn, layer)
    with conn.cursor() as cur:
        for layer_id, moment in UPDATED.items():
            cur.execute("UPDATE geoby.layers SET updated_at = %s WHERE id = %s", (moment, layer_id))
    yield conn
    drop_layers(conn, ["rec_lakes", "rec_bins", "rec_heat", "rec_dtm"])
    drop_layers(conn, ["rec_gas"], schema="restricted")
    conn.close()


@pytest.fixture(scope="module")
def client(settings, layers):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _ids(client, **params) -> list[str]:
    response = client.get(ITEMS, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["numberReturned"] == len(body["features"])
    return [f["id"] for f in body["features"]]


def _ours(ids: list[str]) -> list[str]:
    return [i for i in ids if i in OPEN or i == "rec_gas"]


def test_catalog_collection_is_a_record_collection(client):
    body = client.get("/ogc/collections/catalog").json()
    assert body["itemType"] == "record"
    assert any(link["rel"] == "items" for link in body["links"])
    queryables = client.get("/ogc/collections/catalog/queryables").json()["properties"]
    assert {"title", "description", "keywords", "theme", "type", "updated"} <= set(queryables)
    assert "waste" in queryables["theme"]["enum"]


def test_items_are_all_open_layers_and_never_restricted_ones(client, layers):
    body = client.get(ITEMS, params={"limit": 1000}).json()
    open_count = rows(layers, "SELECT count(*) FROM geoby.layers WHERE access = 'open'")[0][0]
    assert body["numberMatched"] == open_count == len(body["features"])
    ids = [f["id"] for f in body["features"]]
    assert OPEN <= set(ids)
    assert "rec_gas" not in ids
    assert client.get(f"{ITEMS}/rec_gas").status_code == 404
    assert client.get(f"{ITEMS}/no_such_layer").status_code == 404


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lakes", ["rec_lakes"]),  # a title word; the restricted layer matches too but is hidden
        ("HYDROLOGY", ["rec_lakes"]),  # a keyword, any case
        ("standing municipality", ["rec_lakes"]),  # every word must match
        ("lakes sensors", []),
        ("ponds,sensors", ["rec_bins", "rec_lakes"]),  # commas are alternatives
        ("energy", ["rec_heat"]),  # the theme
        ("gas", []),
    ],
)
def test_q_searches_title_description_keywords_and_theme(client, q, expected):
    assert sorted(_ours(_ids(client, q=q))) == expected


def test_bbox_intersects_the_extent_in_crs84(client):
    to_crs84 = transformer(25832, 0)
    x, y = to_crs84.transform(722000.0, 6172000.0)
    around_lakes = f"{x - 0.001},{y - 0.001},{x + 0.001},{y + 0.001}"
    assert _ours(_ids(client, bbox=around_lakes)) == ["rec_lakes"]
    bx, by = to_crs84.transform(501000.0, 6251000.0)
    assert _ours(_ids(client, bbox=f"{bx - 1},{by - 1},{bx + 1},{by + 1}")) == ["rec_bins"]
    assert _ours(_ids(client, bbox="-10,-10,-9,-9")) == []
    across_antimeridian = f"{x - 0.001},{y - 0.001},-170,{y + 0.001}"
    assert _ours(_ids(client, bbox=across_antimeridian)) == ["rec_lakes"]


def test_datetime_filters_on_updated(client):
    assert sorted(_ours(_ids(client, datetime="2022-01-01T00:00:00Z/.."))) == [
        "rec_bins", "rec_dtm", "rec_heat",
    ]  # fmt: skip
    assert _ours(_ids(client, datetime="../2021-01-01")) == ["rec_lakes"]
    assert client.get(ITEMS, params={"datetime": "yesterday"}).status_code == 400


def test_type_theme_and_keyword_filters(client):
    assert _ours(_ids(client, theme="waste")) == ["rec_bins"]
    assert sorted(_ours(_ids(client, theme="waste,terrain"))) == ["rec_bins", "rec_dtm"]
    assert set(_ours(_ids(client, type="dataset"))) == OPEN
    assert _ids(client, type="service") == []
    assert _ours(_ids(client, keywords="Fill Level")) == ["rec_bins"]


def test_sortby_title_and_updated(client):
    assert _ours(_ids(client, sortby="title")) == ["rec_heat", "rec_lakes", "rec_dtm", "rec_bins"]
    assert _ours(_ids(client, sortby="-updated")) == [
        "rec_dtm",
        "rec_heat",
        "rec_bins",
        "rec_lakes",
    ]
    assert client.get(ITEMS, params={"sortby": "nonsense"}).status_code == 400


def test_filter_is_refused_and_properties_are_selected(client):
    assert client.get(ITEMS, params={"filter": "title = 'x'"}).status_code == 400
    params = {"q": "lakes", "properties": "title,theme", "skipGeometry": "true"}
    body = client.get(ITEMS, params=params).json()
    record = next(f for f in body["features"] if f["id"] == "rec_lakes")
    assert set(record["properties"]) == {"title", "themes"} and record["geometry"] is None


def test_limit_and_offset_page_with_number_matched(client):
    first = client.get(ITEMS, params={"q": "e", "limit": 2}).json()
    second = client.get(ITEMS, params={"q": "e", "limit": 2, "offset": 2}).json()
    assert first["numberMatched"] == second["numberMatched"] >= 4
    assert first["numberReturned"] == second["numberReturned"] == 2
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}
    assert any(link["rel"] == "next" for link in first["links"])
    hits = client.get(ITEMS, params={"q": "e", "resulttype": "hits"}).json()
    assert hits["numberMatched"] == first["numberMatched"] and hits["features"] == []


def test_a_vector_record_in_full(client):
    response = client.get(f"{ITEMS}/rec_lakes")
    assert response.status_code == 200
    record = response.json()
    assert record["id"] == "rec_lakes" and record["type"] == "Feature"
    props = record["properties"]
    assert props["type"] == "dataset"
    assert props["title"] == "Lakes and ponds"
    assert props["keywords"] == ["hydrology", "surface water"]
    assert props["themes"] == [{"concepts": [{"id": "water"}], "scheme": "https://geoby.dk/themes"}]
    assert props["updated"] == UPDATED["rec_lakes"]
    assert datetime.fromisoformat(props["created"]) <= datetime.now(UTC)
    assert props["license"] == "CC-BY-4.0"
    assert props["rights"] == "© Municipality of Example"
    assert props["contacts"] == [{"organization": "Municipality of Example", "roles": ["owner"]}]
    assert {f["name"] for f in props["formats"]} >= {"GeoJSON", "MVT"}
    ring = record["geometry"]["coordinates"][0]
    assert record["geometry"]["type"] == "Polygon" and len(ring) == 5
    x1, y1, x2, y2 = transformer(25832, 0).transform_bounds(*LAKES_EXTENT)
    assert min(p[0] for p in ring) == pytest.approx(x1, abs=1e-4)
    assert max(p[1] for p in ring) == pytest.approx(y2, abs=1e-4)
    links = {(link["rel"], link["type"]): link["href"] for link in record["links"]}
    assert links[("describes", "application/json")].endswith("/ogc/collections/rec_lakes")
    assert links[("items", "application/geo+json")].endswith(
        "/ogc/collections/rec_lakes/items?f=json"
    )
    tiles = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
    assert links[(tiles, "application/json")].endswith("/ogc/collections/rec_lakes/tiles?f=json")
    collection = [link for link in record["links"] if link["rel"] == "collection"]
    assert len(collection) == 1 and collection[0]["href"].endswith("/ogc/collections/catalog")


def test_raster_and_table_records(client):
    dtm = client.get(f"{ITEMS}/rec_dtm").json()
    rels = {link["rel"] for link in dtm["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/coverage" in rels and "items" not in rels
    assert {f["name"] for f in dtm["properties"]["formats"]} >= {"GeoTIFF"}
    assert dtm["properties"]["license"] == "CC0-1.0"
    heat = client.get(f"{ITEMS}/rec_heat").json()
    assert heat["geometry"] is None
    assert heat["time"] == {"interval": ["2023-01-01T00:00:00Z", ".."]}
    assert "license" not in heat["properties"]  # "unknown" is not a license
    bins = client.get(f"{ITEMS}/rec_bins").json()
    assert bins["properties"]["license"] == "other"
    assert {"rel": "license", "type": "text/html", "title": "License",
            "href": "https://example.org/licence"} in bins["links"]  # fmt: skip


def test_records_in_a_list_link_to_the_catalog(client):
    body = client.get(ITEMS, params={"q": "lakes"}).json()
    record = next(f for f in body["features"] if f["id"] == "rec_lakes")
    assert [link["rel"] for link in record["links"]].count("collection") == 1


def test_html_pages_render(client):
    assert "Lakes and ponds" in client.get(ITEMS, params={"f": "html", "q": "lakes"}).text
    assert "Lakes and ponds" in client.get(f"{ITEMS}/rec_lakes", params={"f": "html"}).text


@pytest.fixture(scope="module")
def server(settings, layers):
    with serve(settings) as url:
        yield url


def test_owslib_records_client_lists_and_searches(server):
    records = Records(f"{server}/ogc")
    assert "catalog" in records.records()
    listed = records.collection_items("catalog", limit=1000)
    ids = {f["id"] for f in listed["features"]}
    assert OPEN <= ids and "rec_gas" not in ids
    found = records.collection_items("catalog", q="hydrology")
    assert _ours([f["id"] for f in found["features"]]) == ["rec_lakes"]
    record = records.collection_item("catalog", "rec_bins")
    assert record["properties"]["title"] == "Waste bins"
    assert any(
        link["href"].startswith(f"{server}/ogc/collections/rec_bins") for link in record["links"]
    )
