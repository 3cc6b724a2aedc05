"""Progress reporting for long work, shared by every package.

Domain code reports progress through :func:`progress`, which draws a tqdm bar
on an interactive terminal and stays silent elsewhere (CI logs, notebooks that
pass ``enabled=False``), so long loads and analyses show how far they are
without cluttering captured output.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = None,
) -> Iterator[T]:
    """Iterate over ``iterable`` with a progress bar.

    Parameters
    ----------
    iterable
        What to iterate over.
    total
        Number of items, where ``len(iterable)`` does not tell.
    desc
        Short label shown before the bar.
    unit
        Name of one item (``"tile"``, ``"row"``).
    enabled
        ``True`` forces the bar, ``False`` hides it, ``None`` (the default)
        shows it only when standard error is a terminal.

    Returns
    -------
    Iterator
        The items of ``iterable``, unchanged.
    """
    disable = None if enabled is None else not enabled
    yield from tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=False)
