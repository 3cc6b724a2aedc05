"""The domain API's OpenAPI document is valid OpenAPI 3.0 (FastAPI writes 3.1)."""

from __future__ import annotations

from typing import Literal

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV30SpecValidator
from pydantic import BaseModel, Field

from api.app import create_app
from api.openapi30 import downgrade, install


def _valid_30(doc: dict) -> list[str]:
    return [e.message for e in OpenAPIV30SpecValidator(doc).iter_errors()]


def test_served_document_is_valid_openapi_30(settings):
    with TestClient(create_app(settings)) as client:
        doc = client.get("/api/openapi.json").json()
        docs_page = client.get("/api/docs")
    assert doc["openapi"] == "3.0.3"
    assert _valid_30(doc) == []
    assert "/status" in doc["paths"] and "/api/layers" in doc["paths"]
    assert docs_page.status_code == 200


def test_fastapi_raw_output_is_not_openapi_30(settings):
    app = create_app(settings)
    raw = get_openapi(title="x", version="1", routes=app.routes)
    assert raw["openapi"].startswith("3.1")
    assert _valid_30({**raw, "openapi": "3.0.3"}) != []  # why the downgrade exists


class Pipe(BaseModel):
    owner: str | None = None
    kind: Literal["gas"] = "gas"
    diameter_mm: int = Field(gt=0, lt=5000, examples=[110, 160])
    parent: Pipe | None = None
    tags: tuple[str, int] | None = None


def test_a_model_with_optional_literal_bounds_and_examples_validates():
    app = FastAPI()

    @app.post("/pipes")
    def add(pipe: Pipe) -> Pipe | None:
        return pipe

    install(app)
    doc = app.openapi()
    assert _valid_30(doc) == []
    schema = doc["components"]["schemas"]["Pipe-Input"]["properties"]
    assert schema["owner"] == {"type": "string", "nullable": True, "title": "Owner"}
    assert schema["kind"]["enum"] == ["gas"]
    assert (
        schema["diameter_mm"]["minimum"] == 0 and schema["diameter_mm"]["exclusiveMinimum"] is True
    )
    assert schema["diameter_mm"]["example"] == 110
    assert schema["parent"]["nullable"] is True
    assert schema["parent"]["allOf"] == [{"$ref": "#/components/schemas/Pipe-Input"}]
    assert schema["tags"]["nullable"] is True and schema["tags"]["type"] == "array"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "integer", "nullable": True}),
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"const": "x"}, {"enum": ["x"]}),
        ({"type": "number", "exclusiveMaximum": 3}, {"type": "number", "maximum": 3,
                                                      "exclusiveMaximum": True}),
        ({"type": "string", "contentMediaType": "application/octet-stream"},
         {"type": "string", "format": "binary"}),
        ({"type": "array", "prefixItems": [{"type": "integer"}]},
         {"type": "array", "items": {"type": "integer"}}),
        ({"$schema": "x", "type": "object", "propertyNames": {"pattern": "a"}}, {"type": "object"}),
        ({"$ref": "#/components/schemas/A", "description": "d"},
         {"description": "d", "allOf": [{"$ref": "#/components/schemas/A"}]}),
    ],
)  # fmt: skip
def test_downgrade_of_each_31_construct(before, after):
    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1", "summary": "s"},
           "paths": {}, "components": {"schemas": {"S": before}}, "webhooks": {}}  # fmt: skip
    out = downgrade(doc)
    assert out["components"]["schemas"]["S"] == after
    assert out["openapi"] == "3.0.3" and "webhooks" not in out and "summary" not in out["info"]
    assert doc["openapi"] == "3.1.0"  # the input is left alone
