"""Operations: request ids, JSON logs, Prometheus metrics and ``/status`` per layer.

Real app, real database (the sample town loaded through the real pipelines),
real log records captured by a handler with geoby's JSON formatter. Nothing
is added to the app for the tests: the 5xx case uses a real fault (the
database unreachable).
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.observability import JsonFormatter
from layers.database import Database, connect
from layers.settings import DatabaseSettings, Settings
from tests.dig.conftest import reset_database
from tests.flood.conftest import load_town
from tests.reliability.record import record, scale

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def town_settings(settings: Settings, town_dir: Path, tmp_path_factory) -> Settings:
    """The test database with the sample town, its rasters in a data directory of its own."""
    town = settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("ops") / "data"})
    database = Database(town)
    reset_database(database, drop_utilities=True)
    try:
        load_town(database, town_dir)
    finally:
        database.close()
    return town


@pytest.fixture(scope="module")
def client(town_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(town_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log record at INFO and above, as geoby's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Another test in the session may have configured logging with disable_existing_loggers
    # (logging.config.fileConfig's default); the loggers under test are switched back on.
    watched = [logging.getLogger(name) for name in ("api", "api.problems", "geoby", "geoby.access")]
    before = [(logger.disabled, logger.level) for logger in watched]
    for logger in watched:
        logger.disabled = False
        logger.setLevel(logging.NOTSET)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for logger, (disabled, lvl) in zip(watched, before, strict=True):
            logger.disabled, logger.level = disabled, lvl


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def metrics(client: TestClient) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def test_request_ids_are_echoed_or_generated(client):
    cases = {
        "abc-123.X_y": "abc-123.X_y",
        "a" * 64: "a" * 64,
        "a" * 65: None,  # too long
        "has space": None,
        "evil\u00e9": None,
        "x;drop": None,
        "": None,
    }
    failures = []
    for sent, expected in cases.items():
        response = client.get("/healthz", headers={"X-Request-ID": sent.encode("latin-1")})
        got = response.headers.get("x-request-id", "")
        if (expected is not None and got != expected) or (
            expected is None and not HEX32.fullmatch(got)
        ):
            failures.append((sent, got))
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(20)}
    if len(ids) != 20 or not all(HEX32.fullmatch(i) for i in ids):
        failures.append(("generated", sorted(ids)[:3]))
    record("operations", "request_id", cases=len(cases) + 20, failures=len(failures))
    assert not failures, failures


def test_json_log_lines_carry_the_request_id_and_no_secrets(client, json_log):
    rid = "ops-test-" + secrets.token_hex(4)
    response = client.get(
        "/api/dig-requests/no-such-request?access_token=topsecret1",
        headers={"X-Request-ID": rid, "Authorization": "Bearer topsecret2"},
    )
    assert response.status_code in (401, 403, 404)
    assert response.headers["x-request-id"] == rid
    records = lines(json_log)
    mine = [r for r in records if r.get("request_id") == rid]
    access = [r for r in mine if r["logger"] == "geoby.access"]
    assert len(access) == 1, records
    line = access[0]
    assert line["route"] == "/api/dig-requests/{request_id}"
    assert line["path"] == "/api/dig-requests/no-such-request"
    assert line["status"] == response.status_code and line["duration_ms"] >= 0
    assert line["method"] == "GET" and line["ts"].endswith("+00:00") and line["level"] == "INFO"
    # the error handler's own record, written while serving the request, carries the id too
    assert any(r["logger"] == "api.problems" for r in mine), mine
    # the server's records only: the test client (httpx) logs the URL it requested
    text = "\n".join(json.dumps(r) for r in records if not r["logger"].startswith("httpx"))
    assert "topsecret1" not in text and "topsecret2" not in text
    record("operations", "json_logs", cases=len(mine), failures=0)


def test_the_json_formatter_keeps_a_traceback_on_one_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("geoby.test.ops")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("failed %s", "here", exc_info=True, extra={"layer": "x"})
    finally:
        logger.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["message"] == "failed here" and doc["layer"] == "x" and doc["request_id"] is None
    assert "ValueError: boom" in doc["exc"] and "Traceback" in doc["exc"]


def test_metrics_count_requests_with_bounded_labels(client):
    n = scale(10, 50)
    for _ in range(n):
        assert client.get("/healthz").status_code == 200
    randoms = [secrets.token_hex(8) for _ in range(scale(50, 200))]
    for token in randoms:
        client.get(f"/api/dig-requests/{token}")
        client.get(f"/ogc/collections/{token}/items")
        client.get(f"/no/such/{token}")
        client.get(f"/ogc/{token}")
    client.request("BREW", "/healthz")
    found = metrics(client)
    text = client.get("/metrics").text
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in found["geoby_http_requests"] if s.name == "geoby_http_requests_total"
    }  # fmt: skip
    routes = {route for _, route, _ in counts}
    failures = []
    if counts.get(("GET", "/healthz", "200"), 0) < n:
        failures.append(f"healthz counted {counts.get(('GET', '/healthz', '200'))} < {n}")
    for expected in ("/api/dig-requests/{request_id}", "/ogc/collections/{collection_id}/items",
                     "unmatched"):  # fmt: skip
        if expected not in routes:
            failures.append(f"no route label {expected}")
    leaked = [t for t in randoms if t in text]
    failures += [f"raw id {t} in /metrics" for t in leaked[:3]]
    if any(method not in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
           for method, _, _ in counts):  # fmt: skip
        failures.append("unbounded method label")
    hist = {s.labels["route"]: s.value for s in found["geoby_http_request_duration_seconds"]
            if s.name.endswith("_count") and s.labels["method"] == "GET"}  # fmt: skip
    if hist.get("/healthz", 0) < n:
        failures.append(f"histogram count for /healthz is {hist.get('/healthz')}")
    bound = len(client.app.routes) + 40  # the app's routes, the OGC routes, unmatched
    if len(routes) > bound:
        failures.append(f"{len(routes)} route labels")
    record("operations", "metrics_labels", cases=4 * len(randoms) + n + 1,
           failures=len(failures), route_labels=len(routes), series=len(counts))  # fmt: skip
    assert not failures, failures
    assert "geoby_database_up" in found and found["geoby_database_up"][0].value == 1
    assert "geoby_notification_outbox" in found and "geoby_ogc_jobs" in found
    assert any(s.labels["state"] == "in_use" for s in found["geoby_db_pool_connections"])


def test_status_lists_every_ingested_layer(client, town_settings):
    conn = connect(Database(town_settings).dsn("owner"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT l.id, l.access, max(s.loaded_at) FROM geoby.layers l"
                " JOIN geoby.layer_sources s ON s.layer_id = l.id GROUP BY l.id, l.access"
            )
            loaded = {i: (access, at) for i, access, at in cur.fetchall()}
    finally:
        conn.close()
    doc = client.get("/status").json()
    listed = {layer["id"]: layer for layer in doc["layers"]}
    failures = []
    for layer_id, (access, at) in loaded.items():
        if access == "restricted":
            if layer_id in listed or layer_id in json.dumps(doc):
                failures.append(f"restricted {layer_id} named on the public status")
        elif layer_id not in listed or listed[layer_id]["last_loaded_at"] != at.isoformat():
            failures.append(f"{layer_id}: {listed.get(layer_id)} vs {at}")
    ingest = doc["components"]["ingest"]
    restricted = sum(1 for access, _ in loaded.values() if access == "restricted")
    if ingest["restricted_layers"] < restricted or ingest["status"] != "ok":
        failures.append(f"ingest component {ingest}")
    latest = max(at for _, at in loaded.values()).isoformat()
    if latest not in (ingest["last_ingest"], ingest["restricted_last_ingest"]):
        failures.append(f"last ingest {ingest['last_ingest']} vs {latest}")
    record("operations", "status_layers", cases=len(loaded) + 1, failures=len(failures),
           layers=len(loaded), restricted=restricted)  # fmt: skip
    assert not failures, failures
    assert restricted > 0 and len(loaded) - restricted > 0
    assert doc["components"]["jobs"]["status"] == "ok"
    assert {"database", "broker", "notifications"} <= doc["components"].keys()
    text = json.dumps(doc)
    assert "password" not in text and "SELECT" not in text and "host=" not in text


def test_a_5xx_carries_its_request_id_and_is_counted(json_log):
    """The database unreachable: 503 with the id, counted under the route, logged as ERROR."""
    settings = Settings(database=DatabaseSettings(url="postgresql://u:pw@127.0.0.1:1/x"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        response = c.get("/api/layers", headers={"X-Request-ID": "down-1"})
        status = c.get("/status").json()
        found = metrics(c)
    assert response.status_code == 503 and response.headers["x-request-id"] == "down-1"
    counted = [s for s in found["geoby_http_requests"] if s.name == "geoby_http_requests_total"
               and s.labels["route"] == "/api/layers" and s.labels["status"] == "503"]  # fmt: skip
    assert counted and counted[0].value == 1
    assert found["geoby_database_up"][0].value == 0
    assert status["components"]["ingest"]["status"] == "down"
    errors = [r for r in lines(json_log) if r.get("request_id") == "down-1"]
    assert any(r["logger"] == "geoby.access" and r["level"] == "ERROR" for r in errors), errors
    assert "pw@" not in json_log.getvalue()
    record("operations", "server_error_request_id", cases=1, failures=0)
