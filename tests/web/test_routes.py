"""The web map's server side: the page and its policy, ``/status`` for people and for
programs, and raster tiles checked pixel by pixel against the rasters they draw."""

from __future__ import annotations

import io
import math

import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_origin

from api import web
from api.app import create_app

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def client(settings, web_town):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def rgba(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def test_the_page_and_its_files_carry_a_self_only_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="map"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    worker = client.get("/static/vendor/maplibre-gl-csp-worker.js")
    assert worker.status_code == 200, "run `make web` (npm ci and web/build.sh)"
    assert worker.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert "http://" not in page.text.replace("http://www.w3.org", "")


@pytest.mark.parametrize(("accept", "html"), [
    (BROWSER_ACCEPT, True), ("text/html", True), ("*/*", False), ("", False),
    ("application/json", False), ("application/json, text/html;q=0.5", False),
    ("text/html;q=0.5, application/json;q=0.4", True), ("text/html;q=0", False),
])  # fmt: skip
def test_status_is_html_only_when_html_is_preferred(client, accept, html):
    response = client.get("/status", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html" if html else "application/json")
    assert web.prefers_html(accept) is html


def test_the_status_page_shows_every_component(client):
    doc = client.get("/status").json()
    page = client.get("/status", headers={"Accept": BROWSER_ACCEPT}).text
    assert client.get("/status?f=html").text.count("<h2") == len(doc["components"])
    for name, component in doc["components"].items():
        assert f"id='c-{name}'" in page and f"badge {component['status']}" in page
    assert f"{doc['components']['database']['postgis']}" in page
    forced = client.get("/status?f=json", headers={"Accept": BROWSER_ACCEPT})
    assert forced.headers["content-type"] == "application/json"
    assert forced.json()["components"].keys() == doc["components"].keys()


def town_tile(web_town, zoom: int) -> morecantile.Tile:
    with rasterio.open(web_town.settings.data_dir / "terrain" / "terrain_dtm.tif") as src:
        x, y = (src.bounds.left + src.bounds.right) / 2, (src.bounds.bottom + src.bounds.top) / 2
        lon, lat = Transformer.from_crs(src.crs, 4326, always_xy=True).transform(x, y)
    return web.TMS.tile(lon, lat, zoom)


def test_terrain_tiles_are_a_hillshade_and_empty_elsewhere(client, web_town):
    tile = town_tile(web_town, 14)
    image = rgba(client.get(f"/api/raster-tiles/terrain_dtm/{tile.z}/{tile.x}/{tile.y}.png"))
    opaque = image[..., 3] == 255
    assert opaque.mean() > 0.2
    grey = image[..., 0][opaque]
    assert (image[..., 0] == image[..., 1]).all() and grey.std() > 0.5
    far = rgba(client.get("/api/raster-tiles/terrain_dtm/14/0/0.png"))
    assert far.shape == (256, 256, 4) and not far[..., 3].any()


@pytest.mark.parametrize(("path", "status"), [
    ("/api/raster-tiles/no_such_layer/14/0/0.png", 404),
    ("/api/raster-tiles/water_roads/14/0/0.png", 400),
    ("/api/raster-tiles/terrain_dtm/3/8/0.png", 404),
    ("/api/raster-tiles/terrain_dtm/23/0/0.png", 400),
    ("/api/raster-tiles/terrain_dtm/14/0/0.png?style=rainbow", 400),
])  # fmt: skip
def test_bad_tile_addresses_are_problems(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


def test_the_hillshade_is_lit_from_the_north_west():
    flat = np.zeros((5, 5))
    rising_east = np.tile(np.arange(5.0), (5, 1))  # a slope facing west
    rising_north = np.tile(np.arange(5.0)[::-1, None], (1, 5))  # facing south
    level = web.hillshade(flat, 1.0)[..., 0]
    assert (level == int(255 * math.sin(math.radians(45)))).all()
    assert (web.hillshade(rising_east, 1.0)[..., 0] > level).all()
    assert (web.hillshade(-rising_east, 1.0)[..., 0] < level).all()
    assert (web.hillshade(rising_north, 1.0)[..., 0] < level).all()


def test_depth_tiles_colour_each_cell_by_its_depth_class(tmp_path):
    """A 100 m grid (1 m cells, EPSG:25832): 7 cm west, 2 m east, nodata in the north."""
    depth = np.where(np.arange(100) < 50, 0.07, 2.0)[None, :].repeat(100, 0).astype("float32")
    depth[:10] = np.nan
    west, north = 721000.0, 6172000.0
    path = tmp_path / "depth.tif"
    with rasterio.open(path, "w", driver="GTiff", width=100, height=100, count=1,
                       dtype="float32", crs="EPSG:25832", nodata=np.nan,
                       transform=from_origin(west, north, 1.0, 1.0)) as dst:  # fmt: skip
        dst.write(depth, 1)
    to_lonlat = Transformer.from_crs(25832, 4326, always_xy=True)
    tile = web.TMS.tile(*to_lonlat.transform(west + 50, north - 50), 17)
    image = np.asarray(Image.open(io.BytesIO(web.render_tile(path, tile.z, tile.x, tile.y,
                                                             "depth"))).convert("RGBA"))  # fmt: skip
    box = web.TMS.xy_bounds(tile)
    res = (box.right - box.left) / 256
    xs = box.left + (np.arange(256) + 0.5) * res
    ys = box.top - (np.arange(256) + 0.5) * res
    mx, my = np.meshgrid(xs, ys)
    ex, ny = Transformer.from_crs(3857, 25832, always_xy=True).transform(mx, my)
    col, row = ex - west, north - ny
    inside = (col > 2) & (col < 98) & (row > 2) & (row < 98)
    clear = inside & (np.abs(col - 50) > 2) & (np.abs(row - 10) > 2)
    colours = dict(web.DEPTH_RAMP)
    expected = np.where((row < 10)[..., None], 0,
                        np.where((col < 50)[..., None], colours[0.05], colours[1.0]))  # fmt: skip
    assert clear.sum() > 1000
    np.testing.assert_array_equal(image[clear], expected[clear])
    outside = (col < -2) | (col > 102) | (row < -2) | (row > 102)
    assert not image[outside][:, 3].any()
