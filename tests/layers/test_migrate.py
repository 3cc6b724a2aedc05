"""Migrations and roles on the real test database."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from layers.database import connect
from layers.errors import Conflict, DatabaseError, DatabaseUnavailable, MigrationError
from layers.migrate import applied, available, migrate


def test_all_migrations_recorded_and_rerun_is_a_no_op(settings, owner_conn):
    versions = [m.version for m in available()]
    assert versions == sorted(versions) and versions[0] == 1
    recorded = applied(owner_conn)
    assert sorted(recorded) == versions
    assert migrate(settings) == []
    assert applied(owner_conn) == recorded


def test_changed_applied_migration_is_refused(settings, tmp_path: Path):
    for m in available():
        (tmp_path / f"{m.version:04d}_{m.name}.sql").write_text(m.sql)
    first = sorted(tmp_path.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        migrate(settings, directory=tmp_path)


def test_failing_migration_is_rolled_back_whole(settings, owner_conn, tmp_path: Path):
    for m in available():
        (tmp_path / f"{m.version:04d}_{m.name}.sql").write_text(m.sql)
    (tmp_path / "0999_broken.sql").write_text(
        "CREATE TABLE geoby.half_done (id int);\nSELECT no_such_function();\n"
    )
    with pytest.raises(MigrationError, match="0999_broken failed and was rolled back"):
        migrate(settings, directory=tmp_path)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT to_regclass('geoby.half_done')")
        assert cur.fetchone() == (None,)
    assert 999 not in applied(owner_conn)


def test_misnamed_migration_file_is_named(tmp_path: Path):
    (tmp_path / "1_roles.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="1_roles.sql is not named"):
        available(tmp_path)


def test_duplicate_numbers_are_refused(tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="two migrations are numbered 0001"):
        available(tmp_path)


def _expect_denied(database, role: str, query: str) -> None:
    conn = connect(database.dsn(role))
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(query)
    finally:
        conn.close()


def _run(database, role: str, query: str):
    with database.connection(role) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall() if cur.description else None


def test_roles_are_least_privilege(database, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS data.priv_open, restricted.priv_cables")
    _run(database, "ingest", "CREATE TABLE data.priv_open AS SELECT 1 AS id")
    _run(database, "ingest", "CREATE TABLE restricted.priv_cables AS SELECT 1 AS id")

    # the public API role reads open data and the catalog, nothing else
    assert _run(database, "read", "SELECT id FROM data.priv_open") == [(1,)]
    assert _run(database, "read", "SELECT count(*) FROM geoby.layers")[0][0] >= 0
    _expect_denied(database, "read", "SELECT id FROM restricted.priv_cables")
    _expect_denied(database, "read", "CREATE TABLE data.sneaky (id int)")
    _expect_denied(database, "read", "INSERT INTO data.priv_open VALUES (2)")
    _expect_denied(database, "read", "DELETE FROM geoby.layers")
    _expect_denied(database, "read", "CREATE TABLE public.sneaky (id int)")

    # the admin role reads restricted data for entitled users, but does not write data
    assert _run(database, "admin", "SELECT id FROM restricted.priv_cables") == [(1,)]
    _expect_denied(database, "admin", "INSERT INTO restricted.priv_cables VALUES (2)")

    # nobody but the owner roles may connect with a made-up role
    with owner_conn.cursor() as cur:
        cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                    " WHERE rolname LIKE 'geoby\\_%' ORDER BY rolname")  # fmt: skip
        assert cur.fetchall() == [(False, False, False)] * 3


def test_role_connections_use_their_own_user(database):
    for role, user in (
        ("read", "geoby_read"),
        ("ingest", "geoby_ingest"),
        ("admin", "geoby_admin"),
    ):
        assert _run(database, role, "SELECT current_user") == [(user,)]


def test_driver_error_is_translated_and_rolled_back(database, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS data.rollback_probe")
    with pytest.raises(DatabaseError) as info, database.connection("ingest") as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE data.rollback_probe (id int)")
            cur.execute("SELECT * FROM data.does_not_exist_at_all")
    assert "does_not_exist" not in info.value.detail  # driver text stays in the log
    assert "does_not_exist" in info.value.log_detail
    with owner_conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.rollback_probe')")
        assert cur.fetchone() == (None,)
    assert _run(database, "ingest", "SELECT 1") == [(1,)]  # the pool survives the error


def test_unique_violation_becomes_conflict(database, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS data.unique_probe")
        cur.execute("CREATE TABLE data.unique_probe (id int PRIMARY KEY)")
        cur.execute("GRANT INSERT ON data.unique_probe TO geoby_ingest")
    with pytest.raises(Conflict), database.connection("ingest") as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO data.unique_probe VALUES (1), (1)")


def test_unreachable_database_is_unavailable_without_password():
    from layers.database import Database
    from layers.settings import DatabaseSettings, Settings

    url = "postgresql://someone:topsecret@127.0.0.1:1/nowhere"
    db = Database(Settings(database=DatabaseSettings(url=url)))
    with pytest.raises(DatabaseUnavailable) as info, db.connection("read"):
        pass
    assert "topsecret" not in info.value.detail
    assert "topsecret" not in (info.value.log_detail or "")
