"""Byte-for-byte reproducible writers for the sample's files.

GeoPackages are written through pyogrio with GDAL's ``OGR_CURRENT_DATE``
pinned (GDAL otherwise stamps ``gpkg_contents.last_change`` with the clock),
set only for the duration of the write and restored afterwards. CSV files
use explicit number formats and ``\\n`` line ends; gzip members carry no
file name and a zero modification time.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from ingest.sample import plan

FIXED_DATE = "2024-01-01T00:00:00.000Z"


@contextmanager
def pinned_gdal_date() -> Iterator[None]:
    """Pin GDAL's notion of "now" for GeoPackage metadata, then restore it."""
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def to_world(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Shift a frame from local metres to EPSG:25832 coordinates."""
    offset = [plan.ORIGIN_E, plan.ORIGIN_N]
    geoms = shapely.transform(frame.geometry.to_numpy(), lambda xy: xy + offset)
    out = gpd.GeoDataFrame(
        frame.drop(columns=frame.geometry.name), geometry=list(geoms), crs=plan.CRS
    )
    return out.reset_index(drop=True)


def write_gpkg(path: Path, layers: Sequence[tuple[str, pd.DataFrame]]) -> dict[str, int]:
    """Write ``(name, frame)`` layers into one new GeoPackage.

    Parameters
    ----------
    path
        Target file; must not exist yet.
    layers
        Layer name and frame; a plain DataFrame becomes an attribute table.

    Returns
    -------
    dict
        Row count per layer name.
    """
    counts: dict[str, int] = {}
    with pinned_gdal_date():
        for name, frame in layers:
            pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")
            counts[name] = len(frame)
    return counts


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a UTF-8 CSV with ``\\n`` line ends; return the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


@contextmanager
def gzip_writer(path: Path) -> Iterator[gzip.GzipFile]:
    """A gzip stream without name or timestamp in its header (level 1: speed)."""
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as gz:
            yield gz


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
