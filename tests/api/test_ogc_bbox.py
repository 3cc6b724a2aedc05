"""bbox is exact in every offered bbox-crs: thousands of random boxes, no miss, no extra.

The truth is PostGIS itself: the features whose geometry, transformed to the
box's CRS, intersects the box. geoby's answer must be that set exactly, for
boxes in CRS84, EPSG:4326 (lat/lon axis order), EPSG:3857 and the storage CRS
EPSG:25832, of sizes from a few metres to the whole town, many of them cutting
lines near their ends. (pygeoapi's stock provider transforms two corners of
the box and misses features near the edges.)
"""

from __future__ import annotations

import json
import random

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.ogc import query, tables
from layers import catalog
from layers.crs import transformer
from tests.api.ogc_data import LAYER_ID, ORIGIN, SIZE_M, make_lines
from tests.db_helpers import rows

BOXES_PER_CRS = 600


@pytest.fixture(scope="module")
def lines(settings, database):
    from layers.database import connect

    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        layer = make_lines(conn)
    finally:
        conn.close()
    with database.connection("read") as conn:
        return tables.describe(conn, catalog.get(conn, layer.id))


def _random_boxes(epsg: int, count: int, rng: random.Random) -> list[tuple[float, ...]]:
    """Boxes over (and beyond) the data, in ``epsg`` axis order."""
    to_target = transformer(25832, query.srid_of(epsg))
    boxes = []
    for _ in range(count):
        size = rng.choice([3.0, 20.0, 80.0, 300.0, 1500.0, 5000.0])
        x = ORIGIN[0] - 200 + rng.random() * (SIZE_M + 400)
        y = ORIGIN[1] - 200 + rng.random() * (SIZE_M + 400)
        w, h = size * (0.3 + rng.random()), size * (0.3 + rng.random())
        if epsg == 25832:
            box = (x, y, x + w, y + h)
        else:
            x1, y1 = to_target.transform(x, y)
            x2, y2 = to_target.transform(x + w, y + h)
            box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        boxes.append((box[1], box[0], box[3], box[2]) if epsg == 4326 else box)
    return boxes


def _truth(conn, box, epsg: int) -> set[int]:
    x1, y1, x2, y2 = (box[1], box[0], box[3], box[2]) if epsg == 4326 else box
    srid = query.srid_of(epsg)
    found = rows(
        conn,
        # The index prefilter is the box's corners transformed and widened by 50 m:
        # a superset far wider than any bend of the box's edges in EPSG:25832.
        "SELECT fid FROM data.test_ogc_lines"
        " WHERE geom && ST_Expand(ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, %s), 25832), 50)"
        " AND ST_Intersects(ST_Transform(geom, %s), ST_MakeEnvelope(%s, %s, %s, %s, %s))",
        x1,
        y1,
        x2,
        y2,
        srid,
        srid,
        x1,
        y1,
        x2,
        y2,
        srid,
    )
    return {fid for (fid,) in found}


@pytest.mark.parametrize("epsg", [query.CRS84, 4326, 3857, 25832])
def test_random_boxes_are_exact(lines, database, epsg):
    rng = random.Random(epsg + 7)
    misses = extras = hits = 0
    with database.connection("read") as conn:
        for box in _random_boxes(epsg, BOXES_PER_CRS, rng):
            page = query.run_page(
                conn,
                query.FeatureQuery(
                    table=lines,
                    limit=100_000,
                    bbox=box,
                    bbox_epsg=epsg,
                    properties=[],
                    skip_geometry=True,
                ),
            )
            got = {f["id"] for f in json.loads(f"[{page.features}]")}
            truth = _truth(conn, box, epsg)
            assert page.matched == len(truth)
            misses += len(truth - got)
            extras += len(got - truth)
            hits += len(truth)
    assert (misses, extras) == (0, 0)
    assert hits > BOXES_PER_CRS  # the boxes did hit data


def test_http_bbox_in_each_crs_matches_postgis(settings, lines, database):
    """The same exactness through the HTTP API, with bbox-crs and crs URIs."""
    uris = {
        query.CRS84: None,
        4326: "http://www.opengis.net/def/crs/EPSG/0/4326",
        3857: "http://www.opengis.net/def/crs/EPSG/0/3857",
        25832: "http://www.opengis.net/def/crs/EPSG/0/25832",
    }
    rng = random.Random(99)
    with TestClient(create_app(settings)) as client, database.connection("read") as conn:
        for epsg, uri in uris.items():
            for box in _random_boxes(epsg, 40, rng):
                params = {
                    "bbox": ",".join(repr(v) for v in box),
                    "limit": 10000,
                    "skipGeometry": "true",
                    "properties": "kind",
                }
                if uri:
                    params["bbox-crs"] = uri
                r = client.get(f"/ogc/collections/{LAYER_ID}/items", params=params)
                assert r.status_code == 200, r.text
                doc = r.json()
                truth = _truth(conn, box, epsg)
                got = {f["id"] for f in doc["features"]}
                assert doc["numberMatched"] == len(truth)
                if len(truth) <= 10000:
                    assert got == truth
                else:  # a page of the maximum size, and a next link
                    assert got < truth and len(got) == 10000
                    assert any(link["rel"] == "next" for link in doc["links"])
