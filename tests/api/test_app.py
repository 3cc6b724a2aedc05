"""The FastAPI application against the real test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers import catalog
from layers.catalog import Layer
from layers.settings import DatabaseSettings, Settings


@pytest.fixture(scope="module")
def client(settings, database, request):
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id LIKE 'app\\_%'")
        cur.execute("DROP TABLE IF EXISTS data.app_lakes")
        cur.execute("CREATE TABLE data.app_lakes (id int, geom geometry(Polygon, 25832))")
        catalog.register(conn, Layer(
            id="app_lakes", title="Lakes & <ponds>", theme="water", kind="vector",
            table_schema="data", table_name="app_lakes", row_count=1234,
        ))  # fmt: skip
        catalog.register(conn, Layer(
            id="app_gas", title="Gas mains", theme="utilities", kind="vector",
            table_schema="restricted", table_name="app_gas", access="restricted",
        ))  # fmt: skip
    app = create_app(settings)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("connect to postgresql://geoby:hunter2@db failed")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    # The hand-made layers are not pipeline layers (no fid, no table for app_gas): later
    # modules serving every catalog layer must not find them.
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id LIKE 'app\\_%'")
        cur.execute("DROP TABLE IF EXISTS data.app_lakes")


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_status_reports_the_database(client):
    body = client.get("/status").json()
    assert body["status"] == "ok"
    db = body["components"]["database"]
    assert db["status"] == "ok"
    assert db["postgis"].startswith("3.")
    assert db["layers"] >= 2
    assert body["components"]["broker"]["status"] == "not_configured"


def test_root_serves_the_map_application(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'id="map"' in html and 'lang="en"' in html and 'name="viewport"' in html
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_api_layers_hides_restricted(client):
    ids = [layer["id"] for layer in client.get("/api/layers").json()]
    assert "app_lakes" in ids and "app_gas" not in ids


def test_unknown_path_is_problem_json(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"


def test_internal_error_leaks_nothing(client):
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in response.text and "postgresql" not in response.text


def test_openapi_is_served(client):
    spec = client.get("/api/openapi.json").json()
    assert "/status" in spec["paths"] and "/api/layers" in spec["paths"]
    assert client.get("/api/docs").status_code == 200


def test_status_when_database_is_down():
    settings = Settings(database=DatabaseSettings(url="postgresql://u:pw@127.0.0.1:1/x"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        body = c.get("/status").json()
        layers = c.get("/api/layers")
    assert body["status"] == "down"
    assert body["components"]["database"]["status"] == "down"
    assert layers.status_code == 503
    assert layers.json()["title"] == "Database unavailable"
    assert "pw@" not in layers.text
