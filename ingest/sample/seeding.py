"""Seeded random streams for the sample generator.

Every part of the town draws from its own random stream, keyed by the seed
and a fixed name, so that adding a draw in one part (say, waste) never shifts
the numbers another part (say, the terrain) gets, and the same seed always
yields the same town.
"""

from __future__ import annotations

import uuid
import zlib

import numpy as np


def rng_for(seed: int, name: str) -> np.random.Generator:
    """Return the random generator for one named part of the town.

    Parameters
    ----------
    seed
        The sample's seed.
    name
        A fixed label for the part, e.g. ``"terrain.hills"``.

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator that depends only on ``seed`` and ``name``.
    """
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, key]))


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Draw ``n`` version-4 UUID strings from ``rng`` (never from the OS).

    Parameters
    ----------
    rng
        The generator to draw from.
    n
        How many identifiers.

    Returns
    -------
    list of str
        Canonical lower-case UUID strings, 36 characters each.
    """
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]
