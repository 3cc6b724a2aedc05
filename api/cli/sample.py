"""``geoby sample``: write the fictional sample municipality as real files."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Directory to write the files into.",
)  # fmt: skip
@click.option(
    "--size", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True
)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same files.")
@click.option("--overwrite", is_flag=True, help="Replace the contents of a non-empty --out.")
def sample(out: Path, size: str, seed: int, overwrite: bool) -> None:
    """Generate the sample coastal town (DEM, networks, sensors, series)."""
    from ingest.sample import generate

    manifest = generate(out, size=size, seed=seed, overwrite=overwrite)
    n_files = len(manifest["files"])
    mib = sum(f.get("bytes", 0) for f in manifest["files"]) / 2**20
    click.echo(
        f"sample town '{manifest['town']}' ({size}, seed {seed}): {n_files} files, "
        f"{mib:,.1f} MiB in {out}"
    )
