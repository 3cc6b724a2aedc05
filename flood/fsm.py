"""Fill-Spill-Merge: where a rain ends up once it has run off, filled and spilled.

Barnes, Callaghan and Wickert (2021), "Computing water flow through complex landscapes -
Part 3: Fill-Spill-Merge: flow routing in depression hierarchies", Earth Surf. Dynam. 9,
105-121. Rain falls on every valid cell at once and runs (D8) to the pit of its cell's leaf
depression (:attr:`flood.depressions.Hierarchy.labels`; water on outlet-draining cells is
lost at once). A depression fills to its pour point; what it cannot hold spills into its
sibling, entering at the leaf the overflow runs to; when both siblings are full the water
rises over both together in their parent; a top-level depression spills into the region of
the depression its overflow runs into, or into an outlet, where the water leaves the
raster. Each final water surface is found from the stored volume on the depression's
hypsometric curve (its cells by elevation and the cumulative volume below each), and the
depth of a cell is ``max(0, surface - elevation)``.

The routing is written here by hand (numba), as the house rules allow for core algorithms.
Water is delivered leaf by leaf to the first depression on its way that is not yet full;
full depressions keep a pointer to where their water now goes, compressed like a
union-find, so a rain over millions of depressions costs about one pass over them. The
result does not depend on the order of delivery. The hierarchy is built once per terrain
(:func:`flood.depressions.depression_hierarchy`, the expensive part); this step is re-run
per rain, and its cost is one pass over the depressions plus one over the cells.

Rain is the *effective* rain depth in mm: the caller does the arithmetic of design rain
times climate factor minus drainage capacity (or losses to infiltration) before calling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from flood.depressions import Hierarchy
from layers.errors import InvalidInput

__all__ = ["FsmResult", "fill_spill_merge"]

_UNSET = -2


@dataclass(frozen=True, eq=False)
class FsmResult:
    """The state after a rain.

    Attributes
    ----------
    depth
        float64 raster of water depth (m): 0 where dry, NaN at nodata.
    rain_m3, stored_m3, lost_m3
        Rain on the valid cells, water standing in depressions (the sum of ``depth``
        times the cell area) and water that left at outlets; ``rain_m3`` equals
        ``stored_m3 + lost_m3`` to float rounding.
    fill_fraction
        Per depression (indexed like the hierarchy): stored water / volume, 0 to 1.
    water_level
        Per depression: the water surface over it (m, the DEM's datum; a full depression
        under a higher lake has that lake's surface); NaN where it holds no water.
    stored_by_depression_m3
        Per depression: the water in its region (its children's included).
    """

    depth: np.ndarray
    rain_m3: float
    stored_m3: float
    lost_m3: float
    fill_fraction: np.ndarray
    water_level: np.ndarray
    stored_by_depression_m3: np.ndarray


def fill_spill_merge(
    dem: np.ndarray,
    hierarchy: Hierarchy,
    rain_mm: float | np.ndarray,
    nodata: np.ndarray | None = None,
    cell_area: float | None = None,
) -> FsmResult:
    """Route an instantaneous rain over the terrain: fill, spill and merge depressions.

    Parameters
    ----------
    dem
        The elevation raster the hierarchy was built from (same shape and values).
    hierarchy
        From :func:`flood.depressions.depression_hierarchy` on this DEM.
    rain_mm
        Effective rain depth in mm (after climate factor and drainage, which are the
        caller's arithmetic): one number for every cell, or a raster of the DEM's shape.
    nodata
        The nodata mask the hierarchy was built with (NaN cells count as nodata too).
    cell_area
        Cell area (m2); ``None`` takes the hierarchy's, another value is an error.

    Returns
    -------
    FsmResult
        Water depth raster, volumes and the per-depression fill state.

    Raises
    ------
    InvalidInput
        If the shapes disagree, the DEM is not the hierarchy's (checked at the pour
        points), the rain is negative or not finite, or the cell area differs.

    Examples
    --------
    >>> from flood.depressions import depression_hierarchy
    >>> dem = np.array([[5, 5, 5, 5], [5, 1, 2, 5], [5, 5, 5, 5]], np.float64)
    >>> r = fill_spill_merge(dem, depression_hierarchy(dem), 500.0)
    >>> r.depth[1].tolist(), r.stored_m3, r.lost_m3
    ([0.0, 1.0, 0.0, 0.0], 1.0, 5.0)
    """
    z, invalid = _inputs(dem, hierarchy, nodata)
    if cell_area is not None and not np.isclose(cell_area, hierarchy.cell_area, rtol=1e-12):
        raise InvalidInput(
            f"cell area {cell_area} differs from the hierarchy's {hierarchy.cell_area}",
            field="cell_area",
        )
    area = hierarchy.cell_area
    water, total, direct = _rain(rain_mm, hierarchy, hierarchy.labels.ravel(), invalid, z.shape)
    volume = hierarchy.volume_m3 / area  # in cells x m from here on
    pooled, full, lost = _route(water, hierarchy.parent, hierarchy.children,
                                hierarchy.spill_leaf, volume)  # fmt: skip
    del water
    level = _levels(z.ravel(), pooled, full, hierarchy.parent, hierarchy.children,
                    hierarchy.pour_elevation, hierarchy.min_elevation, hierarchy.below_cells,
                    volume, hierarchy.band_start, hierarchy.band_cells)  # fmt: skip
    depth = np.empty(z.shape, np.float64)
    stored = _depth(z, hierarchy.labels, invalid, level, depth)
    held, fraction = _held(pooled, full, hierarchy.children, volume)
    del pooled, full
    level[~np.isfinite(level)] = np.nan
    return FsmResult(
        depth=depth,
        rain_m3=float(total * area),
        stored_m3=float(stored * area),
        lost_m3=float((direct + lost) * area),
        fill_fraction=fraction,
        water_level=level,
        stored_by_depression_m3=held * area,
    )


def _inputs(
    dem: np.ndarray, hierarchy: Hierarchy, nodata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(dem)
    if z.shape != hierarchy.shape:
        raise InvalidInput(f"the DEM has shape {z.shape}, the hierarchy {hierarchy.shape}")
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float64)
    z = np.ascontiguousarray(z)
    invalid = ~np.isfinite(z)
    if nodata is not None:
        mask = np.asarray(nodata)
        if mask.shape != z.shape:
            raise InvalidInput(
                f"nodata mask has shape {mask.shape}, the DEM {z.shape}", field="nodata"
            )
        invalid |= mask.astype(bool, copy=False)
    if hierarchy.count and not np.array_equal(
        z.ravel()[hierarchy.pour_cell], hierarchy.pour_elevation.astype(z.dtype)
    ):
        raise InvalidInput("the DEM differs from the one the hierarchy was built from")
    return z, invalid


def _rain(
    rain_mm: float | np.ndarray,
    hierarchy: Hierarchy,
    labels: np.ndarray,
    invalid: np.ndarray,
    shape: tuple[int, int],
) -> tuple[np.ndarray, float, float]:
    """Rain per leaf (m x cells), total rain and rain on outlet-draining cells."""
    if np.ndim(rain_mm) == 0:
        rain = float(rain_mm)
        if not (np.isfinite(rain) and rain >= 0):
            raise InvalidInput(f"rain must be 0 mm or more, not {rain_mm}", field="rain_mm")
        metres = rain / 1000.0
        valid = invalid.size - int(np.count_nonzero(invalid))
        leaves = hierarchy.is_leaf
        water = np.where(leaves, hierarchy.catchment_cells * metres, 0.0)
        draining = valid - int(hierarchy.catchment_cells[leaves].sum())
        return water, valid * metres, draining * metres
    rain = np.asarray(rain_mm, dtype=np.float64)
    if rain.shape != shape:
        raise InvalidInput(f"rain raster has shape {rain.shape}, the DEM {shape}", field="rain_mm")
    bad = ~((rain >= 0) & np.isfinite(rain)) & ~invalid
    if bad.any():
        raise InvalidInput("rain must be finite and 0 mm or more on every valid cell",
                           field="rain_mm")  # fmt: skip
    return _leaf_rain(labels, np.ascontiguousarray(rain).ravel(), invalid.ravel(),
                      hierarchy.count)  # fmt: skip


@numba.njit(cache=True)
def _leaf_rain(
    labels: np.ndarray, rain: np.ndarray, invalid: np.ndarray, count: int
) -> tuple[np.ndarray, float, float]:
    water = np.zeros(count, np.float64)
    total = 0.0
    direct = 0.0
    for c in range(labels.size):
        if invalid[c]:
            continue
        r = rain[c] / 1000.0
        total += r
        leaf = labels[c]
        if leaf < 0:
            direct += r
        else:
            water[leaf] += r
    return water, total, direct


@numba.njit(cache=True, inline="always")
def _sink(
    x: int, full: np.ndarray, jump: np.ndarray, parent: np.ndarray, child: np.ndarray,
    spill_leaf: np.ndarray, path: np.ndarray,
) -> int:  # fmt: skip
    """The first depression that is not full on the way of water arriving at ``x``."""
    y = x
    k = 0
    while y >= 0 and full[y]:
        path[k] = y
        k += 1
        j = jump[y]
        if j != _UNSET:
            y = j
            continue
        p = parent[y]
        if p < 0:
            y = spill_leaf[y]
        else:
            sibling = child[p, 0] if child[p, 1] == y else child[p, 1]
            y = p if full[sibling] else spill_leaf[y]
    for t in range(k):  # every full node passed sends its water where y's goes
        jump[path[t]] = y
    return y


@numba.njit(cache=True)
def _route(
    water: np.ndarray, parent: np.ndarray, child: np.ndarray, spill_leaf: np.ndarray,
    volume: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """Deliver each leaf's water; returns the water pooled in each depression's own band
    (above its children), the full flags and the water lost."""
    n = parent.size
    pooled = np.zeros(n, np.float64)
    full = np.zeros(n, np.bool_)
    jump = np.full(n, _UNSET, np.int32)
    path = np.empty(n + 1, np.int32)
    lost = 0.0
    for leaf in range(n):
        amount = water[leaf]
        x = leaf
        while amount > 0:
            s = _sink(x, full, jump, parent, child, spill_leaf, path)
            if s < 0:
                lost += amount
                break
            room = _own(s, child, volume) - pooled[s]
            if amount < room:
                pooled[s] += amount
                break
            pooled[s] += room
            full[s] = True
            amount -= room
            x = s
    return pooled, full, lost


@numba.njit(cache=True, inline="always")
def _below(x: int, child: np.ndarray, volume: np.ndarray) -> float:
    """Water the children of x hold when full (0 for a leaf)."""
    a = child[x, 0]
    return 0.0 if a < 0 else volume[a] + volume[child[x, 1]]


@numba.njit(cache=True, inline="always")
def _own(x: int, child: np.ndarray, volume: np.ndarray) -> float:
    """Capacity of x's own band, above its children."""
    return max(volume[x] - _below(x, child, volume), 0.0)


@numba.njit(cache=True)
def _levels(
    z: np.ndarray, pooled: np.ndarray, full: np.ndarray, parent: np.ndarray, child: np.ndarray,
    pour: np.ndarray, low: np.ndarray, below_cells: np.ndarray, volume: np.ndarray,
    start: np.ndarray, band: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Water surface over every depression (-inf where dry), parents before children."""
    n = parent.size
    level = np.full(n, -np.inf)
    for x in range(n - 1, -1, -1):
        if full[x]:
            own = pour[x]
        elif pooled[x] > 0:
            a = child[x, 0]
            base = low[x] if a < 0 else pour[a]
            below = _below(x, child, volume)
            own = _surface(z, x, below + pooled[x], base, below_cells[x], below, start, band,
                           pour[x])  # fmt: skip
        else:
            own = -np.inf
        p = parent[x]
        level[x] = max(own, level[p]) if p >= 0 else own
    return level


@numba.njit(cache=True)
def _surface(
    z: np.ndarray, x: int, target: float, base: float, count: int, below: float,
    start: np.ndarray, band: np.ndarray, top: float,
) -> float:  # fmt: skip
    """Level over depression x holding ``target`` (cells x m) on its hypsometric curve."""
    cells = count
    raised = 0.0  # sum of (elevation - base) over its own cells under water so far
    for j in range(start[x], start[x + 1]):
        d = z[band[j]] - base
        if below + cells * d - raised >= target:
            break
        cells += 1
        raised += d
    return min(base + (target - below + raised) / cells, top)


@numba.njit(cache=True)
def _depth(
    z: np.ndarray, labels: np.ndarray, invalid: np.ndarray, level: np.ndarray, depth: np.ndarray
) -> float:
    """Fill the depth raster row by row; returns the stored volume (cells x m).

    Serial on purpose, like every kernel here: numba's threading layers are either not
    fork-safe (OpenMP) or not thread-safe (workqueue), and prange saved only ~0.4 s on
    64 M cells.
    """
    nrows, ncols = depth.shape
    stored = 0.0
    for r in range(nrows):
        row = 0.0
        for c in range(ncols):
            if invalid[r, c]:
                depth[r, c] = np.nan
                continue
            leaf = labels[r, c]
            d = level[leaf] - z[r, c] if leaf >= 0 else 0.0
            d = d if d > 0 else 0.0
            depth[r, c] = d
            row += d
        stored += row
    return stored


@numba.njit(cache=True)
def _held(
    pooled: np.ndarray, full: np.ndarray, child: np.ndarray, volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Water in each depression's region and its fill fraction, children first."""
    n = pooled.size
    held = np.empty(n, np.float64)
    fraction = np.empty(n, np.float64)
    for x in range(n):
        a = child[x, 0]
        if full[x]:
            held[x] = volume[x]
        elif pooled[x] > 0:
            held[x] = _below(x, child, volume) + pooled[x]
        elif a >= 0:
            held[x] = held[a] + held[child[x, 1]]
        else:
            held[x] = 0.0
        fraction[x] = min(held[x] / volume[x], 1.0) if volume[x] > 0 else 1.0
    return held, fraction
