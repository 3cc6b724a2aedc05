"""``geoby layers list``: what the catalog holds."""

from __future__ import annotations

import json

import click

from layers import catalog
from layers.database import Database
from layers.settings import get_settings


@click.group()
def layers() -> None:
    """Inspect the layer catalog."""


@layers.command("list")
@click.option("--theme", type=click.Choice(catalog.THEMES), help="Only layers of this theme.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def list_(theme: str | None, as_json: bool) -> None:
    """List every layer with its theme, kind, access, rows, owner and source count."""
    database = Database(get_settings())
    try:
        with database.connection("read") as conn:
            found = catalog.list_layers(conn, theme=theme)
    finally:
        database.close()
    if as_json:
        click.echo(json.dumps([layer.model_dump(mode="json") for layer in found], indent=2))
        return
    if found:
        click.echo(f"{'id':<32} {'theme':<10} {'kind':<7} {'access':<10} {'rows':>10}  owner")
        for layer in found:
            rows = "" if layer.row_count is None else f"{layer.row_count:,}"
            click.echo(
                f"{layer.id:<32} {layer.theme:<10} {layer.kind:<7} {layer.access:<10} "
                f"{rows:>10}  {layer.owner_org or ''}"
            )
    click.echo(f"{len(found)} layers in the catalog" + (f" (theme {theme})" if theme else ""))
