"""The domain API's OpenAPI document is valid OpenAPI 3.0 (FastAPI writes 3.1)."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from fastapi import FastAPI, Query
from fastapi.openapi.utils import get_openapi
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from pydantic import BaseModel, Field, StringConstraints, conint

from api.app import create_app
from api.openapi30 import downgrade, install


def _validate_30(doc: dict) -> None:
    validate(doc, cls=OpenAPIV30SpecValidator)


def test_served_document_is_valid_openapi_30(settings):
    with TestClient(create_app(settings)) as client:
        doc = client.get("/api/openapi.json").json()
        docs_page = client.get("/api/docs")
    assert doc["openapi"] == "3.0.3"
    _validate_30(doc)
    assert "/status" in doc["paths"] and "/api/layers" in doc["paths"]
    assert "summary" not in doc["info"]
    assert docs_page.status_code == 200 and "/api/openapi.json" in docs_page.text


def test_fastapi_raw_output_is_not_openapi_30(settings):
    app = create_app(settings)
    raw = get_openapi(title="x", version="1", summary="s", routes=app.routes)
    assert raw["openapi"].startswith("3.1")
    # Even told it is 3.0, the raw document fails: this is why the downgrade exists.
    with pytest.raises(OpenAPIValidationError):
        _validate_30({**raw, "openapi": "3.0.3"})
    _validate_30(downgrade(raw))


def test_the_document_is_built_once(settings):
    app = create_app(settings)
    assert app.openapi() is app.openapi()


class Pipe(BaseModel):
    owner: str | None = None
    kind: Literal["gas"] = "gas"
    diameter_mm: conint(gt=0, lt=5000) = Field(examples=[110, 160])  # type: ignore[valid-type]
    parent: Pipe | None = None
    tags: tuple[str, int] | None = None
    labels: dict[Annotated[str, StringConstraints(pattern="^x-")], str] = {}
    photo: bytes | None = None


def test_a_model_with_optional_literal_bounds_and_examples_validates():
    app = FastAPI()

    @app.post("/pipes")
    def add(pipe: Pipe, depth: Annotated[float | None, Query(gt=0, examples=[1.5])] = None) -> Pipe:
        return pipe

    with pytest.raises(OpenAPIValidationError):
        _validate_30({**app.openapi(), "openapi": "3.0.3"})
    app.openapi_schema = None
    install(app)
    doc = app.openapi()
    _validate_30(doc)
    schema = doc["components"]["schemas"]["Pipe-Input"]["properties"]
    assert schema["owner"] == {"type": "string", "nullable": True, "title": "Owner"}
    assert schema["kind"]["enum"] == ["gas"] and "const" not in schema["kind"]
    diameter = schema["diameter_mm"]
    assert diameter["minimum"] == 0 and diameter["exclusiveMinimum"] is True
    assert diameter["maximum"] == 5000 and diameter["exclusiveMaximum"] is True
    assert diameter["example"] == 110 and "examples" not in diameter
    assert schema["parent"]["nullable"] is True
    assert schema["parent"]["allOf"] == [{"$ref": "#/components/schemas/Pipe-Input"}]
    assert schema["tags"]["nullable"] is True and schema["tags"]["type"] == "array"
    assert schema["labels"]["additionalProperties"] == {"type": "string"}
    depth = doc["paths"]["/pipes"]["post"]["parameters"][0]["schema"]
    assert depth["nullable"] is True and depth["exclusiveMinimum"] is True


REF = {"$ref": "#/components/schemas/A"}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "integer", "nullable": True}),
        ({"oneOf": [{"type": "null"}, {"type": "string", "maxLength": 3}], "title": "T"},
         {"type": "string", "maxLength": 3, "title": "T", "nullable": True}),
        ({"anyOf": [REF, {"type": "null"}], "default": None},
         {"default": None, "nullable": True, "allOf": [REF]}),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
         {"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True}),
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"type": ["string", "integer"]}, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        ({"const": "x"}, {"enum": ["x"]}),
        ({"type": "integer", "examples": [3, 4]}, {"type": "integer", "example": 3}),
        ({"type": "number", "exclusiveMinimum": 0}, {"type": "number", "minimum": 0,
                                                     "exclusiveMinimum": True}),
        ({"type": "number", "exclusiveMaximum": 3.5}, {"type": "number", "maximum": 3.5,
                                                       "exclusiveMaximum": True}),
        ({"type": "string", "contentMediaType": "application/octet-stream"},
         {"type": "string", "format": "binary"}),
        ({"type": "string", "contentEncoding": "base64"}, {"type": "string", "format": "byte"}),
        ({"type": "array", "prefixItems": [{"type": "integer"}]},
         {"type": "array", "items": {"type": "integer"}}),
        ({"type": "array", "prefixItems": [{"type": "integer"}, {"const": 1}]},
         {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"enum": [1]}]}}),
        ({"type": "array"}, {"type": "array", "items": {}}),
        ({"$schema": "x", "type": "object", "propertyNames": {"pattern": "a"}}, {"type": "object"}),
        ({"type": "object", "unevaluatedProperties": False,
          "dependentSchemas": {"a": {"required": ["b"]}}}, {"type": "object"}),
        ({"if": {"type": "string"}, "then": {"minLength": 1}, "else": {}, "title": "I"},
         {"title": "I"}),
        ({"type": "object", "patternProperties": {"^a": {"type": "integer"}}},
         {"type": "object", "additionalProperties": {"type": "integer"}}),
        ({"$ref": "#/components/schemas/A", "description": "d"},
         {"description": "d", "allOf": [REF]}),
        ({"type": "object", "properties": {"p": {"type": ["integer", "null"], "const": 1}},
          "additionalProperties": {"examples": ["v"]}},
         {"type": "object", "properties": {"p": {"type": "integer", "nullable": True,
                                                 "enum": [1]}},
          "additionalProperties": {"example": "v"}}),
        ({"type": "object", "additionalProperties": False, "deprecated": True, "x-geoby": 1},
         {"type": "object", "additionalProperties": False, "deprecated": True, "x-geoby": 1}),
    ],
)  # fmt: skip
def test_downgrade_of_each_31_schema_construct(before, after):
    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
           "components": {"schemas": {"S": before, "A": {"type": "object"}}}}  # fmt: skip
    out = downgrade(doc)
    assert out["components"]["schemas"]["S"] == after
    _validate_30(out)
    assert doc["components"]["schemas"]["S"] == before  # the input is left alone


def test_downgrade_of_the_31_document_fields():
    doc = {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {"title": "t", "version": "1", "summary": "s", "description": "kept",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "webhooks": {"ping": {"post": {"responses": {"200": {"description": "ok"}}}}},
        "paths": {"/a": {
            "parameters": [{"name": "q", "in": "query", "schema": {"const": 1}}],
            "get": {"parameters": [{"name": "n", "in": "query", "examples": [5],
                                    "schema": {"type": ["integer", "null"]}}],
                    "responses": {"200": {"description": "ok", "content": {
                        "application/json": {"schema": {"type": "string", "examples": ["a"]}}},
                        "headers": {"X": {"schema": {"exclusiveMinimum": 1}}}}}}}},
        "components": {"schemas": {}, "pathItems": {"p": {}}},
    }  # fmt: skip
    out = downgrade(doc)
    assert out["openapi"] == "3.0.3"
    assert "webhooks" not in out and "jsonSchemaDialect" not in out
    assert out["info"] == {"title": "t", "version": "1", "description": "kept",
                           "license": {"name": "MIT"}}  # fmt: skip
    assert out["components"] == {"schemas": {}}
    path = out["paths"]["/a"]
    assert path["parameters"][0]["schema"] == {"enum": [1]}
    n = path["get"]["parameters"][0]
    assert n["schema"] == {"type": "integer", "nullable": True} and n["example"] == 5
    response = path["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {"type": "string", "example": "a"}
    assert response["headers"]["X"]["schema"] == {"minimum": 1, "exclusiveMinimum": True}
    _validate_30(out)
    with pytest.raises(OpenAPIValidationError):
        _validate_30({**doc, "openapi": "3.0.3"})
