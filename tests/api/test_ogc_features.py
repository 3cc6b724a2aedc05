"""OGC API - Features core abstract tests (OGC 17-069r4 Annex A) and Part 2 (CRS), as our own suite.

The CITE ETS cannot run here (it needs Maven Central); these tests follow its
abstract tests: landing page, API definition, conformance, collections,
items with bbox/limit/datetime, invalid and unknown parameters, links,
numberMatched/numberReturned, timeStamp, single features, and Part 2's crs /
bbox-crs / Content-Crs. Each asserts against PostGIS where a count is involved.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from psycopg2 import sql

from api.app import create_app
from layers.database import connect
from tests.api.ogc_data import create_lines, table_sql
from tests.db_helpers import rows

LAYER = "test_ogc_features"
ITEMS = f"/ogc/collections/{LAYER}/items"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
QGIS_FILTER_CLASSES = {
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
}


def _q(text: str, where: str = "TRUE") -> sql.Composed:
    return table_sql(LAYER, text, where)


@pytest.fixture(scope="module")
def client(settings, database):
    create_lines(database, 3000, LAYER)
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        _restricted_layer(conn)
    finally:
        conn.close()
    with TestClient(create_app(settings)) as client:
        yield client


def _restricted_layer(conn) -> None:
    from layers import catalog

    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS restricted.test_ogc_secret")
        cur.execute(
            "CREATE TABLE restricted.test_ogc_secret (fid bigserial PRIMARY KEY, owner text,"
            " geom geometry(Point, 25832))"
        )
        cur.execute(
            "INSERT INTO restricted.test_ogc_secret (owner, geom)"
            " VALUES ('gas co', ST_SetSRID(ST_MakePoint(720100, 6170100), 25832))"
        )
    catalog.register(
        conn,
        catalog.Layer(
            id="test_ogc_secret",
            title="Buried gas",
            theme="utilities",
            kind="vector",
            table_schema="restricted",
            table_name="test_ogc_secret",
            access="restricted",
        ),
    )


def _count(database, where: str = "TRUE", *params) -> int:
    with database.connection("owner") as conn:
        return rows(conn, _q("SELECT count(*) FROM {t} WHERE {w}", where), *params)[0][0]


def _rels(doc: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for link in doc["links"]:
        found.setdefault(link["rel"], []).append(link)
    return found


# -- A.2 landing page, API definition, conformance --------------------------------


def test_landing_page_links_to_api_conformance_and_data(client):
    r = client.get("/ogc/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    rels = _rels(r.json())
    for rel in ("self", "service-desc", "conformance", "data"):
        assert rel in rels, rel


def test_api_definition_is_openapi_3_0(client):
    r = client.get("/ogc/openapi", params={"f": "json"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.0")
    assert f"/collections/{LAYER}/items" in doc["paths"]
    try:
        validate(doc)
    except OpenAPIValidationError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"pygeoapi's OpenAPI document is invalid: {exc.message}")


def test_conformance_declares_core_crs_and_every_filter_class(client):
    classes = set(client.get("/ogc/conformance").json()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert QGIS_FILTER_CLASSES <= classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in classes
    # read-only: no transactions declared
    assert not any("ogcapi-features-4" in c for c in classes)
    # the list does not grow from request to request
    assert len(client.get("/ogc/conformance").json()["conformsTo"]) == len(classes)


# -- A.2.5 collections -------------------------------------------------------------


def test_collections_list_open_layers_with_extent_and_crs(client):
    doc = client.get("/ogc/collections").json()
    ids = {c["id"] for c in doc["collections"]}
    assert LAYER in ids
    assert "test_ogc_secret" not in ids  # restricted layers are never public collections
    ours = next(c for c in doc["collections"] if c["id"] == LAYER)
    bbox = ours["extent"]["spatial"]["bbox"][0]
    assert 12.4 < bbox[0] < bbox[2] < 12.7 and 55.6 < bbox[1] < bbox[3] < 55.7
    assert ours["storageCrs"] == EPSG.format(25832)
    assert set(ours["crs"]) >= {CRS84, EPSG.format(4326), EPSG.format(3857), EPSG.format(25832)}
    assert "items" in _rels(ours)


def test_single_collection_and_unknown_ones(client):
    assert client.get(f"/ogc/collections/{LAYER}").json()["id"] == LAYER
    assert client.get("/ogc/collections/nope").status_code == 404
    assert client.get("/ogc/collections/test_ogc_secret").status_code == 404
    assert client.get("/ogc/collections/test_ogc_secret/items").status_code == 404


def test_queryables_name_the_columns_with_types(client):
    doc = client.get(f"/ogc/collections/{LAYER}/queryables").json()
    props = doc["properties"]
    assert props["diameter_mm"]["type"] == "integer"
    assert props["depth_m"]["type"] == "number"
    assert props["kind"]["type"] == "string"
    assert "_source" not in props and "_loaded_at" not in props


# -- A.2.7 items ---------------------------------------------------------------------


def test_items_response_counts_links_and_timestamp(client, database):
    r = client.get(ITEMS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) == 10
    assert doc["numberMatched"] == _count(database)
    assert doc["timeStamp"].endswith("Z")
    rels = _rels(doc)
    assert {"self", "alternate", "next"} <= set(rels)
    feature = doc["features"][0]
    assert feature["type"] == "Feature" and isinstance(feature["id"], int)
    assert feature["geometry"]["type"] == "LineString"


def test_limit_definition_and_response(client):
    assert len(client.get(ITEMS, params={"limit": 7}).json()["features"]) == 7
    assert client.get(ITEMS, params={"limit": 0}).status_code == 400
    assert client.get(ITEMS, params={"limit": "ten"}).status_code == 400
    capped = client.get(ITEMS, params={"limit": 1_000_000, "skipGeometry": "true"}).json()
    assert capped["numberReturned"] == 3000  # under the 10,000 cap: everything


def test_next_links_walk_every_feature_once(client, database):
    url, seen = f"{ITEMS}?limit=400&kind=gas&skipGeometry=true", []
    while url:
        doc = client.get(url).json()
        seen += [f["id"] for f in doc["features"]]
        nxt = _rels(doc).get("next")
        url = nxt[0]["href"].split("testserver", 1)[-1].split(":8000", 1)[-1] if nxt else None
    assert len(seen) == len(set(seen)) == _count(database, "kind = 'gas'")


def test_deep_offset_page(client, database):
    doc = client.get(ITEMS, params={"offset": 2990, "limit": 50}).json()
    assert doc["numberReturned"] == 10
    last = [f["id"] for f in doc["features"]]
    with database.connection("owner") as conn:
        expected = [r[0] for r in rows(conn, _q("SELECT fid FROM {t} ORDER BY fid OFFSET 2990"))]
    assert last == expected
    assert "next" not in _rels(doc) and "prev" in _rels(doc)


def test_bbox_definition_and_errors(client):
    assert client.get(ITEMS, params={"bbox": "1,2,3"}).status_code == 400
    assert client.get(ITEMS, params={"bbox": "12.5,55.7,12.6,55.6"}).status_code == 400
    assert client.get(ITEMS, params={"bbox": "a,b,c,d"}).status_code == 400
    assert client.get(ITEMS, params={"bbox-crs": CRS84}).status_code == 400
    r = client.get(ITEMS, params={"bbox": "0,0,1,1", "bbox-crs": EPSG.format(2154)})
    assert r.status_code == 400 and "2154" in r.json()["description"]
    # 6 numbers (3D box) are accepted; far away boxes are empty
    assert client.get(ITEMS, params={"bbox": "-10,-10,0,10,10,100"}).json()["numberMatched"] == 0


def test_datetime_instant_and_intervals(client, database):
    def matched(value):
        r = client.get(ITEMS, params={"datetime": value, "limit": 1})
        assert r.status_code == 200, r.text
        return r.json()["numberMatched"]

    assert matched("2021-01-01T00:00:00Z/2021-06-30T23:59:59Z") == _count(
        database, "observed_at BETWEEN '2021-01-01T00:00:00Z' AND '2021-06-30T23:59:59Z'"
    )
    assert matched("../2020-03-01T00:00:00Z") == _count(
        database, "observed_at <= '2020-03-01T00:00:00Z'"
    )
    assert matched("2024-01-01T00:00:00Z/..") == _count(database, "observed_at >= '2024-01-01Z'")
    assert matched("2020-01-01") == _count(
        database, "observed_at >= '2020-01-01Z' AND observed_at < '2020-01-02Z'"
    )
    assert client.get(ITEMS, params={"datetime": "yesterday"}).status_code == 400
    assert client.get(ITEMS, params={"datetime": "2021-02-01Z/2021-01-01Z"}).status_code == 400


def test_unknown_and_invalid_parameters_are_400(client):
    r = client.get(ITEMS, params={"colour": "red"})
    assert r.status_code == 400
    assert "colour" in r.json()["description"]
    assert client.get(ITEMS, params={"diameter_mm": "wide"}).status_code == 400
    assert client.get(ITEMS, params={"skipGeometry": "maybe"}).status_code == 400
    assert client.get(ITEMS, params={"resulttype": "all"}).status_code == 400
    assert client.get(ITEMS, params={"f": "xml"}).status_code == 400
    assert client.get(ITEMS, params={"sortby": "colour"}).status_code == 400
    assert client.get(ITEMS, params={"properties": "kind,colour"}).status_code == 400


def test_property_equality_sortby_properties_skipgeometry(client, database):
    doc = client.get(
        ITEMS,
        params={
            "kind": "water",
            "sortby": "-diameter_mm",
            "properties": "kind,diameter_mm",
            "skipGeometry": "true",
            "limit": 5000,
        },
    ).json()
    assert doc["numberMatched"] == _count(database, "kind = 'water'")
    assert all(f["geometry"] is None for f in doc["features"])
    assert all(set(f["properties"]) == {"kind", "diameter_mm"} for f in doc["features"])
    sizes = [f["properties"]["diameter_mm"] for f in doc["features"]]
    present = [s for s in sizes if s is not None]
    assert present == sorted(present, reverse=True)
    hits = client.get(ITEMS, params={"resulttype": "hits", "kind": "water"}).json()
    assert hits["numberMatched"] == doc["numberMatched"] and hits["features"] == []


def test_html_pages(client):
    r = client.get(ITEMS, params={"f": "html", "limit": 3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "line " in r.text
    first = client.get(ITEMS, params={"limit": 1}).json()["features"][0]["id"]
    assert client.get(f"{ITEMS}/{first}", params={"f": "html"}).status_code == 200


# -- A.2.8 a feature -------------------------------------------------------------------


def test_single_feature_and_missing_ones(client, database):
    fid = client.get(ITEMS, params={"limit": 1}).json()["features"][0]["id"]
    r = client.get(f"{ITEMS}/{fid}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["id"] == fid and {"self", "collection"} <= set(_rels(doc))
    assert client.get(f"{ITEMS}/999999999").status_code == 404
    assert client.get(f"{ITEMS}/abc").status_code == 404
    assert client.get(f"{ITEMS}/{fid}", params={"colour": "red"}).status_code == 400


# -- Part 2: crs, bbox-crs, Content-Crs --------------------------------------------------


@pytest.mark.parametrize("epsg", [None, 4326, 25832, 3857])
def test_crs_output_and_content_crs_header(client, database, epsg):
    fid = client.get(ITEMS, params={"limit": 1}).json()["features"][0]["id"]
    params = {"crs": EPSG.format(epsg)} if epsg else {}
    r = client.get(f"{ITEMS}/{fid}", params=params)
    assert r.headers["content-crs"] == f"<{EPSG.format(epsg) if epsg else CRS84}>"
    x, y = r.json()["geometry"]["coordinates"][0]
    srid = epsg or 4326
    with database.connection("owner") as conn:
        ex, ey = rows(
            conn,
            _q(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_StartPoint(geom), %s) p"
                " FROM {t} WHERE fid = %s) s"
            ),
            srid,
            fid,
        )[0]
    if epsg == 4326:  # EPSG:4326 is latitude first
        ex, ey = ey, ex
    tolerance = 1e-6 if srid == 4326 else 1e-2
    assert abs(x - ex) < tolerance and abs(y - ey) < tolerance
    page = client.get(ITEMS, params={**params, "limit": 2})
    assert page.headers["content-crs"] == r.headers["content-crs"]


def test_invalid_crs_is_400(client):
    assert client.get(ITEMS, params={"crs": EPSG.format(2154)}).status_code == 400
    assert client.get(ITEMS, params={"crs": "lonlat"}).status_code == 400
