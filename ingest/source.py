"""The file being loaded: its name, size and checksum.

The checksum (SHA-256 of the bytes) is the file's identity in the catalog's
provenance: loading a file whose checksum is already recorded is a no-op
unless the mode is ``replace``. The *label* names the source whose rows a
``replace`` load swaps out; it defaults to the file name, so a corrected
``cables.gpkg`` replaces the rows of the previous ``cables.gpkg``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from layers.errors import InvalidInput

CHUNK = 1 << 20


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceFile:
    """A file to load.

    Parameters
    ----------
    path
        The file.
    label
        Names the source for ``replace`` loads; defaults to the file name.
    """

    path: Path
    label: str = ""
    checksum: str = field(default="", compare=False)

    @classmethod
    def open(cls, path: Path | str, *, label: str | None = None) -> SourceFile:
        """Check that ``path`` is a readable file and compute its checksum.

        Raises
        ------
        InvalidInput
            The path does not exist, is a directory, or is empty.
        """
        path = Path(path)
        if not path.exists():
            raise InvalidInput(f"no such file: {path}", record=str(path))
        if not path.is_file():
            raise InvalidInput(f"not a file: {path}", record=str(path))
        if path.stat().st_size == 0:
            raise InvalidInput(f"the file is empty: {path}", record=str(path))
        return cls(path=path, label=label or path.name, checksum=sha256(path))

    @property
    def name(self) -> str:
        return self.path.name
