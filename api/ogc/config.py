"""pygeoapi's configuration, generated from the layer catalog.

No YAML is kept by hand: every open table layer becomes a feature collection
(with vector tiles), every open raster a coverage, the catalog itself a
record collection, and the registered processes are listed. Restricted
layers (buried infrastructure) are never published here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from api.ogc import tables
from api.ogc.context import OgcContext
from layers import catalog
from layers.crs import CRS84, OUTPUT_EPSG, STORAGE_EPSG, crs_uri, transformer

log = logging.getLogger(__name__)

RECORDS_ID = "catalog"
CRS_LIST = [crs_uri(epsg) for epsg in OUTPUT_EPSG]
STORAGE_CRS = crs_uri(STORAGE_EPSG)
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
# Plugins other modules register: extra resources (processes) keyed by id.
EXTRA_RESOURCES: dict[str, dict[str, Any]] = {}


def base_url(context: OgcContext) -> str:
    """The public URL of the OGC API root (``.../ogc``)."""
    api = context.settings.api
    root = api.public_url or f"http://{api.host}:{api.port}"
    return root.rstrip("/") + "/ogc"


def build(conn: Connection, context: OgcContext) -> dict[str, Any]:
    """The pygeoapi configuration of the open catalog; fills ``context.tables``."""
    layers = catalog.list_layers(conn, access="open")
    town = _union_extent([layer.extent for layer in layers if layer.extent])
    resources: dict[str, Any] = {}
    context.tables.clear()
    for layer in layers:
        if layer.kind == "raster":
            resource = _coverage(layer, town, context)
            if resource:
                resources[layer.id] = resource
            continue
        table = tables.describe(conn, layer)
        context.tables[layer.id] = table
        resources[layer.id] = _collection(conn, context, table, town)
    resources[RECORDS_ID] = _records(context, town)
    resources.update(EXTRA_RESOURCES)
    settings = context.settings
    return {
        "server": {
            "bind": {"host": settings.api.host, "port": settings.api.port},
            "url": base_url(context),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": DEFAULT_LIMIT, "max_items": MAX_LIMIT},
            "map": {"url": "", "attribution": ""},
            "manager": {
                "name": "api.ogc.jobs.PostGISManager",
                "connection": context.key,
                "output_dir": str(settings.data_dir / "jobs"),
            },
        },
        "logging": {"level": "WARNING"},
        "metadata": {
            "identification": {
                "title": f"{settings.api.title} OGC API",
                "description": (
                    "Open terrain, climate, water, energy and waste data of the municipality, "
                    "served from PostGIS in EPSG:25832 and on request in CRS84, EPSG:4326 "
                    "or EPSG:3857."
                ),
                "keywords": ["geoby", "smart city", "terrain", "climate", "water", "energy"],
                "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": "https://github.com/geoby/geoby",
            },
            "license": {"name": "Per layer; see each collection", "url": ""},
            "provider": {"name": "geoby", "url": "https://github.com/geoby/geoby"},
            "contact": {"name": "geoby operators", "role": "pointOfContact"},
        },
        "resources": resources,
    }


def _collection(conn: Connection, context: OgcContext, table: tables.Table, town) -> dict:
    layer = table.layer
    bbox = _crs84_bbox(layer.extent or town)
    extents: dict[str, Any] = {"spatial": {"bbox": bbox, "crs": CRS84}}
    interval = _temporal_extent(conn, table)
    if interval:
        extents["temporal"] = {"begin": interval[0], "end": interval[1]}
    providers: list[dict[str, Any]] = [
        {
            "type": "feature",
            "name": "api.ogc.provider.GeobyProvider",
            "data": {"context": context.key, "collection": layer.id},
            "id_field": "fid",
            "time_field": table.time_field,
            "title_field": table.title_field,
            "storage_crs": STORAGE_CRS,
            "crs": CRS_LIST,
        }
    ]
    if table.geometry_column:
        providers.append(
            {
                "type": "tile",
                "name": "api.ogc.tiles.GeobyTileProvider",
                "data": {"context": context.key, "collection": layer.id},
                "options": {"zoom": {"min": 0, "max": 22}},
                "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"},
            }
        )
    return {
        "type": "collection",
        "title": layer.title,
        "description": layer.description or layer.title,
        "keywords": [layer.theme, *layer.keywords],
        "links": _licence_links(layer),
        "extents": extents,
        "providers": providers,
    }


def _coverage(layer: catalog.Layer, town, context: OgcContext) -> dict | None:
    if not layer.raster_path:
        return None
    path = Path(layer.raster_path)
    if not path.is_absolute():
        path = context.settings.data_dir / path
    if not path.is_file():
        log.warning("raster layer %s: %s is missing; not published", layer.id, path)
        return None
    return {
        "type": "collection",
        "title": layer.title,
        "description": layer.description or layer.title,
        "keywords": [layer.theme, *layer.keywords],
        "links": _licence_links(layer),
        "extents": {"spatial": {"bbox": _crs84_bbox(layer.extent or town), "crs": CRS84}},
        "providers": [
            {
                "type": "coverage",
                "name": "rasterio",
                "data": str(path),
                "format": {"name": "GTiff", "mimetype": "application/x-geotiff"},
            }
        ],
    }


def _records(context: OgcContext, town) -> dict:
    return {
        "type": "collection",
        "title": "Layer catalog",
        "description": "Every open dataset geoby holds, as searchable records.",
        "keywords": ["catalog", "metadata"],
        "links": [],
        "extents": {"spatial": {"bbox": _crs84_bbox(town), "crs": CRS84}},
        "providers": [
            {
                "type": "record",
                "name": "api.ogc.records.CatalogRecords",
                "data": {"context": context.key},
                "id_field": "id",
                "time_field": "updated",
                "title_field": "title",
            }
        ],
    }


def _licence_links(layer: catalog.Layer) -> list[dict]:
    if not layer.licence or not layer.licence.startswith("http"):
        return []
    return [{"type": "text/html", "rel": "license", "title": layer.licence, "href": layer.licence}]


def _crs84_bbox(extent) -> list[float]:
    if not extent:
        return [-180.0, -90.0, 180.0, 90.0]
    x1, y1, x2, y2 = transformer(STORAGE_EPSG, 0).transform_bounds(*extent, densify_pts=21)
    return [round(x1, 7), round(y1, 7), round(x2, 7), round(y2, 7)]


def _union_extent(extents) -> tuple[float, float, float, float] | None:
    extents = list(extents)
    if not extents:
        return None
    return (
        min(e[0] for e in extents),
        min(e[1] for e in extents),
        max(e[2] for e in extents),
        max(e[3] for e in extents),
    )


def _temporal_extent(conn: Connection, table: tables.Table) -> tuple[str, str] | None:
    if not table.time_start:
        return None
    first = sql.Identifier(table.time_start)
    last = sql.Identifier(table.time_end or table.time_start)
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT temporal_extent")
        try:
            cur.execute("SET LOCAL statement_timeout = '3s'")
            cur.execute(
                sql.SQL("SELECT min({})::text, max({})::text FROM {}").format(
                    first, last, table.identifier
                )
            )
            begin, end = cur.fetchone()
            cur.execute("RELEASE SAVEPOINT temporal_extent")
        except Exception as exc:  # noqa: BLE001 - a slow table just has no temporal extent
            cur.execute("ROLLBACK TO SAVEPOINT temporal_extent")
            log.info("no temporal extent for %s: %s", table.layer.id, exc)
            return None
    if begin is None:
        return None
    return begin.replace(" ", "T"), end.replace(" ", "T")
