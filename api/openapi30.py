"""Serve FastAPI's OpenAPI document as OpenAPI 3.0.3.

FastAPI (with pydantic 2) writes OpenAPI 3.1, whose schemas are JSON Schema
2020-12: ``anyOf: [X, {type: null}]`` for optional fields, ``const``, lists of
``examples``, numeric ``exclusiveMinimum``. Many clients, code generators and
validators still read 3.0 only and reject or misread those. :func:`downgrade`
rewrites the 3.1 constructs FastAPI emits into their 3.0 equivalents
(``nullable``, ``enum``, ``example``, boolean exclusive bounds), and
:func:`install` makes the app serve the result.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

VERSION = "3.0.3"
# JSON Schema keywords OpenAPI 3.0 does not know (dropped).
_UNKNOWN = (
    "$schema", "$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$defs", "$comment",
    "propertyNames", "unevaluatedProperties", "unevaluatedItems", "dependentSchemas",
    "dependentRequired", "if", "then", "else", "contains", "minContains", "maxContains",
    "contentSchema",
)  # fmt: skip


def downgrade(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI 3.1 document rewritten as OpenAPI 3.0.3."""
    doc = copy.deepcopy(document)
    doc["openapi"] = VERSION
    for key in ("webhooks", "jsonSchemaDialect"):
        doc.pop(key, None)
    info = doc.get("info", {})
    info.pop("summary", None)
    info.get("license", {}).pop("identifier", None)
    doc.get("components", {}).pop("pathItems", None)
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        doc["components"]["schemas"][name] = _schema(schema)
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                _operation(operation)
    return doc


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/api/openapi.json`` and the docs) return 3.0.3."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None or app.openapi_schema.get("openapi") != VERSION:
            app.openapi_schema = None
            app.openapi_schema = downgrade(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if "schema" in parameter:
            parameter["schema"] = _schema(parameter["schema"])
        _examples_of_media(parameter)
    body = operation.get("requestBody", {})
    for media in body.get("content", {}).values():
        _media(media)
    for response in operation.get("responses", {}).values():
        for media in response.get("content", {}).values():
            _media(media)
        for header in response.get("headers", {}).values():
            if "schema" in header:
                header["schema"] = _schema(header["schema"])


def _media(media: dict[str, Any]) -> None:
    if "schema" in media:
        media["schema"] = _schema(media["schema"])
    _examples_of_media(media)


def _examples_of_media(node: dict[str, Any]) -> None:
    # In 3.0 a media type's or parameter's `examples` is a map of Example objects.
    if isinstance(node.get("examples"), list):
        values = node.pop("examples")
        if values:
            node.setdefault("example", values[0])


def _schema(schema: Any) -> Any:
    """One JSON Schema 2020-12 schema as an OpenAPI 3.0 Schema Object."""
    if isinstance(schema, list):
        return [_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {k: v for k, v in schema.items() if k not in _UNKNOWN}
    for key in ("properties", "patternProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = {name: _schema(value) for name, value in schema[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = _schema(schema[key])
    if "prefixItems" in schema:
        items = schema.pop("prefixItems")
        schema.setdefault(
            "items", _schema(items[0]) if len(items) == 1 else {"anyOf": _schema(items)}
        )
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            schema[key] = [_schema(s) for s in schema[key]]
    schema = _nullable(schema)
    if isinstance(schema.get("type"), list):
        kinds = [t for t in schema["type"] if t != "null"]
        if len(kinds) < len(schema["type"]):
            schema["nullable"] = True
        if len(kinds) == 1:
            schema["type"] = kinds[0]
        else:
            del schema["type"]
            schema["anyOf"] = [{"type": t} for t in kinds]
    if schema.get("type") == "null":
        del schema["type"]
        schema["nullable"] = True
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "examples" in schema:
        examples = schema.pop("examples")
        if isinstance(examples, list) and examples:
            schema.setdefault("example", examples[0])
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = schema.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            schema[limit] = value
            schema[bound] = True
    if "contentMediaType" in schema or "contentEncoding" in schema:
        encoding = schema.pop("contentEncoding", None)
        schema.pop("contentMediaType", None)
        schema.setdefault("type", "string")
        schema.setdefault("format", "byte" if encoding == "base64" else "binary")
    if "$ref" in schema and len(schema) > 1:
        # 3.0 ignores siblings of $ref: keep them by wrapping the reference.
        ref = schema.pop("$ref")
        schema["allOf"] = [{"$ref": ref}, *schema.get("allOf", [])]
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf``/``oneOf`` with a ``{type: null}`` member becomes ``nullable``."""
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if not isinstance(options, list):
            continue
        rest = [o for o in options if o != {"type": "null"} and o != {"nullable": True}]
        if len(rest) == len(options):
            continue
        schema.pop(key)
        schema["nullable"] = True
        if len(rest) == 1:
            only = rest[0]
            if "$ref" in only:
                schema["allOf"] = [only]
            else:
                schema = {**only, **schema}
        elif rest:
            schema[key] = rest
    return schema
