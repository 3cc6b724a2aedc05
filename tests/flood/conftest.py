"""Fixtures of the flood tests that need the platform: the sample town in PostGIS.

``flood_town`` loads, through the real pipelines, what a flood scenario reads:
the terrain mosaic (mode replace, so an earlier module's terrain never leaks in),
the IDF table, climate factors and sea-level scenarios, roads and water,
buildings (not the hourly consumption), and the seven owners' networks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipelines import IngestOptions, ingest
from ingest.sample.manifest import read_manifest
from ingest.sample_load import plan
from layers.database import Database, connect
from tests.dig.conftest import reset

FAMILIES = ("terrain", "climate", "water", "energy", "utilities")
SKIPPED = ("consumption_hourly.csv.gz", "temperature_hourly.csv", "rain_10min.csv")


@pytest.fixture(scope="module")
def flood_town(settings, database: Database, town_dir: Path) -> Database:
    """The sample town's terrain, climate, roads, buildings and networks, loaded."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=True)
    finally:
        conn.close()
    load_town(database, town_dir)
    return database


def load_town(database: Database, town_dir: Path) -> None:
    """Terrain (mode replace), climate, water, buildings and networks of the sample town,
    through the real pipelines; the hourly consumption and 10-minute rain are left out."""
    options = IngestOptions(show_progress=False)
    for step in plan(town_dir, read_manifest(town_dir)):
        paths = [p for p in step.paths if p.name not in SKIPPED]
        if step.family not in FAMILIES or not paths:
            continue
        mode = "replace" if step.family == "terrain" else "insert"
        ingest(database, step.family, paths,
               dataclasses.replace(options, owner=step.owner, mode=mode))  # fmt: skip


@pytest.fixture(scope="module")
def flood_client(settings, flood_town: Database) -> Iterator[TestClient]:
    """The whole application on the test database with the sample town."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
