"""The ingestion families and the one entry point that dispatches to them.

Each family is a module with a function
``ingest(database, paths, options) -> list[LoadReport]``. Vector and table
families turn each file into :class:`~ingest.loader.Part` objects and call
:func:`ingest.loader.load_file`; terrain writes Cloud-Optimised GeoTIFFs and
registers them. Modules are imported on first use, so ``geoby ingest
climate`` does not pay for the raster stack.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loader import LoadReport, Mode
from layers.database import Database
from layers.errors import InvalidInput

FAMILIES: dict[str, str] = {
    "terrain": "ingest.terrain",
    "climate": "ingest.climate",
    "water": "ingest.water",
    "energy": "ingest.energy",
    "waste": "ingest.waste",
    "utilities": "ingest.utilities",
}


@dataclass(frozen=True)
class IngestOptions:
    """How to load: the same for every family.

    Parameters
    ----------
    mode
        ``insert``, ``upsert`` (by the layer's natural key) or ``replace``
        (every row from the same source label).
    owner
        Organisation that owns the data (for utilities: the network owner).
    crs
        CRS to assume for files that declare none (``EPSG:25832``).
    skip_invalid
        Load the valid records and keep the refused ones in
        ``geoby.load_rejects``, instead of refusing the whole file.
    licence
        Licence of the data, recorded in the catalog.
    show_progress
        Progress bars: ``None`` shows them on a terminal only.
    extra
        Family-specific options (``--option key=value`` on the CLI).
    """

    mode: Mode = "insert"
    owner: str | None = None
    crs: str | None = None
    skip_invalid: bool = False
    licence: str | None = None
    show_progress: bool | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def ingest(
    database: Database, family: str, paths: list[Path], options: IngestOptions | None = None
) -> list[LoadReport]:
    """Load files of one family.

    Raises
    ------
    InvalidInput
        Unknown family, or a file the family refuses (nothing of that file is loaded).
    """
    if family not in FAMILIES:
        raise InvalidInput(f"unknown family '{family}'; one of {', '.join(FAMILIES)}",
                           field="family")  # fmt: skip
    if not paths:
        raise InvalidInput(f"no files given for {family}", field="path")
    module = importlib.import_module(FAMILIES[family])
    return module.ingest(database, [Path(p) for p in paths], options or IngestOptions())
