"""D8 flow directions, flow accumulation, watersheds and main flow paths.

Directions are those of the depression-filled DEM, taken from one Priority-Flood
(:mod:`flood.fill`), so every cell drains to an outlet and no flat is left undrained:

- a cell with a strictly lower neighbour (on the filled surface) flows to the one with the
  steepest drop, the diagonal drop divided by sqrt(2) (square cells, ties to the first
  in the order E, SE, S, SW, W, NW, N, NE);
- a cell on a flat (a filled depression or a flat in the DEM) flows to its *predecessor
  in the Priority-Flood order*, the neighbour that first reached it. Flats are flooded
  breadth-first from the cell where the water entered them, so each flat drains along
  shortest D8 paths to its way out. This is simpler than Barnes, Lehman and Mulla's
  (2014) flat resolution: it does not also lead flow away from higher terrain;
- every border cell and every cell next to nodata is an outlet, as in RichDEM: its water
  leaves the raster, and it has no direction.

Steps on the filled surface go strictly down, predecessor steps go back in the flooding
order, so there are no cycles. The core loops are written here (numba), the house
exception for core algorithms.

Direction codes (int8): 1 E, 2 SE, 3 S, 4 SW, 5 W, 6 NW, 7 N, 8 NE (clockwise from east,
row 0 north); 0 = outlet; -1 = nodata. ``OFFSETS[code]`` gives (row step, column step).
"""

from __future__ import annotations

import numba
import numpy as np
import shapely
from affine import Affine

from flood.fill import BORDER, NODATA, _flood, _prepare, _seed_outlets
from layers.errors import InvalidInput

__all__ = ["OFFSETS", "d8_directions", "flow_accumulation", "flow_paths", "watershed"]

OUTLET = 0
NODATA_DIR = -1
OFFSETS = np.array(
    [(0, 0), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)],
    dtype=np.int64,
)
# code of the move to the 3x3 window cell k = 3 * (drow + 1) + (dcol + 1)
_CODE_OF_WINDOW = np.array([6, 7, 8, 5, 0, 1, 4, 3, 2], dtype=np.int8)
_INV_DIST = np.array([0.0] + [1.0, np.sqrt(0.5)] * 4)


def d8_directions(dem: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """D8 flow directions of the depression-filled DEM, flats resolved.

    Parameters
    ----------
    dem
        2-D elevation raster (filled or not: depressions are filled on the way); NaN =
        nodata. Cells are taken as square.
    nodata
        Boolean mask, True where there is no data.

    Returns
    -------
    numpy.ndarray
        int8 codes: 1..8 = E, SE, S, SW, W, NW, N, NE; 0 = outlet; -1 = nodata.

    Raises
    ------
    InvalidInput
        If the DEM is not 2-D or the mask does not match it.

    Examples
    --------
    >>> dem = np.array([[5, 5, 5], [5, 4, 5], [5, 3, 5], [5, 0, 5]], dtype=np.float32)
    >>> d8_directions(dem)[1:3, 1].tolist()
    [3, 3]
    """
    z, flags = _prepare(dem, nodata)
    _seed_outlets(flags, z.shape[1])
    parent = np.full(z.size, -1, dtype=np.int32 if z.size < 2**31 else np.int64)
    _flood(z, flags, z.shape[1], parent)
    out = np.empty(z.shape, dtype=np.int8)
    _directions(z.ravel(), flags.ravel(), parent, z.shape[1], out.ravel())
    return out


def flow_accumulation(directions: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """Number of cells draining through each cell, the cell itself included.

    Parameters
    ----------
    directions
        int8 D8 codes as made by :func:`d8_directions`. A direction that leads off the
        raster or into nodata counts as an outlet.
    nodata
        Boolean mask, True where there is no data (cells coded -1 count as nodata too).

    Returns
    -------
    numpy.ndarray
        float64 accumulation; NaN at nodata.

    Raises
    ------
    InvalidInput
        If the codes are not in -1..8 or the directions hold a cycle.
    """
    d = _directions_array(directions, nodata)
    acc = np.empty(d.shape, dtype=np.float64)
    done = _accumulate(d.ravel(), d.shape[1], acc.ravel())
    if done != int((d >= 0).sum()):
        raise InvalidInput("the flow directions hold a cycle", field="directions")
    return acc


def watershed(directions: np.ndarray, row: int, col: int) -> np.ndarray:
    """All cells whose water passes through cell (row, col), that cell included.

    Parameters
    ----------
    directions
        int8 D8 codes as made by :func:`d8_directions`.
    row, col
        The pour point (row 0 is north).

    Returns
    -------
    numpy.ndarray
        Boolean mask of the watershed.

    Raises
    ------
    InvalidInput
        If the point lies outside the raster or on nodata.
    """
    d = _directions_array(directions, None)
    nrows, ncols = d.shape
    if not (0 <= row < nrows and 0 <= col < ncols) or d[row, col] < 0:
        raise InvalidInput(f"pour point (row {row}, col {col}) is outside the DEM or nodata")
    mask = np.zeros(d.shape, dtype=np.bool_)
    _upstream(d.ravel(), ncols, row * ncols + col, mask.ravel())
    return mask


def flow_paths(
    accumulation: np.ndarray, directions: np.ndarray, transform: Affine, min_cells: float
) -> list[shapely.LineString]:
    """Main flow paths: lines through the cells draining at least ``min_cells`` cells.

    Each line runs from a channel head or a confluence down to the next confluence or
    outlet, through cell centres in map coordinates, so the lines join at confluences.

    Parameters
    ----------
    accumulation
        Flow accumulation (:func:`flow_accumulation`).
    directions
        The int8 D8 codes it was made from.
    transform
        The raster's affine transform (pixel corner to map coordinates).
    min_cells
        Smallest accumulation (cells) that makes a cell part of a flow path.

    Returns
    -------
    list of shapely.LineString
        Ordered by the accumulation at their lower end, largest first.
    """
    d = _directions_array(directions, None)
    acc = np.asarray(accumulation)
    if acc.shape != d.shape:
        raise InvalidInput(f"accumulation has shape {acc.shape}, directions {d.shape}")
    stream = np.ascontiguousarray(np.nan_to_num(acc, nan=-1.0) >= min_cells) & (d >= 0)
    cells, starts = _segments(d.ravel(), stream.ravel(), d.shape[1])
    if starts.size <= 1:
        return []
    rows, cols = np.divmod(cells, d.shape[1])
    t = transform
    x = t.a * (cols + 0.5) + t.b * (rows + 0.5) + t.c  # cell centres
    y = t.d * (cols + 0.5) + t.e * (rows + 0.5) + t.f
    ids = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    lines = shapely.linestrings(np.column_stack([x, y]), indices=ids)
    order = np.argsort(-acc.ravel()[cells[starts[1:] - 1]], kind="stable")
    return list(lines[order])


def _directions_array(directions: np.ndarray, nodata: np.ndarray | None) -> np.ndarray:
    d = np.asarray(directions)
    if d.ndim != 2 or d.size == 0:
        raise InvalidInput(f"directions must be a non-empty 2-D array, not shape {d.shape}")
    if d.size and (d.min() < -1 or d.max() > 8):
        raise InvalidInput("direction codes must lie in -1..8", field="directions")
    d = np.array(d, dtype=np.int8, order="C", copy=True)
    if nodata is not None:
        nodata = np.asarray(nodata, dtype=bool)
        if nodata.shape != d.shape:
            raise InvalidInput(f"nodata mask has shape {nodata.shape}, directions {d.shape}")
        d[nodata] = NODATA_DIR
    return d


@numba.njit(cache=True)
def _target(c: int, code: int, ncols: int, nrows: int) -> int:
    """Flat index of the cell that ``code`` leads to from c, or -1 off the raster."""
    r = c // ncols + OFFSETS[code, 0]
    q = c % ncols + OFFSETS[code, 1]
    if r < 0 or r >= nrows or q < 0 or q >= ncols:
        return -1
    return r * ncols + q


@numba.njit(cache=True)
def _directions(z, flags, parent, ncols, out):  # noqa: ANN001, ANN202 - numba kernel
    nrows = z.size // ncols
    steps = np.empty(9, dtype=np.int64)
    for code in range(9):
        steps[code] = OFFSETS[code, 0] * ncols + OFFSETS[code, 1]
    for c in range(z.size):
        if flags[c] & NODATA:
            out[c] = NODATA_DIR
            continue
        if parent[c] < 0:
            out[c] = OUTLET
            continue
        best = 0.0
        code = 0
        for k in range(1, 9):
            n = _target(c, k, ncols, nrows) if flags[c] & BORDER else c + steps[k]
            if n < 0 or flags[n] & NODATA:
                continue
            drop = z[c] - z[n]
            if drop > 0 and drop * _INV_DIST[k] > best:
                best = drop * _INV_DIST[k]
                code = k
        if code == 0:  # on a flat: back along the flooding order
            p = parent[c]
            code = _CODE_OF_WINDOW[3 * (p // ncols - c // ncols + 1) + p % ncols - c % ncols + 1]
        out[c] = code


@numba.njit(cache=True)
def _accumulate(d, ncols, acc):  # noqa: ANN001, ANN202 - numba kernel
    """Accumulate in topological order without a queue; returns the cells finished."""
    nrows = d.size // ncols
    down = np.full(d.size, -1, dtype=np.int64)
    indeg = np.zeros(d.size, dtype=np.uint8)
    for c in range(d.size):
        if d[c] < 0:
            acc[c] = np.nan
            continue
        acc[c] = 1.0
        if d[c] > 0:
            n = _target(c, d[c], ncols, nrows)
            if n >= 0 and d[n] >= 0:
                down[c] = n
                indeg[n] += 1
    done = 0
    for i in range(d.size):
        if d[i] < 0 or indeg[i] != 0:
            continue
        c = i
        while True:  # walk down while each next cell has had all its inflow
            done += 1
            indeg[c] = 255
            n = down[c]
            if n < 0:
                break
            acc[n] += acc[c]
            indeg[n] -= 1
            if indeg[n] != 0:
                break
            c = n
    return done


@numba.njit(cache=True)
def _upstream(d, ncols, start, mask):  # noqa: ANN001, ANN202 - numba kernel
    nrows = d.size // ncols
    stack = np.empty(1024, dtype=np.int64)
    stack[0] = start
    top = 1
    mask[start] = True
    while top > 0:
        top -= 1
        c = stack[top]
        for k in range(1, 9):
            n = _target(c, k, ncols, nrows)
            # neighbour n drains into c if its code is the opposite of k
            if n < 0 or mask[n] or d[n] != (k + 3) % 8 + 1:
                continue
            mask[n] = True
            if top == stack.size:
                grown = np.empty(2 * stack.size, dtype=np.int64)
                grown[:top] = stack[:top]
                stack = grown
            stack[top] = n
            top += 1


@numba.njit(cache=True)
def _segments(d, stream, ncols):  # noqa: ANN001, ANN202 - numba kernel
    """Stream cells as runs from heads/confluences down to the next confluence or outlet."""
    nrows = d.size // ncols
    down = np.full(d.size, -1, dtype=np.int64)
    inflow = np.zeros(d.size, dtype=np.uint8)
    for c in range(d.size):
        if stream[c] and d[c] > 0:
            n = _target(c, d[c], ncols, nrows)
            if n >= 0 and stream[n]:
                down[c] = n
                inflow[n] += 1
    cells = np.empty(1024, dtype=np.int64)
    starts = [0]
    count = 0
    for c in range(d.size):
        if not stream[c] or inflow[c] == 1 or down[c] < 0:
            continue
        n = c
        while True:
            if count == cells.size:
                grown = np.empty(2 * cells.size, dtype=np.int64)
                grown[:count] = cells[:count]
                cells = grown
            cells[count] = n
            count += 1
            if n != c and inflow[n] != 1:
                break
            n = down[n]
            if n < 0:
                break
        starts.append(count)
    return cells[:count], np.array(starts, dtype=np.int64)
