"""Fixtures of the dig-coordinator tests: the sample town's networks in PostGIS.

The sample town (seed 42) is generated once per session; each test module
that asks for ``town`` starts from empty dig tables and the seven owners' LER
GML networks freshly loaded (tests of other packages drop the utilities
tables, so a module never relies on what an earlier one left).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg2 import sql

from api.app import create_app
from dig_coordination.users import Principal, add_user, ensure_organisation
from ingest.pipelines import IngestOptions, ingest
from layers.database import Database

UTILITY_LAYERS = ("utilities_lines", "utilities_points", "utilities_areas",
                  "utilities_interest_areas", "utilities_dig_areas")  # fmt: skip
DIG_TABLES = ("geoby.outbox_attempts", "geoby.outbox", "geoby.audit_log", "geoby.damage_reports",
              "geoby.dig_links", "restricted.dig_conflicts", "geoby.dig_owner_responses",
              "geoby.dig_requests", "geoby.tokens", "geoby.users", "geoby.organisations")  # fmt: skip
KLIC = "klic-imkl2/Levering_22C001967_3.zip"


def reset(conn, *, drop_utilities: bool) -> None:
    """Empty the dig tables (and drop the utilities layers when asked)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.SQL(t) for t in DIG_TABLES)
            )
        )
        cur.execute("DELETE FROM geoby.precaution_rules WHERE owner IS NOT NULL")
        if drop_utilities:
            for layer_id in UTILITY_LAYERS:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                    sql.Identifier("restricted", layer_id)))  # fmt: skip
                cur.execute("DELETE FROM geoby.load_rejects WHERE layer_id = %s", (layer_id,))
                cur.execute("DELETE FROM geoby.layers WHERE id = %s", (layer_id,))


def reset_database(database: Database, *, drop_utilities: bool) -> None:
    """:func:`reset` over a superuser connection of ``database``'s own."""
    from layers.database import connect

    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=drop_utilities)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def town(settings, database: Database, town_dir: Path, shared_data: Path) -> Database:
    """The sample town's seven owners (LER GML) and the real KLIC delivery, loaded."""
    from layers.database import connect

    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=True)
    finally:
        conn.close()
    files = sorted((town_dir / "utilities").glob("*.gml")) + [shared_data / KLIC]
    ingest(database, "utilities", files, IngestOptions(show_progress=False))
    return database


@pytest.fixture(scope="module")
def make_user(town: Database) -> Callable[..., tuple[Principal, str]]:
    """``make_user(org, role, **org_fields)`` -> (principal, token)."""

    def make(org: str, role: str, **org_fields) -> tuple[Principal, str]:
        name = org_fields.pop("name", None)
        with town.connection("admin") as conn:
            ensure_organisation(conn, org, **org_fields)
            return add_user(conn, org=org, role=role, name=name)

    return make


@pytest.fixture(scope="module")
def client(settings, town: Database) -> Iterator[TestClient]:
    """The whole application on the test database."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
