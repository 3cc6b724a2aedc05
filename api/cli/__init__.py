"""The ``geoby`` command line.

Every command prints a one-line summary on success and exits non-zero with a
clear message on failure (exit 2 for bad input, 1 otherwise). Commands are
thin: they parse options, call a core function and print its summary.
"""

from __future__ import annotations

import logging
import sys

import click

from api.cli.backup import backup, restore
from api.cli.broker import broker
from api.cli.db import db
from api.cli.dig import dig
from api.cli.flood import flood
from api.cli.ingest import ingest
from api.cli.layers import layers
from api.cli.sample import sample
from api.cli.serve import demo, serve
from api.cli.users import users
from api.cli.waste import waste
from layers.errors import GeobyError, InvalidInput
from layers.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress and details to stderr.")
@click.version_option(package_name="geoby")
def cli(verbose: bool) -> None:
    """geoby: terrain, climate, water, energy, waste and utility data in PostGIS."""
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level, logging.INFO)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


for command in (db, broker, ingest, layers, sample, serve, demo, users, dig, flood, waste,
                backup, restore):  # fmt: skip
    cli.add_command(command)


def main() -> None:
    """Entry point of the console script: run the CLI and turn errors into messages."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GeobyError as exc:
        if exc.log_detail:
            logging.getLogger("geoby").debug("%s", exc.log_detail)
        click.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, InvalidInput) else 1)
