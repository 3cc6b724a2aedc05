"""The OGC API's OpenAPI 3.0 document: pygeoapi's, made self-contained and valid.

pygeoapi generates the document from the configuration but points many
parameters and responses at the OGC schema server (``schemas.opengis.net``)
and copies provider field lists as ``values`` into parameter schemas. A
client or validator offline cannot resolve the first and rejects the second.
Here every remote reference is replaced by a local definition and ``values``
becomes JSON Schema's ``enum``, so the document validates as OpenAPI 3.0
without network access.

pygeoapi also documents every answer as ``application/json`` and lists
``OPTIONS`` operations geoby does not route (it offers no transactions).
:func:`document` drops those and declares what each operation really answers
(checked by ``tests/reliability/test_contract.py``): GeoJSON for features,
JSON Schema for queryables, CoverageJSON for coverages, Mapbox Vector Tiles for
tiles, and the HTML and JSON-LD variants ``f`` asks for, errors included.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pygeoapi.openapi import get_oas

from api.ogc.config import RECORDS_ID

_JSON = {"application/json": {"schema": {"type": "object"}}}
_GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}}
_RESPONSES: dict[str, dict[str, Any]] = {
    "InvalidParameter": {
        "description": "A query parameter has an invalid value.",
        "content": _JSON,
    },
    "ServerError": {"description": "A server error occurred.", "content": _JSON},
    "NotFound": {"description": "The requested resource does not exist.", "content": _JSON},
    "LandingPage": {"description": "The landing page.", "content": _JSON},
    "Collection": {"description": "Metadata of a collection.", "content": _JSON},
    "Features": {"description": "A page of features.", "content": _GEOJSON},
    "Feature": {"description": "One feature.", "content": _GEOJSON},
}


def _path_parameter(name: str, description: str, schema: dict) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _query_parameter(name: str, description: str, schema: dict) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "style": "form",
        "explode": False,
        "schema": schema,
    }


_PARAMETERS: dict[str, dict[str, Any]] = {
    "featureId": _path_parameter("featureId", "Identifier of a feature.", {"type": "string"}),
    "datetime": _query_parameter(
        "datetime", "An RFC 3339 instant or interval (open ends with '..').", {"type": "string"}
    ),
    "sortby": _query_parameter(
        "sortby",
        "Comma-separated properties, each optionally prefixed by + or -.",
        {"type": "array", "items": {"type": "string"}},
    ),
    "q": _query_parameter(
        "q", "Free-text search terms.", {"type": "array", "items": {"type": "string"}}
    ),
    "tileMatrixSetId": _path_parameter(
        "tileMatrixSetId", "Identifier of a tile matrix set.", {"type": "string"}
    ),
    "tileMatrix": _path_parameter("tileMatrix", "Zoom level.", {"type": "string"}),
    "tileRow": _path_parameter("tileRow", "Row of the tile.", {"type": "integer", "minimum": 0}),
    "tileCol": _path_parameter("tileCol", "Column of the tile.", {"type": "integer", "minimum": 0}),
}


def document(config: dict) -> dict:
    """The OpenAPI 3.0 document of a pygeoapi configuration, self-contained."""
    doc = localize(get_oas(config))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "tiles" in schemas:  # pygeoapi's is a pre-1.0 draft (tileMatrixSetLinks)
        schemas["tiles"] = _TILESETS
    for name, path in doc.get("paths", {}).items():
        path.pop("options", None)  # not routed: geoby's OGC API is read-only
        for operation in path.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = _unique(operation["parameters"])
            if isinstance(operation, dict) and "responses" in operation:
                _declare_media(doc, name, operation)
    return doc


# OGC API - Tiles 1.0, tileSets list (what api.ogc.tiles answers).
_TILESETS = {
    "type": "object",
    "required": ["tilesets"],
    "properties": {
        "links": {"type": "array", "items": {"type": "object"}},
        "tilesets": {"type": "array", "items": {"type": "object"}},
    },
}
_HTML, _JSONLD = "text/html", "application/ld+json"
# Media types of a successful answer, by the path's last segments (first match wins).
_SUCCESS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"/tiles/\{tileMatrixSetId\}/\{tileMatrix\}/\{tileRow\}/\{tileCol\}$"),
     ("application/vnd.mapbox-vector-tile",)),
    (re.compile(r"/coverage$"), ("application/prs.coverage+json",)),
    (re.compile(r"/(queryables|schema)$"), ("application/schema+json", _HTML)),
    (re.compile(rf"^/collections/{RECORDS_ID}/items(/\{{featureId\}})?$"),
     ("application/json", _JSONLD, _HTML)),
    (re.compile(r"/items(/\{featureId\})?$"), ("application/geo+json", _HTML)),
    (re.compile(r"^/openapi$"), ("application/vnd.oai.openapi+json", _HTML)),
    (re.compile(r""), ("application/json", _JSONLD, _HTML)),
)  # fmt: skip
# Errors come in the format ``f`` asked for (JSON when it names none geoby offers); a
# path under /ogc that no route matches gets geoby's own problem details.
_ERRORS = ("application/json", _JSONLD, _HTML, "application/problem+json")


def _declare_media(doc: dict, path: str, operation: dict[str, Any]) -> None:
    """Declare the media types ``operation`` answers with, on each of its responses."""
    success = next(media for pattern, media in _SUCCESS if pattern.search(path))
    responses = operation["responses"]
    for code, response in list(responses.items()):
        if "$ref" in response:  # a shared response: this operation gets its own copy
            name = response["$ref"].rsplit("/", 1)[-1]
            response = responses[code] = copy.deepcopy(doc["components"]["responses"][name])
        if code == "204":
            continue
        content = response.setdefault("content", {})
        for media in success if code.startswith("2") else _ERRORS:
            content.setdefault(media, {"schema": _schema_of(media)})


def _schema_of(media: str) -> dict[str, Any]:
    if media == _HTML:
        return {"type": "string"}
    if media.endswith("json"):
        return {"type": "object"}
    return {"type": "string", "format": "binary"}


def _unique(parameters: list) -> list:
    """Parameters without repeats: a column named like a standard parameter
    (``properties``, ``limit``) is filtered by that parameter, not twice."""
    seen, kept = set(), []
    for parameter in parameters:
        key = (parameter.get("name"), parameter.get("in")) if "name" in parameter else None
        if key is None or key not in seen:
            kept.append(parameter)
            seen.add(key)
    return kept


def localize(node: Any, key: str = "") -> Any:
    """Replace remote ``$ref`` and ``values`` in place; returns ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("http"):
            replacement = _local(ref, key)
            node.clear()
            node.update(replacement)
            return node
        if "values" in node and "type" in node and isinstance(node["values"], list):
            node["enum"] = node.pop("values")
        for name, value in node.items():
            localize(value, name)
    elif isinstance(node, list):
        for value in node:
            localize(value, key)
    return node


def _local(ref: str, key: str) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".json")
    if key == "parameters":
        return dict(
            _PARAMETERS.get(name) or _query_parameter(name, f"See {ref}", {"type": "string"})
        )
    if key.isdigit() or key == "default":
        return dict(
            _RESPONSES.get(name) or {"description": f"{name} (see {ref})", "content": _JSON}
        )
    return {"type": "object", "description": f"See {ref}"}
