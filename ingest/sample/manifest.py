"""The sample's ``manifest.json``: what was generated, how, and checksums.

The manifest holds no clock time, host name or absolute path, so two runs
with the same seed and size write the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.sample.writers import sha256

FAMILIES = ("terrain", "climate", "water", "energy", "waste", "utilities", "base")
MANIFEST_NAME = "manifest.json"


@dataclass
class FileEntry:
    """One generated file, as listed in the manifest.

    Attributes
    ----------
    path
        Path relative to the sample root, with ``/`` separators.
    family
        Ingestion family (one of :data:`FAMILIES`).
    format
        File format (``GTiff``, ``GPKG``, ``GML``, ``csv``, ``csv.gz``, ...).
    description
        One line on the content.
    layers
        Feature count per layer, for multi-layer vector files.
    rows
        Data rows (CSV), features (single-layer files) or cells (rasters).
    """

    path: str
    family: str
    format: str
    description: str
    layers: dict[str, int] | None = None
    rows: int | None = None

    def record(self, root: Path) -> dict[str, Any]:
        """The manifest record, with size and SHA-256 of the file on disk."""
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r} for {self.path}")
        file = root / self.path
        rec: dict[str, Any] = {
            "path": self.path,
            "family": self.family,
            "format": self.format,
            "description": self.description,
            "bytes": file.stat().st_size,
            "sha256": sha256(file),
        }
        if self.layers is not None:
            rec["layers"] = dict(self.layers)
        if self.rows is not None:
            rec["rows"] = self.rows
        return rec


def write_manifest(root: Path, header: dict[str, Any], entries: list[FileEntry]) -> dict[str, Any]:
    """Write ``manifest.json`` under ``root`` and return its content.

    Parameters
    ----------
    root
        The sample's root directory.
    header
        Town, seed, size, extent, CRS and generation parameters.
    entries
        Every generated file.

    Returns
    -------
    dict
        The manifest as written.
    """
    files = sorted((e.record(root) for e in entries), key=lambda r: r["path"])
    manifest = dict(header)
    manifest["files"] = files
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return manifest


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of a generated sample under ``root``, or ``None`` when there is none."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text())
