"""OGC API - Tiles of geoby's tables: the tile handler and the tileset metadata.

:func:`tile` answers ``/collections/{id}/tiles/{tms}/{z}/{y}/{x}`` (URL order
tileMatrix/tileRow/tileCol) with a Mapbox vector tile built by PostGIS
(:mod:`api.ogc.mvt`: index-driven, numeric SRIDs, a deterministic feature cap,
simplification at low zooms). ``properties=a,b`` selects attributes and
``filter`` (CQL2, as for items) selects features; an unknown parameter or
column is a 400.

An empty tile is a ``200`` with an empty body: MapLibre, OpenLayers and GDAL
all read it as "no features" (a ``204`` is not handled alike by every client).
An address outside the tile matrix set is a ``404`` (OGC 20-057 allows 400 or
404), a malformed one a ``400``; errors are OGC exception JSON.

:class:`GeobyTileProvider` is the pygeoapi plugin behind the tileset list and
the tileset metadata (OGC tileset JSON by default, TileJSON 3.0.0 with
``f=tilejson``, HTML); :func:`tilesets` and :func:`tileset` check the
collection, tile matrix set and format before handing those routes to
pygeoapi.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

import pygeoapi.api.tiles as tiles_api
from psycopg2 import sql
from pygeoapi.api import API, F_HTML, F_JSON, SYSTEM_LOCALE, APIRequest
from pygeoapi.models.provider.base import TileMatrixSetEnum
from pygeoapi.provider.base_mvt import BaseMVTProvider

from api.ogc import context as contexts
from api.ogc import features, mvt
from api.ogc.context import OgcContext
from api.ogc.tables import Table
from layers.crs import CRS84 as CRS84_URI
from layers.errors import GeobyError, InvalidInput, NotFound

log = logging.getLogger(__name__)

MVT = "application/vnd.mapbox-vector-tile"
MIN_ZOOM, MAX_ZOOM = 0, 22
CACHE_CONTROL = "public, max-age=300"
TILE_PARAMS = ("f", "lang", "properties", "filter", "filter-lang", "filter-crs")
METADATA_FORMATS = ("json", "jsonld", "html", "tilejson")
_OGC_CODES = {400: "InvalidParameterValue", 404: "NotFound"}

Response = tuple[dict, int, Any]


# -- handlers -------------------------------------------------------------------


def tile(
    api: API,
    request: APIRequest,
    collection_id: str,
    tms_id: str,
    z: str,
    y: str,
    x: str,
    *,
    context: OgcContext,
) -> Response:
    """``/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}``: one Mapbox vector tile.

    Returns ``(headers, status, content)``: 200 with the tile (an empty body
    when no feature falls in it), 400 for a malformed address or parameter, 404
    for an unknown collection or tile matrix set or an address outside it.
    Errors are JSON whatever the ``Accept`` header says (only ``f`` counts here).

    A tile holds at most :data:`api.ogc.mvt.MAX_FEATURES` features, taken in
    ascending ``fid`` order: where more fall in the tile, those with the highest
    ids are dropped (they appear at higher zooms).
    """
    headers = request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
    try:
        fmt = request.params.get("f")
        if fmt is not None and fmt.lower() not in ("mvt", "pbf"):
            raise InvalidInput(f"format {fmt!r} is not offered for tiles; use mvt", field="f")
        table = _tiled(context, collection_id, api)
        tms = mvt.scheme(tms_id)
        address = mvt.tile_address(tms, z, y, x, _zooms(api, collection_id))
        _check_known(request.params)
        properties = features.parse_properties(table, request.params.get("properties"))
        where = _filter(table, request.params)
        with context.database.connection("read") as conn:
            content = mvt.render(conn, table, tms, *address, properties=properties, where=where)
    except GeobyError as exc:
        error = exc
    else:
        log.debug("tile %s %s %s: %d bytes", collection_id, tms_id, (z, y, x), len(content))
        headers["Content-Type"] = MVT
        headers["Cache-Control"] = CACHE_CONTROL
        return headers, HTTPStatus.OK, content
    # Outside the except block, so pygeoapi logs no traceback for a client's error.
    return _exception(api, headers, error, html=False)


def tilesets(api: API, request: APIRequest, collection_id: str, *, context: OgcContext) -> Response:
    """``/collections/{collection_id}/tiles``: pygeoapi's tileset list, for tiled collections only."""
    headers = request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
    try:
        _tiled(context, collection_id, api)
    except GeobyError as exc:
        error = exc
    else:
        return tiles_api.get_collection_tiles(api, request, collection_id)
    return _exception(api, headers, error, html=request.format == F_HTML)


def tileset(
    api: API, request: APIRequest, collection_id: str, tms_id: str, *, context: OgcContext
) -> Response:
    """``/collections/{collection_id}/tiles/{tms_id}`` (and ``/metadata``): tileset metadata.

    ``f=json`` (default) is OGC tileset metadata, ``f=tilejson`` TileJSON 3.0.0
    (WebMercatorQuad only), ``f=html`` a page.
    """
    headers = request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
    try:
        _tiled(context, collection_id, api)
        tms = mvt.scheme(tms_id)
        fmt = (request.format or F_JSON).lower()
        if fmt not in METADATA_FORMATS:
            raise InvalidInput(
                f"format {request.format!r} is not offered here; use {', '.join(METADATA_FORMATS)}",
                field="f",
            )
        if fmt == "tilejson" and tms.id != "WebMercatorQuad":
            raise InvalidInput("TileJSON describes WebMercatorQuad tiles only", field="f")
    except GeobyError as exc:
        error = exc
    else:
        return tiles_api.get_collection_tiles_metadata(api, request, collection_id, tms.id)
    return _exception(api, headers, error, html=request.format == F_HTML)


def _tiled(context: OgcContext, collection_id: str, api: API | None = None) -> Table:
    """The table of a collection that has vector tiles."""
    table = context.tables.get(collection_id)
    if table is not None and table.geometry_column is not None:
        return table
    if table is not None or (api is not None and collection_id in api.config["resources"]):
        raise NotFound(f"collection {collection_id!r} has no vector tiles")
    raise NotFound(f"collection {collection_id!r} not found")


def _zooms(api: API, collection_id: str) -> tuple[int, int]:
    for provider in api.config["resources"].get(collection_id, {}).get("providers", []):
        if provider.get("type") == "tile":
            zoom = (provider.get("options") or {}).get("zoom", {})
            return int(zoom.get("min", MIN_ZOOM)), int(zoom.get("max", MAX_ZOOM))
    return MIN_ZOOM, MAX_ZOOM


def _check_known(params: Any) -> None:
    unknown = [name for name in params if name not in TILE_PARAMS]
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {', '.join(repr(n) for n in unknown)}; "
            f"accepted for tiles: {', '.join(TILE_PARAMS)}",
            field=unknown[0],
        )


def _filter(table: Table, params: Any) -> tuple[sql.Composable, list] | None:
    """``filter`` (CQL2 text or JSON), parsed exactly as for items."""
    if not any(name in params for name in ("filter", "filter-lang", "filter-crs")):
        return None

    return features.parse_filter(table, dict(params), None)


def _exception(api: API, headers: dict, exc: GeobyError, *, html: bool) -> Response:
    status = exc.status if exc.status in (400, 404, 409, 503) else 500
    if status >= 500:
        log.error("tile request failed: %s", exc)
    headers["Content-Type"] = "text/html" if html else "application/json"
    headers.pop("Cache-Control", None)
    code = _OGC_CODES.get(status, "NoApplicableCode")
    return api.get_exception(status, headers, F_HTML if html else F_JSON, code, exc.detail)


# -- pygeoapi plugin ------------------------------------------------------------


class GeobyTileProvider(BaseMVTProvider):
    """Tileset metadata of one geoby table for pygeoapi; tiles come from :func:`render`.

    Configuration (generated by :mod:`api.ogc.config`)::

        {"type": "tile", "name": "api.ogc.tiles.GeobyTileProvider",
         "data": {"context": KEY, "collection": LAYER_ID},
         "options": {"zoom": {"min": 0, "max": 22}}, "format": {"name": "pbf", ...}}
    """

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        self.context = contexts.lookup(provider_def["data"]["context"])
        self.table = _tiled(self.context, provider_def["data"]["collection"])
        # The tile route takes f=mvt (pygeoapi's name for the format), and so do its links.
        self.format_type = "mvt"
        self.mimetype = MVT
        zoom = (self.options or {}).get("zoom", {})
        self.options = {**(self.options or {}), "zoom": {
            "min": int(zoom.get("min", MIN_ZOOM)), "max": int(zoom.get("max", MAX_ZOOM))}}  # fmt: skip
        self._service_url = ""
        self._service_metadata_url = ""

    def __repr__(self) -> str:
        return f"<GeobyTileProvider> {self.table.layer.id}"

    @property
    def minzoom(self) -> int:
        return self.options["zoom"]["min"]

    @property
    def maxzoom(self) -> int:
        return self.options["zoom"]["max"]

    def get_layer(self) -> str:
        """The MVT layer name: the collection id."""
        return self.table.layer.id

    def get_fields(self) -> dict[str, dict[str, str]]:
        """JSON Schema type (and format) of each attribute in the tiles."""
        fields = {}
        for name, column in self.table.columns.items():
            kind, fmt = column.json_type
            fields[name] = {"type": kind, **({"format": fmt} if fmt else {})}
        return fields

    def get_tiling_schemes(self) -> list:
        """pygeoapi's descriptions of the offered tile matrix sets."""
        return [TileMatrixSetEnum.WEBMERCATORQUAD.value, TileMatrixSetEnum.WORLDCRS84QUAD.value]

    def get_tiles_service(
        self, baseurl=None, servicepath=None, dirpath=None, tile_type=None
    ) -> dict:
        """Links of the tileset list: the tile URL template and the TileJSON."""
        self._service_url = servicepath or ""
        base = self._service_url.split("/{tileMatrixSetId}")[0]
        return {
            "links": [
                {"rel": "item", "type": MVT, "templated": True,
                 "title": f"{self.get_layer()} vector tiles", "href": self._service_url},
                {"rel": "describedby", "type": "application/json", "title": "TileJSON 3.0.0",
                 "href": f"{base}/WebMercatorQuad?f=tilejson"},
            ]
        }  # fmt: skip

    def get_tiles(self, layer=None, tileset=None, z=None, y=None, x=None, format_=None) -> bytes:
        """One tile (pygeoapi's own tile route; geoby routes tiles to :func:`tile`)."""
        tms = mvt.scheme(tileset)
        address = mvt.tile_address(tms, str(z), str(y), str(x), (self.minzoom, self.maxzoom))
        with self.context.database.connection("read") as conn:
            return mvt.render(conn, self.table, tms, *address)

    def get_metadata(self, dataset, server_url, layer=None, tileset=None, metadata_format=None,
                     title=None, description=None, keywords=None, **kwargs) -> dict:  # fmt: skip
        """Tileset metadata as OGC JSON (default), TileJSON or the HTML page's data."""
        fmt = (metadata_format or F_JSON).upper()
        args = (dataset, server_url, layer, tileset, title, description, keywords)
        if fmt == "TILEJSON":
            return self.get_vendor_metadata(*args, **kwargs)
        if fmt == "HTML":
            return self.get_html_metadata(*args, **kwargs)
        return self.get_default_metadata(*args, **kwargs)

    def get_default_metadata(self, dataset, server_url, layer, tileset, title, description,
                             keywords, **kwargs) -> dict:  # fmt: skip
        """OGC API - Tiles tileset metadata (``tileset.yaml``)."""
        tms = mvt.scheme(tileset)
        enum = next(s for s in self.get_tiling_schemes() if s.tileMatrixSet == tms.id)
        urls = _urls(server_url, dataset, tms.id)
        w, s, e, n = self._bounds()
        links = [
            {"rel": "self", "type": "application/json", "title": "This tileset",
             "href": f"{urls['tileset']}?f=json"},
            {"rel": "alternate", "type": "text/html", "title": "This tileset as HTML",
             "href": f"{urls['tileset']}?f=html"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
             "type": "application/json", "title": f"{tms.id} definition",
             "href": f"{server_url}/TileMatrixSets/{tms.id}?f=json"},
            {"rel": "item", "type": MVT, "templated": True, "title": f"{dataset} vector tiles",
             "href": urls["tiles"]},
            {"rel": "collection", "type": "application/json", "title": title or dataset,
             "href": f"{server_url}/collections/{dataset}"},
        ]  # fmt: skip
        if tms.id == "WebMercatorQuad":
            links.append({"rel": "describedby", "type": "application/json",
                          "title": "TileJSON 3.0.0", "href": f"{urls['tileset']}?f=tilejson"})  # fmt: skip
        metadata = {
            "title": title or dataset,
            "description": description or "",
            "keywords": [
                k for k in keywords or [self.table.layer.theme, *self.table.layer.keywords] if k
            ],
            "dataType": "vector",
            "crs": enum.crs,
            "tileMatrixSetURI": enum.tileMatrixSetURI,
            "mediaTypes": [MVT],
            "boundingBox": {"lowerLeft": [w, s], "upperRight": [e, n], "crs": CRS84_URI},
            "layers": [self._layer(dataset, title, description)],
            "links": links,
        }
        if self.table.layer.extent is not None:
            metadata["tileMatrixSetLimits"] = self._limits(tms)
            metadata["centerPoint"] = {"coordinates": [(w + e) / 2, (s + n) / 2], "crs": CRS84_URI,
                                       "tileMatrix": str(self._center_zoom())}  # fmt: skip
        return metadata

    def get_vendor_metadata(self, dataset, server_url, layer, tileset, title, description,
                            keywords, **kwargs) -> dict:  # fmt: skip
        """TileJSON 3.0.0 of the WebMercatorQuad tiles."""
        urls = _urls(server_url, dataset, "WebMercatorQuad")
        w, s, e, n = self._bounds()
        template = urls["tiles"].replace("{tileMatrix}/{tileRow}/{tileCol}", "{z}/{y}/{x}")
        document = {
            "tilejson": "3.0.0",
            "name": title or dataset,
            "description": description or "",
            "version": "1.0.0",
            "scheme": "xyz",
            "tiles": [template],
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "bounds": [w, s, e, n],
            "center": [(w + e) / 2, (s + n) / 2, self._center_zoom()],
            "vector_layers": [{
                "id": dataset, "description": description or title or dataset,
                "minzoom": self.minzoom, "maxzoom": self.maxzoom,
                "fields": {name: _TILEJSON_TYPES.get(f["type"], "String")
                           for name, f in self.get_fields().items()},
            }],
        }  # fmt: skip
        if self.table.layer.attribution:
            document["attribution"] = self.table.layer.attribution
        return document

    def get_html_metadata(self, dataset, server_url, layer, tileset, title, description,
                          keywords, **kwargs) -> dict:  # fmt: skip
        """What pygeoapi's ``collections/tiles/metadata.html`` shows."""
        urls = _urls(server_url, dataset, tileset)
        page = {"id": dataset, "title": title or dataset, "tileset": tileset,
                "collections_path": urls["tiles"], "json_url": f"{urls['tileset']}?f=json",
                "metadata": {"minzoom": self.minzoom, "maxzoom": self.maxzoom,
                             "bounds": list(self._bounds())}}  # fmt: skip
        if tileset == "WebMercatorQuad":
            page["tilejson_url"] = f"{urls['tileset']}?f=tilejson"
        return page

    def _bounds(self) -> tuple[float, float, float, float]:
        if self.table.layer.extent is None:
            return (-180.0, -90.0, 180.0, 90.0)
        box = mvt.extent_in(0, tuple(self.table.layer.extent))
        return tuple(round(v, 7) for v in box)  # type: ignore[return-value]

    def _center_zoom(self) -> int:
        w, _, e, _ = self._bounds()
        fit = int(math.floor(math.log2(360.0 / max(e - w, 1e-6))))
        return max(self.minzoom, min(self.maxzoom, fit))

    def _limits(self, tms: mvt.Scheme) -> list[dict]:
        w, s, e, n = self._bounds()
        grid, limits = tms.grid, []
        for z in range(self.minzoom, self.maxzoom + 1):
            first, last = grid.tile(w, n, z), grid.tile(e, s, z)
            matrix = grid.matrix(z)
            limits.append({
                "tileMatrix": str(z),
                "minTileRow": max(0, first.y), "maxTileRow": min(matrix.matrixHeight - 1, last.y),
                "minTileCol": max(0, first.x), "maxTileCol": min(matrix.matrixWidth - 1, last.x),
            })  # fmt: skip
        return limits

    def _layer(self, dataset: str, title: str | None, description: str | None) -> dict:
        kind = (self.table.geometry_type or "").lower().removeprefix("multi")
        layer = {
            "id": dataset,
            "title": title or dataset,
            "description": description or "",
            "dataType": "vector",
            "minTileMatrix": str(self.minzoom),
            "maxTileMatrix": str(self.maxzoom),
            "propertiesSchema": {"type": "object", "properties": self.get_fields()},
        }
        if kind in _DIMENSIONS:
            layer["geometryDimension"] = _DIMENSIONS[kind]
        return layer


_DIMENSIONS = {"point": 0, "linestring": 1, "line": 1, "polygon": 2}
_TILEJSON_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}


def _urls(server_url: str, dataset: str, tms_id: str) -> dict[str, str]:
    tileset_url = f"{server_url}/collections/{dataset}/tiles/{tms_id}"
    return {
        "tileset": tileset_url,
        "tiles": f"{tileset_url}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt",
    }
