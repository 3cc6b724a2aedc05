"""Correct on real data: the KLIC delivery's own dig polygon, and a brute-force check.

1. The real KLIC delivery (Kadaster 22C001967) carries the dig polygon it was
   made for (Graafpolygoon, in RD New, EPSG:28992) and the utility links of
   three owners that Kadaster selected for it. Filed through the HTTP API as
   a request in its own CRS, geoby must return the same links, grouped by
   the same owners. Tolerance: KLIC selects the links that touch the polygon;
   geoby adds those within the answer buffer (5 m) outside it. The delivery
   holds no links outside the polygon, so the documented tolerance is: every
   delivered link is returned, and any extra link geoby returns lies within
   the buffer (here there are none, since the delivery is all there is in
   that place).
2. Hundreds of random requests over the sample town: the assets PostGIS
   finds (``conflicts.find``) are exactly those shapely finds by brute force
   over every asset, with the same distances.
"""

from __future__ import annotations

import random
import zipfile
from collections import Counter
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pytest
import shapely
from lxml import etree
from shapely.affinity import rotate
from shapely.geometry import Polygon, mapping

from dig_coordination import conflicts
from layers.crs import reproject
from tests.dig.conftest import KLIC, bearer

GML = "http://www.opengis.net/gml/3.2"
KLIC_OWNERS = {"Enexis B.V.": 1460, "Gemeente Maasgouw": 170, "WML N.V.": 372}


def _graafpolygoon(path) -> Polygon:
    """The dig polygon of the KLIC delivery, as written in its GML (EPSG:28992)."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.lower().endswith(".xml")
                    and "gebiedsinformatielevering" in n.lower())  # fmt: skip
        root = etree.fromstring(archive.read(name))
    polygons = root.xpath("//*[local-name()='Graafpolygoon']//*[local-name()='posList']")
    assert len(polygons) == 1, "one Graafpolygoon expected in the delivery"
    values = [float(v) for v in polygons[0].text.split()]
    return Polygon(list(zip(values[0::2], values[1::2], strict=True)))


def _delivered_links(owner_conn) -> Counter:
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT owner, count(*) FROM restricted.utilities_lines"
            " WHERE source_format = 'IMKL2.0' GROUP BY owner"
        )
        return Counter(dict(cur.fetchall()))


def test_klic_dig_polygon_returns_the_delivered_links_by_owner(
    client, make_user, shared_data, owner_conn
):
    polygon = _graafpolygoon(shared_data / KLIC)
    assert _delivered_links(owner_conn) == Counter(KLIC_OWNERS)
    _, token = make_user("Aannemer Maasgouw B.V.", "contractor")
    start = date.today() + timedelta(days=1)
    body = {
        "geometry": mapping(polygon),
        "crs": "http://www.opengis.net/def/crs/EPSG/0/28992",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=14)).isoformat(),
        "work_types": ["machine_excavation"],
        "contact": {"name": "Uitvoerder", "phone": "+31 6 0000 0000"},
    }
    filed = client.post("/api/dig-requests", json=body, headers=bearer(token))
    assert filed.status_code == 201, filed.text
    answer = client.get(f"/api/dig-requests/{filed.json()['id']}/answer", headers=bearer(token))
    links = [f["properties"] for f in answer.json()["features"]
             if f["properties"]["layer"] == "utilities_lines"]  # fmt: skip
    assert Counter(p["owner"] for p in links) == Counter(KLIC_OWNERS)
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT asset_id FROM restricted.utilities_lines WHERE source_format = 'IMKL2.0'"
        )
        delivered = {row[0] for row in cur.fetchall()}
    assert {p["asset_id"] for p in links} == delivered
    # Every link touches the polygon (distance 0), as KLIC selected them.
    assert max(p["distance_m"] for p in links) == 0.0
    owners = {o["owner"] for o in filed.json()["owners"]}
    assert set(KLIC_OWNERS) <= owners


def _random_requests(rng: random.Random, bounds, n: int) -> list[Polygon]:
    xmin, ymin, xmax, ymax = bounds
    out = []
    while len(out) < n:
        cx, cy = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        w, h = rng.uniform(5, 250), rng.uniform(5, 250)
        shape = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if rng.random() < 0.5:
            shape = rotate(shape, rng.uniform(0, 90))
        if rng.random() < 0.3:  # an L-shaped dig
            shape = shape.difference(shapely.box(cx, cy, cx + w, cy + h))
        if shape.geom_type == "Polygon" and shape.is_valid:
            out.append(shapely.set_precision(shape, 0.001))
    return out


def test_random_requests_agree_with_a_brute_force_check(town, settings, owner_conn):
    layers = {}
    with owner_conn.cursor() as cur:
        for layer in conflicts.ASSET_LAYERS:
            cur.execute(f"SELECT fid, ST_AsBinary(geom) FROM restricted.{layer}"  # noqa: S608
                        " WHERE source_format = 'LER2'")  # fmt: skip
            rows = cur.fetchall()
            layers[layer] = (np.array([r[0] for r in rows]),
                             shapely.from_wkb([bytes(r[1]) for r in rows]))  # fmt: skip
    assert sum(len(f) for f, _ in layers.values()) > 2000
    lines = gpd.GeoSeries(layers["utilities_lines"][1])
    requests = _random_requests(random.Random(5), lines.total_bounds, 300)
    buffer = settings.dig.answer_buffer_m
    total = 0
    with town.connection("admin") as conn:
        for area in requests:
            found = conflicts.find(conn, area, buffer)
            got = {(a["layer"], a["fid"]): a["distance_m"] for a in found
                   if a["owner"] not in KLIC_OWNERS}  # fmt: skip
            want = {}
            for layer, (fids, geoms) in layers.items():
                distance = shapely.distance(geoms, area)
                for i in np.flatnonzero(distance <= buffer):
                    want[(layer, int(fids[i]))] = float(distance[i])
            assert got.keys() == want.keys(), area.wkt
            for key, value in want.items():
                assert got[key] == pytest.approx(value, abs=1e-6)
            total += len(want)
    assert total > 1000, "the random requests must hit many assets to prove anything"


def test_clipped_geometry_never_leaves_the_area_plus_buffer(town, settings):
    rng = random.Random(11)
    with town.connection("admin") as conn:
        for area in _random_requests(rng, (721_000, 6_171_000, 723_500, 6_173_500), 40):
            reach = settings.dig.answer_buffer_m + conflicts.CLIP_MARGIN_M
            for asset in conflicts.find(conn, area, settings.dig.answer_buffer_m):
                assert not asset["geometry"].is_empty
                vertices = shapely.points(shapely.get_coordinates(asset["geometry"]))
                assert shapely.distance(vertices, area).max() <= reach + 1e-6


def test_reprojection_round_trip_of_the_request(shared_data):
    polygon = _graafpolygoon(shared_data / KLIC)
    stored = reproject(polygon, 28992, 25832)
    back = reproject(stored, 25832, 28992)
    assert shapely.hausdorff_distance(polygon, back) < 0.01
