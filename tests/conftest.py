"""Shared fixtures: a real PostGIS database built from the migrations.

The suite runs against geoby's private cluster (``geoby db up``, started by
``make test``) or, when ``GEOBY_DATABASE_URL`` is set, that server. The test
database ``geoby_test`` is dropped and rebuilt from the migrations once per
session. Nothing is mocked; when PostgreSQL or PostGIS is missing the fixtures
raise and the tests fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from layers.database import Database, cluster_for, connect
from layers.migrate import migrate
from layers.settings import BrokerSettings, DatabaseSettings, NotifySettings, Settings

ROOT = Path(__file__).resolve().parents[1]
# Concurrent suites on one cluster use their own database: GEOBY_TEST_DATABASE=geoby_test_x
TEST_DB = os.environ.get("GEOBY_TEST_DATABASE", "geoby_test")


def _test_settings() -> Settings:
    database = DatabaseSettings(name=TEST_DB, cluster_dir=ROOT / "var" / "pg")
    # Tests deliver notifications themselves (dig_coordination.notify.deliver_due).
    # The waste tests start their own broker and subscriber.
    return Settings(environment="test", database=database, data_dir=ROOT / "var" / "test-data",
                    notify=NotifySettings(worker_in_app=False),
                    broker=BrokerSettings(subscribe_in_app=False))  # fmt: skip


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings pointing at the freshly migrated test database."""
    settings = _test_settings()
    if settings.database.url is None:
        cluster = cluster_for(settings)
        cluster.up()
        conn = connect(cluster.superuser_dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (TEST_DB,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEST_DB)))
        conn.close()
    migrate(settings)
    return settings


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    """Pools for the three roles on the test database."""
    db = Database(settings)
    yield db
    db.close()


@pytest.fixture
def owner_conn(settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    """A superuser connection for set-up and inspection, closed after the test."""
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    yield conn
    conn.close()


SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real third-party files in ../shared/data (never copied into the repo).

    CI always has them; a missing folder fails the tests that need it.
    """
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real test data is missing: {SHARED_DATA} (see shared/data/SOURCES.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def town_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample town (small, seed 42), shared by the test packages."""
    from ingest.sample import generate

    out = tmp_path_factory.mktemp("town") / "egevig"
    generate(out, size="small", seed=42, progress=False)
    return out
