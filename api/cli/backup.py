"""``geoby backup FILE`` and ``geoby restore FILE``: the whole platform in one archive."""

from __future__ import annotations

from pathlib import Path

import click

from layers import backup as backups
from layers.settings import get_settings


def _progress(line: str) -> None:
    click.echo(f"... {line}", err=True)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
def backup(file: Path, overwrite: bool) -> None:
    """Write the database (pg_dump) and the data directory (rasters, job results) to FILE."""
    report = backups.backup(get_settings(), file, overwrite=overwrite, echo=_progress)
    click.echo(report.summary("backed up"))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Replace a database and data directory that hold data.")  # fmt: skip
def restore(file: Path, force: bool) -> None:
    """Restore the database and the data directory from a backup FILE (checked first)."""
    report = backups.restore(get_settings(), file, force=force, echo=_progress)
    for note in report.notes:
        _progress(note)
    click.echo(report.summary("restored") + " (row counts verified)")
