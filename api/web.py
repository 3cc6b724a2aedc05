"""The web map: the application at ``/``, its static files, ``/status`` for people, raster tiles.

=================================================  ==========================================
route                                              what
=================================================  ==========================================
``GET /``                                          the map application (``static/index.html``)
``GET /static/...``                                its scripts, styles and vendored MapLibre
``GET /status``                                    operating status: JSON (default) or HTML
                                                   when the client prefers ``text/html``
``GET /api/raster-tiles/{layer}/{z}/{x}/{y}.png``  an open raster layer (terrain, flood
                                                   depth) as a WebMercatorQuad PNG tile
=================================================  ==========================================

The page may only talk to this server: every HTML answer carries a
Content-Security-Policy of ``'self'`` (MapLibre's CSP build runs its worker from
a file, so no ``blob:`` workers are needed).

Raster tiles are rendered with rasterio and morecantile: the tile's window of the
COG (at the coarsest overview still finer than the tile) is warped to
WebMercator and coloured, as a hillshade for terrain and a blue ramp of water
depth for flood results. A tile outside the raster is a transparent PNG (every
client draws it as nothing; a ``204`` is not read alike by all of them).
"""

from __future__ import annotations

import io
import logging
import math
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import morecantile
import numpy as np
import rasterio
from affine import Affine
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from api.dependencies import DatabaseDep
from api.status import component_status
from layers import catalog
from layers.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

router = APIRouter()
STATIC = Path(str(resources.files("api") / "static"))
TILE = 256
TMS = morecantile.tms.get("WebMercatorQuad")
MAX_ZOOM = 22
CSP = ("default-src 'self'; img-src 'self' data: blob:; worker-src 'self'; "
       "child-src 'self'; style-src 'self'; object-src 'none'; base-uri 'self'; "
       "frame-ancestors 'none'")  # fmt: skip
TILE_HEADERS = {"Cache-Control": "public, max-age=300"}
Style = Literal["hillshade", "depth"]
# Water depth classes (m, lower bounds) and their colours: light to dark blue, all
# readable against the grey hillshade; dry cells stay transparent.
DEPTH_RAMP = ((0.0, (189, 215, 238, 150)), (0.05, (107, 174, 214, 180)),
              (0.1, (49, 130, 189, 200)), (0.3, (8, 81, 156, 215)),
              (1.0, (8, 48, 107, 230)))  # fmt: skip
MIN_DEPTH_M = 0.01


def install(app: FastAPI) -> None:
    """Serve the web map on ``app``: its routes and ``/static``."""
    app.include_router(router)
    app.mount("/static", _Static(directory=STATIC), name="static")


class _Static(StaticFiles):
    """Static files with the page's policy: a worker script is governed by the policy of
    its own response, so MapLibre's worker gets the same ``'self'`` limits as the page."""

    async def get_response(self, path: str, scope) -> Response:  # noqa: ANN001 - Starlette's Scope
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CSP
        return response


# -- pages -----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The map application."""
    return HTMLResponse(
        (STATIC / "index.html").read_text(), headers={"Content-Security-Policy": CSP}
    )


@router.get(
    "/status",
    tags=["operations"],
    summary="Operating status of every component.",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
def status(
    request: Request,
    database: DatabaseDep,
    f: Annotated[Literal["json", "html"] | None, Query(description="Overrides Accept.")] = None,
) -> Response:
    """The status of the database, broker and workers: JSON for API clients, a page for people
    (``Accept: text/html`` preferred over JSON, or ``f=html``)."""
    doc = component_status(database, getattr(request.app.state, "notify_worker", None),
                           getattr(request.app.state, "waste_subscriber", None))  # fmt: skip
    if (f or ("html" if prefers_html(request.headers.get("accept", "")) else "json")) == "json":
        return JSONResponse(doc)
    title = request.app.state.settings.api.title
    return HTMLResponse(status_page(doc, title), headers={"Content-Security-Policy": CSP})


def prefers_html(accept: str) -> bool:
    """Whether an ``Accept`` header asks for HTML before JSON (``*/*`` alone means JSON).

    Examples
    --------
    >>> prefers_html("text/html,application/xhtml+xml,*/*;q=0.8")
    True
    >>> prefers_html("application/json, text/html;q=0.5")
    False
    """
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        weights[media.lower()] = max(q, weights.get(media.lower(), 0.0))
    html = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    return html > 0 and html >= weights.get("application/json", 0.0)


def status_page(doc: dict[str, Any], title: str) -> str:
    """The status document as an accessible HTML page (one table per component)."""
    sections = []
    for name, component in doc["components"].items():
        rows = "".join(
            f"<tr><th scope='row'>{escape(key.replace('_', ' '))}</th><td>{escape(_text(value))}</td></tr>"
            for key, value in component.items() if key != "status"
        )  # fmt: skip
        sections.append(
            f"<section aria-labelledby='c-{escape(name)}'><h2 id='c-{escape(name)}'>"
            f"{escape(name.capitalize())} <span class='badge {escape(component['status'])}'>"
            f"{escape(component['status'].replace('_', ' '))}</span></h2>"
            f"<table><caption class='visually-hidden'>{escape(name)}</caption><tbody>{rows}"
            "</tbody></table></section>"
        )
    overall = escape(doc["status"])
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}: operating status</title>"
        "<link rel='stylesheet' href='/static/style.css'></head>"
        "<body class='page'><header class='page-header'>"
        f"<h1>{escape(title)}: operating status</h1>"
        f"<p>Overall: <span class='badge {overall}'>{overall}</span> · "
        "<a href='/'>Map</a> · <a href='/status?f=json'>JSON</a></p></header>"
        f"<main id='main'>{''.join(sections)}</main></body></html>"
    )


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# -- raster tiles ----------------------------------------------------------------------------


@router.get(
    "/api/raster-tiles/{layer_id}/{z}/{x}/{y}.png",
    tags=["catalog"],
    summary="An open raster layer as a WebMercatorQuad PNG tile.",
    responses={200: {"content": {"image/png": {}}}},
    response_class=Response,
)
def raster_tile(
    layer_id: str,
    z: Annotated[int, PathParam(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, PathParam(ge=0)],
    y: Annotated[int, PathParam(ge=0)],
    database: DatabaseDep,
    style: Annotated[Style | None, Query(description="Default: by the layer's theme.")] = None,
) -> Response:
    """Terrain as a hillshade, flood depth as a blue ramp; transparent outside the raster."""
    if x >= 2**z or y >= 2**z:
        raise NotFound(f"tile {z}/{x}/{y} lies outside WebMercatorQuad", field="x")
    with database.connection("read") as conn:
        layer = catalog.get(conn, layer_id)
    if layer.access != "open":
        raise NotFound(f"no open layer '{layer_id}'", field="layer_id")
    if layer.kind != "raster" or not layer.raster_path:
        raise InvalidInput(f"layer '{layer_id}' is a {layer.kind} layer, not a raster",
                           field="layer_id")  # fmt: skip
    path = Path(layer.raster_path)
    if not path.is_absolute():
        path = database.settings.data_dir / path
    if not path.is_file():
        log.error("raster tile of %s: %s is missing", layer_id, path)
        raise NotFound(f"the raster of layer '{layer_id}' is missing", field="layer_id")
    chosen = style or ("hillshade" if layer.theme == "terrain" else "depth")
    png = render_tile(path, z, x, y, chosen)
    return Response(png, media_type="image/png", headers=TILE_HEADERS)


def render_tile(path: Path, z: int, x: int, y: int, style: Style) -> bytes:
    """One 256-pixel PNG tile of a single-band raster, styled.

    Parameters
    ----------
    path
        A GeoTIFF (COG) in any projected CRS.
    z, x, y
        The WebMercatorQuad tile.
    style
        ``hillshade`` (grey shading of heights) or ``depth`` (water depth classes).
    """
    margin = 1 if style == "hillshade" else 0
    values, pixel_m = read_tile(path, z, x, y, margin=margin)
    if values is None:
        return transparent_png()
    rgba = hillshade(values, pixel_m) if style == "hillshade" else depth_colours(values)
    if not rgba[..., 3].any():
        return transparent_png()
    return _png(rgba)


def read_tile(
    path: Path, z: int, x: int, y: int, *, margin: int = 0
) -> tuple[np.ndarray | None, float]:
    """The raster's values over a tile (plus ``margin`` pixels around), NaN where none.

    Returns the array (None when the tile misses the raster) and the ground size of a
    pixel in metres (WebMercator metres shrink by cos(latitude)).
    """
    bounds = TMS.xy_bounds(morecantile.Tile(x, y, z))
    res = (bounds.right - bounds.left) / TILE
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / 2**z))))
    ground = res * math.cos(math.radians(lat))
    with rasterio.open(path) as probe:
        box = transform_bounds(probe.crs, "EPSG:3857", *probe.bounds)
        if box[0] >= bounds.right or box[2] <= bounds.left or box[1] >= bounds.top \
                or box[3] <= bounds.bottom:  # fmt: skip
            return None, ground
        level = _overview_level(probe.overviews(1), probe.res[0], ground)
    size = TILE + 2 * margin
    out = np.full((size, size), np.nan, dtype="float32")
    transform = Affine(res, 0, bounds.left - margin * res, 0, -res, bounds.top + margin * res)
    opened = {"overview_level": level} if level is not None else {}
    with rasterio.open(path, **opened) as src:
        reproject(
            source=rasterio.band(src, 1), destination=out, src_nodata=src.nodata,
            dst_transform=transform, dst_crs="EPSG:3857", dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )  # fmt: skip
    return out, ground


def _overview_level(factors: list[int], native_res: float, wanted: float) -> int | None:
    """The coarsest overview still at least as fine as ``wanted`` (None: the full raster)."""
    level = None
    for index, factor in enumerate(factors):
        if native_res * factor <= wanted:
            level = index
    return level


def hillshade(height: np.ndarray, pixel_m: float, azimuth: float = 315.0,
              altitude: float = 45.0) -> np.ndarray:  # fmt: skip
    """RGBA grey shading of heights with a one-pixel margin (which is cut off).

    Flat ground is mid-light grey; slopes facing the light (north-west) lighter.
    """
    d_row, d_east = np.gradient(height, pixel_m)
    d_north = -d_row  # rows run south
    az, alt = math.radians(azimuth), math.radians(altitude)
    # The unit normal (-dz/de, -dz/dn, 1)/n dotted with the unit vector towards the light.
    towards = math.sin(az) * d_east + math.cos(az) * d_north
    shade = (math.sin(alt) - math.cos(alt) * towards) / np.sqrt(1 + d_east**2 + d_north**2)
    shade = shade[1:-1, 1:-1]
    valid = np.isfinite(shade)
    rgba = np.zeros((*shade.shape, 4), dtype="uint8")
    grey = np.clip(np.nan_to_num(shade) * 255, 0, 255).astype("uint8")
    rgba[..., 0] = rgba[..., 1] = rgba[..., 2] = grey
    rgba[..., 3] = np.where(valid, 255, 0)
    return rgba


def depth_colours(depth: np.ndarray) -> np.ndarray:
    """RGBA of water depth by class (:data:`DEPTH_RAMP`); dry and nodata transparent."""
    rgba = np.zeros((*depth.shape, 4), dtype="uint8")
    wet = np.nan_to_num(depth) >= MIN_DEPTH_M
    for lower, colour in DEPTH_RAMP:
        rgba[wet & (depth >= lower)] = colour
    return rgba


def _png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@cache
def transparent_png() -> bytes:
    """A fully transparent 256-pixel tile."""
    return _png(np.zeros((TILE, TILE, 4), dtype="uint8"))
