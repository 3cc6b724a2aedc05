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
    """Rewrite an OpenAPI 3.1 document as OpenAPI 3.0.3.

    Parameters
    ----------
    document
        An OpenAPI 3.1 document, as ``FastAPI.openapi()`` returns it. It is not changed.

    Returns
    -------
    dict
        A deep copy with ``openapi: 3.0.3``, every schema rewritten into the
        OpenAPI 3.0 dialect and the 3.1-only top-level fields removed.

    Examples
    --------
    >>> doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
    ...        "components": {"schemas": {"A": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}}
    >>> downgrade(doc)["components"]["schemas"]["A"]
    {'type': 'integer', 'nullable': True}
    """
    doc = copy.deepcopy(document)
    doc["openapi"] = VERSION
    for key in ("webhooks", "jsonSchemaDialect"):
        doc.pop(key, None)
    info = doc.get("info", {})
    info.pop("summary", None)
    info.get("license", {}).pop("identifier", None)
    components = doc.get("components", {})
    components.pop("pathItems", None)
    for name, schema in components.get("schemas", {}).items():
        components["schemas"][name] = _schema(schema)
    for parameter in components.get("parameters", {}).values():
        _with_schema(parameter)
    for header in components.get("headers", {}).values():
        _with_schema(header)
    for body in components.get("requestBodies", {}).values():
        _content(body)
    for response in components.get("responses", {}).values():
        _response(response)
    for path in doc.get("paths", {}).values():
        _path_item(path)
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


def _path_item(path: dict[str, Any]) -> None:
    for key, value in path.items():
        if key == "parameters":
            for parameter in value:
                _with_schema(parameter)
        elif isinstance(value, dict):
            _operation(value)


def _operation(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        _with_schema(parameter)
    _content(operation.get("requestBody", {}))
    for response in operation.get("responses", {}).values():
        _response(response)
    for callback in operation.get("callbacks", {}).values():
        for path in callback.values():
            if isinstance(path, dict):
                _path_item(path)


def _response(response: dict[str, Any]) -> None:
    _content(response)
    for header in response.get("headers", {}).values():
        _with_schema(header)


def _content(node: dict[str, Any]) -> None:
    for media in node.get("content", {}).values():
        _with_schema(media)


def _with_schema(node: dict[str, Any]) -> None:
    """A parameter, header or media type: its schema and its examples."""
    if "schema" in node:
        node["schema"] = _schema(node["schema"])
    _content(node)  # a parameter may carry `content` instead of `schema`
    _examples_of_media(node)


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
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: _schema(v) for k, v in schema["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = _schema(schema[key])
    if "patternProperties" in schema:
        # 3.0 cannot constrain the names: keep only what the values must be.
        values = list(schema.pop("patternProperties").values())
        if isinstance(schema.get("additionalProperties"), dict):
            values.append(schema["additionalProperties"])
        schema["additionalProperties"] = _one_of_any(values)
    if "prefixItems" in schema:
        # 3.0 has no tuples: items may be any of the positional schemas.
        schema["items"] = _one_of_any(schema.pop("prefixItems"))
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
    if schema.get("type") == "array":
        schema.setdefault("items", {})  # required in 3.0
    if "$ref" in schema and len(schema) > 1:
        # 3.0 ignores siblings of $ref: keep them by wrapping the reference.
        ref = schema.pop("$ref")
        schema["allOf"] = [{"$ref": ref}, *schema.get("allOf", [])]
    return schema


def _one_of_any(schemas: list[Any]) -> Any:
    schemas = [_schema(s) for s in schemas]
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


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
