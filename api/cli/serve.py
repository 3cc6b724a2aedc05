"""``geoby serve`` and ``geoby demo``: run the platform."""

from __future__ import annotations

from pathlib import Path

import click

from layers.database import Database, cluster_for
from layers.migrate import migrate
from layers.settings import get_settings


@click.command()
@click.option("--host", help="Address to listen on (default GEOBY_API_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GEOBY_API_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the web map, OGC APIs and domain API."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    host, port = host or settings.api.host, port or settings.api.port
    # Links the API writes (OGC next pages, collections) use the address served.
    api = settings.api.model_copy(update={"host": host, "port": port})
    app = create_app(settings.model_copy(update={"api": api}))
    click.echo(f"serving geoby on http://{host}:{port}/ (Ctrl-C to stop)")
    from api.observability import uvicorn_log_config

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                log_config=uvicorn_log_config(settings))  # fmt: skip


@click.command()
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small",
              show_default=True, help="Size of the sample town.")  # fmt: skip
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("var/sample"), show_default=True, help="Where the sample is written.")  # fmt: skip
@click.option("--no-serve", is_flag=True, help="Prepare everything, then exit.")
@click.pass_context
def demo(ctx: click.Context, size: str, directory: Path, no_serve: bool) -> None:
    """Start the database, generate and ingest the sample town, and serve it."""
    from ingest.pipelines import IngestOptions
    from ingest.sample import generate, read_manifest
    from ingest.sample_load import ingest_sample

    settings = get_settings()
    if settings.database.url is None:
        state = cluster_for(settings).up()
        click.echo(f"database: {state.summary()}")
    migrate(settings)
    if settings.broker.host is None:
        from layers.broker import LocalBroker
        from layers.errors import ClusterError

        try:
            port = LocalBroker(settings.broker.directory).up()
            click.echo(f"broker: MQTT on 127.0.0.1:{port}, readings to {settings.broker.topic}")
        except ClusterError as exc:  # the demo runs without live readings
            click.echo(f"broker: not started ({exc.detail})", err=True)
    manifest = read_manifest(directory)
    if manifest is None or manifest.get("size") != size:
        manifest = generate(directory, size=size, overwrite=True)
        click.echo(f"sample: generated '{manifest['town']}' ({size}) in {directory}")
    else:
        click.echo(f"sample: '{manifest['town']}' ({size}) already in {directory}")
    reports = ingest_sample(Database(settings), directory, IngestOptions())
    loaded = sum(not r.skipped for r in reports)
    rows = sum(r.inserted + r.updated for r in reports)
    click.echo(
        f"ingest: {loaded} of {len(reports)} files loaded ({rows:,} rows), the rest unchanged"
    )
    tokens = demo_tokens(Database(settings), settings.data_dir.parent / "demo-tokens.json")
    click.echo(f"users: demo tokens per role in {tokens} (contractor, utility, planner, admin)")
    if no_serve:
        click.echo("demo ready (not serving: --no-serve)")
        return
    ctx.invoke(serve)


DEMO_USERS = (
    ("Egevig Graveservice ApS", "contractor"),
    ("NordFiber ApS", "utility"),
    ("Egevig Kommune, Vej og Park", "planner"),
    ("Egevig Kommune, IT", "admin"),
)


def demo_tokens(database: Database, path: Path) -> Path:
    """Tokens for one demo user per role, kept in ``path`` (mode 600) while they work."""
    import json

    from dig_coordination.users import add_user, authenticate
    from layers.errors import Unauthorized

    known: dict[str, str] = {}
    if path.is_file():
        known = json.loads(path.read_text())
    with database.connection("admin") as conn:
        for org, role in DEMO_USERS:
            try:
                authenticate(conn, known.get(role))
            except Unauthorized:
                known[role] = add_user(conn, org=org, role=role)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(known, indent=2) + "\n")
    return path
