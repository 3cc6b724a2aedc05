"""``geoby db up|down|status|url``: the database the platform runs on."""

from __future__ import annotations

import click

from layers.database import Database, as_url, cluster_for, redact, resolve_dsn
from layers.errors import ClusterError
from layers.migrate import migrate
from layers.settings import get_settings


@click.group()
def db() -> None:
    """Start, stop and inspect the database (a private cluster under ./var/pg)."""


@db.command()
@click.option("--no-install", is_flag=True, help="Never install OS packages; fail instead.")
def up(no_install: bool) -> None:
    """Start the database (installing PostgreSQL/PostGIS if needed) and migrate it."""
    settings = get_settings()
    if settings.database.url is None:
        state = cluster_for(settings).up(allow_install=not no_install)
        where = f"127.0.0.1:{state.port}"
    else:
        where = redact(resolve_dsn(settings, "owner"))
    applied = migrate(settings)
    note = f"applied migrations {', '.join(map(str, applied))}" if applied else "schema up to date"
    click.echo(f"database {settings.database.name} ready at {where} ({note})")


@db.command()
def down() -> None:
    """Stop the private cluster (its data is kept)."""
    settings = get_settings()
    if settings.database.url is not None:
        raise ClusterError("GEOBY_DATABASE_URL is set: that server is not geoby's to stop")
    state = cluster_for(settings).down()
    click.echo(f"database stopped ({state.summary()})")


@db.command()
def status() -> None:
    """Say whether the database runs, and its PostGIS and schema versions."""
    settings = get_settings()
    if settings.database.url is None:
        state = cluster_for(settings).state()
        if not state.running:
            raise ClusterError(f"{state.summary()}; start it with `geoby db up`")
    database = Database(settings)
    try:
        with database.connection("read") as conn, conn.cursor() as cur:
            cur.execute("SELECT postgis_lib_version(), current_setting('server_version')")
            postgis, server = cur.fetchone()
            cur.execute("SELECT count(*) FROM geoby.layers")
            (n_layers,) = cur.fetchone()
    finally:
        database.close()
    click.echo(
        f"database {settings.database.name} up: PostgreSQL {server}, PostGIS {postgis}, "
        f"{n_layers} layers in the catalog"
    )


@db.command()
@click.option(
    "--role",
    type=click.Choice(["read", "ingest", "admin", "owner"]),
    default="read",
    show_default=True,
    help="Which role the URL logs in as.",
)
def url(role: str) -> None:
    """Print a libpq connection string (for psql, QGIS, ogr2ogr)."""
    click.echo(as_url(resolve_dsn(get_settings(), role)))  # type: ignore[arg-type]
