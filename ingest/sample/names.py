"""Fictional Danish place and street names for the sample town."""

from __future__ import annotations

import numpy as np

_PREFIXES = tuple(
    (
        "Ege Birke Bøge Hyld Rønne Hassel Pile Lærke Svane Måge Terne Vibe Stær "
        "Skovsnappe Rose Syren Kløver Lyng Valmue Kornblomst Mølle Smede Skole Kirke "
        "Præste Bager Skipper Fisker Bådsmands Tømrer Strand Klit Sand Tang Rav Muslinge "
        "Bølge Eng Mose Kær Toft Agerhøns Rug Havre Byg Hvede Solsikke Nøkke Grønne Blå "
        "Lyse Skyggen Bakke Høj Dal Kilde Brønd"
    ).split()
)
_SUFFIXES = tuple(
    (
        "vej vej vej gade stræde allé vænget toften parken bakken engen højen haven "
        "lunden stien kæret"
    ).split()
)


def street_names(rng: np.random.Generator, n: int, reserved: set[str]) -> list[str]:
    """Draw ``n`` distinct street names that are not in ``reserved``.

    Parameters
    ----------
    rng
        Seeded generator.
    n
        How many names.
    reserved
        Names already in use (arterial roads), never returned.

    Returns
    -------
    list of str
        Names such as ``"Lærkevænget"`` in a seeded order.
    """
    pool = sorted({p + s for p in _PREFIXES for s in _SUFFIXES} - reserved)
    order = rng.permutation(len(pool))
    if n > len(pool):
        raise ValueError(f"asked for {n} street names, only {len(pool)} exist")
    return [pool[i] for i in order[:n]]


FARM_NAMES = tuple(
    (
        "Egegården Mosegården Bakkegården Søgården Engholm Nørregård Søndergård "
        "Vestergård Østergård Lundgården Kildegården Højgården Toftegården Strandgården "
        "Digegården Kærgården Rugholm"
    ).split()
)
