"""Numbered SQL migrations, applied in order, recorded, safe to rerun.

Migration files live in ``layers/migrations`` and are named
``NNNN_description.sql``. :func:`migrate` applies those not yet recorded in
``public.geoby_schema_migrations``, each in its own transaction, under an
advisory lock so two processes never migrate at once. A file that was applied
and has since changed is refused: migrations are append-only.

It then sets the passwords of geoby's roles (from the private cluster's
credentials, or from ``GEOBY_DATABASE_<ROLE>_PASSWORD``), which never appear
in SQL files.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from layers.database import ROLE_NAMES, cluster_for, connect, redact, resolve_dsn
from layers.errors import DatabaseError, MigrationError
from layers.settings import Settings, get_settings

log = logging.getLogger(__name__)

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x6765_6F62  # "geob": one advisory lock for all migration runs


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available(directory: Path | None = None) -> list[Migration]:
    """The migration files, in order.

    Raises
    ------
    MigrationError
        A file is misnamed or two files share a number.
    """
    root = directory or Path(str(resources.files("layers") / "migrations"))
    found: dict[int, Migration] = {}
    for path in sorted(root.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_description.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations are numbered {version:04d}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def ensure_database(settings: Settings) -> bool:
    """Create the private cluster's database if missing; return whether it was created."""
    if settings.database.url is not None:
        return False  # an external server's database is the operator's to create
    cluster = cluster_for(settings)
    conn = connect(cluster.superuser_dsn("postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.database.name,))
            if cur.fetchone():
                return False
            cur.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.database.name))
            )
            log.info("created database %s", settings.database.name)
            return True
    finally:
        conn.close()


def applied(conn: psycopg2.extensions.connection) -> dict[int, str]:
    """Versions recorded as applied, with their checksums."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.geoby_schema_migrations')")
        if cur.fetchone()[0] is None:
            return {}
        cur.execute("SELECT version, checksum FROM public.geoby_schema_migrations")
        return dict(cur.fetchall())


def migrate(settings: Settings | None = None, *, directory: Path | None = None) -> list[int]:
    """Bring the database up to date and set the role passwords.

    Parameters
    ----------
    settings
        Which database; defaults to the process settings.
    directory
        Where the migration files are (tests only); defaults to the packaged ones.

    Returns
    -------
    list of int
        The versions applied by this call (empty when already up to date).

    Raises
    ------
    MigrationError
        A migration failed (nothing of it is kept) or an applied file changed.
    """
    settings = settings or get_settings()
    ensure_database(settings)
    migrations = available(directory)
    dsn = resolve_dsn(settings, "owner")
    conn = connect(dsn, application_name="geoby-migrate")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS public.geoby_schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        done = applied(conn)
        new = [m for m in migrations if _check_recorded(m, done)]
        for migration in new:
            _apply(conn, migration)
        _set_role_passwords(conn, settings)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return [m.version for m in new]
    except psycopg2.Error as exc:
        raise DatabaseError(
            "could not migrate the database", log_detail=f"{redact(dsn)}: {exc}"
        ) from exc
    finally:
        conn.close()


def _check_recorded(migration: Migration, done: dict[int, str]) -> bool:
    """True when ``migration`` still has to run; refuse an applied file that changed."""
    if migration.version not in done:
        return True
    if done[migration.version] != migration.checksum:
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name}.sql was changed after it was "
            "applied; add a new migration instead of editing an applied one"
        )
    return False


def _apply(conn: psycopg2.extensions.connection, migration: Migration) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    try:
        with conn, conn.cursor() as cur:
            cur.execute(migration.sql)
            cur.execute(
                "INSERT INTO public.geoby_schema_migrations (version, name, checksum)"
                " VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg2.Error as exc:
        raise MigrationError(
            f"migration {label} failed and was rolled back: {exc.diag.message_primary or exc}",
            log_detail=str(exc),
        ) from exc
    log.info("applied migration %s", label)


def _set_role_passwords(conn: psycopg2.extensions.connection, settings: Settings) -> None:
    if settings.database.url is None:
        passwords = cluster_for(settings).credentials()
    else:
        passwords = {
            name: getattr(settings.database, f"{role}_password").get_secret_value()
            for role, name in ROLE_NAMES.items()
        }
        owner = parse_dsn(settings.database.url.get_secret_value()).get("user")
        passwords.pop(owner, None)
    with conn, conn.cursor() as cur:
        for name in ROLE_NAMES.values():
            # ALTER ROLE takes no server-side parameters; psycopg2 quotes the literal.
            cur.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(sql.Identifier(name)),
                (passwords[name],),
            )
