"""Fixtures of the notebook tests: the sample town served on loopback, with tokens.

One package fixture loads, through the real pipelines, what the five notebooks
read: the terrain, climate, roads and water, buildings, the seven owners'
networks (as the flood and web tests load them), the waste bins with their
sensor readings and collections, and a slice of the hourly consumption (the
first buildings' full year; the whole file is 16 M rows, minutes to load)
so that the heat-density grid has values. The app is served by uvicorn on a
free loopback port; a contractor and a planner get tokens.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2 import sql

from dig_coordination.users import add_user, ensure_organisation
from ingest.pipelines import IngestOptions, ingest
from ingest.sample.manifest import read_manifest
from ingest.sample_load import plan
from layers.database import Database, connect
from tests.api.live_server import serve
from tests.dig.conftest import reset

SKIPPED = ("consumption_hourly.csv.gz", "rain_10min.csv")
WASTE_TABLES = ("waste_readings", "waste_collections", "waste_routes", "waste_route_stops")
HOURS = 8760
CONSUMPTION_BUILDINGS = 120


def consumption_slice(town_dir: Path, out: Path, buildings: int = CONSUMPTION_BUILDINGS) -> Path:
    """The first ``buildings`` buildings' full year of the sample's consumption file."""
    path = out / "consumption_hourly.csv.gz"
    with gzip.open(town_dir / "energy" / "consumption_hourly.csv.gz", "rt") as src:
        lines = list(itertools.islice(src, 1 + buildings * HOURS))
    with gzip.open(path, "wt", compresslevel=1) as dst:
        dst.writelines(lines)
    return path


def clear(database: Database) -> None:
    """Empty the dig tables and drop what other packages may have left in the layers."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=True)
        with conn.cursor() as cur:
            for table in WASTE_TABLES:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                    sql.Identifier("data", table)))  # fmt: skip
                cur.execute("DELETE FROM geoby.layers WHERE id = %s", (table,))
    finally:
        conn.close()


def load_town(database: Database, town_dir: Path, consumption: Path) -> None:
    """Every family of the sample town, as ``geoby ingest sample`` loads it, but smaller."""
    options = IngestOptions(show_progress=False)
    for step in plan(town_dir, read_manifest(town_dir)):
        paths = [p for p in step.paths if p.name not in SKIPPED]
        if not paths:
            continue
        mode = "replace" if step.family == "terrain" else "insert"
        ingest(database, step.family, paths,
               dataclasses.replace(options, owner=step.owner, mode=mode))  # fmt: skip
    ingest(database, "energy", [consumption], options)


@pytest.fixture(scope="package")
def notebook_town(settings, database: Database, town_dir: Path, tmp_path_factory) -> Database:
    """The sample town, loaded once for all notebooks."""
    clear(database)
    consumption = consumption_slice(town_dir, tmp_path_factory.mktemp("consumption"))
    load_town(database, town_dir, consumption)
    return database


@pytest.fixture(scope="package")
def tokens(notebook_town: Database) -> dict[str, str]:
    """Bearer tokens of a contractor and a planner, as ``geoby demo`` writes them."""
    found = {}
    with notebook_town.connection("admin") as conn:
        for role, org in (("contractor", "Graveholdet ApS"), ("planner", "Egevig Kommune")):
            ensure_organisation(conn, org)
            found[role] = add_user(conn, org=org, role=role)[1]
    return found


@pytest.fixture(scope="package")
def base_url(settings, notebook_town: Database) -> Iterator[str]:
    """The whole application served by uvicorn on a free loopback port."""
    with serve(settings) as url:
        yield url
