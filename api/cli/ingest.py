"""``geoby ingest FAMILY PATH...`` and ``geoby ingest sample DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from layers.database import Database
from layers.errors import InvalidInput
from layers.settings import get_settings

FAMILY_NAMES = ("terrain", "climate", "water", "energy", "waste", "utilities", "sample")


def _options(values: tuple[str, ...]) -> dict[str, str]:
    extra = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--option {value!r} is not KEY=VALUE", field="option")
        extra[key.strip()] = val.strip()
    return extra


@click.command()
@click.argument("family", type=click.Choice(FAMILY_NAMES))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--owner", help="Organisation that owns the data (utilities: the network owner).")
@click.option("--mode", type=click.Choice(["insert", "upsert", "replace"]), default="insert",
              show_default=True, help="How rows merge with those already loaded.")  # fmt: skip
@click.option("--crs", help="CRS to assume for files that declare none, e.g. EPSG:25832.")
@click.option("--licence", help="Licence of the data, for the catalog.")
@click.option("--skip-invalid", is_flag=True,
              help="Load valid records; keep refused ones in geoby.load_rejects.")  # fmt: skip
@click.option("--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="Family-specific option (repeatable).")  # fmt: skip
def ingest(family, paths, owner, mode, crs, licence, skip_invalid, extra) -> None:
    """Load files of a FAMILY (or the whole sample town: `geoby ingest sample DIR`)."""
    from ingest.pipelines import IngestOptions
    from ingest.pipelines import ingest as run

    options = IngestOptions(mode=mode, owner=owner, crs=crs, licence=licence,
                            skip_invalid=skip_invalid, extra=_options(extra))  # fmt: skip
    database = Database(get_settings())
    try:
        if family == "sample":
            from ingest.sample_load import ingest_sample

            reports = ingest_sample(database, paths[0], options)
        else:
            reports = run(database, family, list(paths), options)
    finally:
        database.close()
    for report in reports:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(report.summary())
    loaded = sum(not r.skipped for r in reports)
    rows = sum(r.inserted + r.updated for r in reports)
    click.echo(f"{family}: {loaded} of {len(reports)} loads done, {rows:,} rows written")
