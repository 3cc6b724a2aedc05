"""Priority-Flood depression filling and sea-seeded flood levels.

Both functions run one Priority-Flood (Barnes, Lehman and Mulla 2014, "Priority-Flood:
an optimal depression-filling and watershed-labeling algorithm for digital elevation
models", Computers & Geosciences 62, doi:10.1016/j.cageo.2013.04.024), the *improved*
variant: cells that lie inside a depression are flooded through a plain FIFO queue at the
current water level, and only cells above it go through the priority queue. The core is
written here by hand (numba), as the house rules allow for core algorithms: the well-kept
implementations (RichDEM, pysheds, whitebox) are GPL or slower.

Conventions shared by the flood modules: D8 neighbourhood; every border cell and every
cell next to nodata is an outlet (its water is lost), so a filled cell holds the lowest
level at which water can leave the raster from it; nodata is a boolean mask (True = no
data), non-finite cells (NaN) count as nodata too, and nodata stays NaN in the output;
row 0 is north.

RichDEM's ``FillDepressions(epsilon=False, topology="D8")`` (Zhou et al. 2016) gives the
same raster bit for bit wherever the nodata cells are connected to the raster border (the
sea, the area outside a survey), when it is given a nodata value below every elevation.
It has no notion of nodata otherwise: a nodata hole inside the raster is filled like a pit
there, while here its rim drains into it.

Implementation notes (speed): the priority queue is a min-heap on a preallocated numpy
array. For float32 DEMs each entry is one uint64 (the elevation's bits mapped to an
order-preserving uint32 in the high half, the flat cell index in the low half), so the heap
compares plain integers; float64 DEMs use a uint64 key array beside an index array.
The heap is 8-ary (the eight children of a node share one cache line, and each level
takes a branch-free tournament of seven comparisons); ``pop`` moves the hole down to a
leaf and sifts the last entry up from there (Floyd's bottom-up variant). Cells leave the
heap in elevation order, scattered over the raster, so their rows are rarely cached: as
soon as a cell is popped, the rows around the next one are prefetched. One uint8 flag
array holds "closed", "border" and "nodata"; only border cells pay for bounds checks.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from layers.errors import InvalidInput

__all__ = ["fill_depressions", "priority_flood_levels"]

CLOSED = np.uint8(1)
BORDER = np.uint8(2)
NODATA = np.uint8(4)

_LOW32 = np.uint64(0xFFFFFFFF)
_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)
_ROOT = 7  # heap index of the root
_INITIAL_HEAP = 1 << 16


def fill_depressions(dem: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """Fill every depression of a DEM (Priority-Flood, D8, no epsilon gradient).

    Parameters
    ----------
    dem
        2-D elevation raster, float32 or float64 (integers are converted to float64).
        NaN cells count as nodata.
    nodata
        Boolean mask, True where there is no data; ``None`` for none beyond NaN.

    Returns
    -------
    numpy.ndarray
        A new raster of the DEM's float dtype: every cell raised to the lowest level at
        which its water leaves the raster (at the border or into nodata); NaN at nodata.

    Raises
    ------
    InvalidInput
        If the DEM is not 2-D or the mask does not match it.

    Examples
    --------
    >>> dem = np.array([[3, 3, 3, 3], [3, 1, 2, 3], [3, 3, 3, 3]], dtype=np.float32)
    >>> fill_depressions(dem)[1].tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    z, flags = _prepare(dem, nodata)
    _seed_outlets(flags, z.shape[1])
    _flood(z, flags, z.shape[1])
    return _finish(z, flags)


def priority_flood_levels(
    dem: np.ndarray, seeds: np.ndarray, nodata: np.ndarray | None = None
) -> np.ndarray:
    """Lowest water level, standing at the seed cells, that reaches each cell.

    A Priority-Flood started only from ``seeds`` (e.g. the sea): a cell's level is the
    maximum of its own elevation and the lowest possible maximum elevation on a D8 path
    from a seed to it. A seed cell's level is its elevation; the valid neighbours of a
    nodata seed cell enter at their own elevation. Water never crosses nodata.

    Parameters
    ----------
    dem
        2-D elevation raster, float32 or float64 (integers become float64); NaN = nodata.
    seeds
        Boolean mask of the cells where water stands (the sea).
    nodata
        Boolean mask, True where there is no data.

    Returns
    -------
    numpy.ndarray
        Levels in the DEM's float dtype; NaN at nodata and at cells no seed reaches.

    Raises
    ------
    InvalidInput
        If the DEM is not 2-D or a mask does not match it.

    Examples
    --------
    >>> dem = np.array([[0, 2, 1, 5, 3]], dtype=np.float64)
    >>> priority_flood_levels(dem, dem == 0).tolist()
    [[0.0, 2.0, 2.0, 5.0, 5.0]]
    """
    z, flags = _prepare(dem, nodata)
    seeds = _mask(seeds, z.shape, "seeds")
    _seed_cells(flags, seeds.ravel(), z.shape[1])
    _flood(z, flags, z.shape[1])
    return _finish(z, flags)


def _mask(mask: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise InvalidInput(f"{name} mask has shape {mask.shape}, the DEM {shape}", field=name)
    return np.ascontiguousarray(mask, dtype=np.bool_)


def _prepare(dem: np.ndarray, nodata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A float working copy of the DEM and its flag array (nodata and border marked)."""
    dem = np.asarray(dem)
    if dem.ndim != 2 or dem.size == 0:
        raise InvalidInput(f"the DEM must be a non-empty 2-D array, not shape {dem.shape}")
    dtype = dem.dtype if dem.dtype in (np.float32, np.float64) else np.float64
    z = np.array(dem, dtype=dtype, order="C", copy=True)
    flags = np.zeros(z.shape, dtype=np.uint8)
    flags[0, :] = flags[-1, :] = flags[:, 0] = flags[:, -1] = BORDER
    invalid = ~np.isfinite(z)
    if nodata is not None:
        invalid |= _mask(nodata, z.shape, "nodata")
    flags[invalid] |= NODATA | CLOSED
    return z, flags


def _finish(z: np.ndarray, flags: np.ndarray) -> np.ndarray:
    z[(flags & (NODATA | CLOSED)) != CLOSED] = np.nan  # nodata, or never reached
    return z


@intrinsic
def _prefetch(typingctx, array, index):  # noqa: ANN001, ANN202 - numba intrinsic
    """Hint the CPU to fetch ``array[index]`` into the cache (llvm.prefetch; never faults)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte_ptr = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(builder.gep(data, [args[1]]), byte_ptr)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep, data cache
        return context.get_dummy_value()

    return types.void(array, index), codegen


@numba.njit(cache=True, inline="always")
def _prefetch_window(z: np.ndarray, flags: np.ndarray, c: int, ncols: int) -> None:
    """Prefetch the three rows of cell c's 3x3 window in both arrays."""
    if ncols < c < z.size - ncols - 1:
        _prefetch(z, c - ncols)
        _prefetch(z, c)
        _prefetch(z, c + ncols)
        _prefetch(flags, c - ncols)
        _prefetch(flags, c)
        _prefetch(flags, c + ncols)


@numba.njit(cache=True)
def _neighbour(i: int, k: int, ncols: int, nrows: int) -> int:
    """Flat index of cell i's neighbour k of its 3x3 window (4 = itself), -1 off the raster."""
    r = i // ncols + (k // 3 - 1)
    c = i % ncols + (k % 3 - 1)
    if r < 0 or r >= nrows or c < 0 or c >= ncols:
        return -1
    return r * ncols + c


@numba.njit(cache=True)
def _seed_outlets(flags: np.ndarray, ncols: int) -> None:
    """Close the outlets: valid border cells and valid cells next to nodata."""
    f = flags.ravel()
    nrows = f.size // ncols
    for i in range(f.size):
        if f[i] & NODATA:
            for k in range(9):
                n = _neighbour(i, k, ncols, nrows)
                if n >= 0 and not f[n] & NODATA:
                    f[n] |= CLOSED
        elif f[i] & BORDER:
            f[i] |= CLOSED


@numba.njit(cache=True)
def _seed_cells(flags: np.ndarray, seeds: np.ndarray, ncols: int) -> None:
    """Close the valid seed cells and the valid neighbours of nodata seed cells."""
    f = flags.ravel()
    nrows = f.size // ncols
    for i in range(f.size):
        if not seeds[i]:
            continue
        if not f[i] & NODATA:
            f[i] |= CLOSED
            continue
        for k in range(9):
            n = _neighbour(i, k, ncols, nrows)
            if n >= 0 and not f[n] & NODATA:
                f[n] |= CLOSED


@numba.njit(cache=True, inline="always")
def _order32(bits: np.uint32) -> np.uint64:
    """Map float32 bits to a uint32 with the same order as the floats (no NaN)."""
    if bits & np.uint32(0x80000000):
        return np.uint64(~bits & np.uint32(0xFFFFFFFF))
    return np.uint64(bits | np.uint32(0x80000000))


@numba.njit(cache=True, inline="always")
def _order64(bits: np.uint64) -> np.uint64:
    """Map float64 bits to a uint64 with the same order as the floats (no NaN)."""
    if bits & np.uint64(0x8000000000000000):
        return ~bits
    return bits | np.uint64(0x8000000000000000)


@numba.njit(cache=True, inline="always")
def _min8(keys: np.ndarray, b: int) -> tuple[np.uint64, int]:
    """Smallest of keys[b:b + 8] and its offset: a tournament of selects, no branches."""
    k0, k1, k2, k3 = keys[b], keys[b + 1], keys[b + 2], keys[b + 3]
    k4, k5, k6, k7 = keys[b + 4], keys[b + 5], keys[b + 6], keys[b + 7]
    c = k1 < k0
    m01, i01 = (k1, 1) if c else (k0, 0)
    c = k3 < k2
    m23, i23 = (k3, 3) if c else (k2, 2)
    c = k5 < k4
    m45, i45 = (k5, 5) if c else (k4, 4)
    c = k7 < k6
    m67, i67 = (k7, 7) if c else (k6, 6)
    c = m23 < m01
    ma, ia = (m23, i23) if c else (m01, i01)
    c = m67 < m45
    mb, ib = (m67, i67) if c else (m45, i45)
    return (mb, ib) if mb < ma else (ma, ia)


# The heaps are 8-ary and start at index 7 (_ROOT), so the eight children of node j
# (8j+1 .. 8j+8) fill one aligned 64-byte cache line. The eight slots past the last entry
# hold the maximum key, so a node with fewer than eight children needs no test.


@numba.njit(cache=True, inline="always")
def _push_packed(keys: np.ndarray, size: int, key: np.uint64) -> None:
    hole = size
    while hole > 0:
        parent = (hole - 1) >> 3
        if keys[parent + _ROOT] <= key:
            break
        keys[hole + _ROOT] = keys[parent + _ROOT]
        hole = parent
    keys[hole + _ROOT] = key


@numba.njit(cache=True, inline="always")
def _pop_packed(keys: np.ndarray, size: int) -> None:
    """Remove the root of a heap of ``size`` keys: move the hole to a leaf, sift up."""
    size -= 1
    last = keys[size + _ROOT]
    keys[size + _ROOT : size + _ROOT + 8] = _MAX
    hole = 0
    child = 1
    while child < size:
        m, i = _min8(keys, child + _ROOT)
        keys[hole + _ROOT] = m
        hole = child + i
        child = 8 * hole + 1
    while hole > 0:
        parent = (hole - 1) >> 3
        if keys[parent + _ROOT] <= last:
            break
        keys[hole + _ROOT] = keys[parent + _ROOT]
        hole = parent
    keys[hole + _ROOT] = last


@numba.njit(cache=True, inline="always")
def _push_pair(keys: np.ndarray, vals: np.ndarray, size: int, key: np.uint64, val: int) -> None:
    hole = size
    while hole > 0:
        parent = (hole - 1) >> 3
        if keys[parent + _ROOT] <= key:
            break
        keys[hole + _ROOT] = keys[parent + _ROOT]
        vals[hole + _ROOT] = vals[parent + _ROOT]
        hole = parent
    keys[hole + _ROOT] = key
    vals[hole + _ROOT] = val


@numba.njit(cache=True, inline="always")
def _pop_pair(keys: np.ndarray, vals: np.ndarray, size: int) -> None:
    size -= 1
    last = keys[size + _ROOT]
    last_val = vals[size + _ROOT]
    keys[size + _ROOT : size + _ROOT + 8] = _MAX
    hole = 0
    child = 1
    while child < size:
        m, i = _min8(keys, child + _ROOT)
        keys[hole + _ROOT] = m
        vals[hole + _ROOT] = vals[child + _ROOT + i]
        hole = child + i
        child = 8 * hole + 1
    while hole > 0:
        parent = (hole - 1) >> 3
        if keys[parent + _ROOT] <= last:
            break
        keys[hole + _ROOT] = keys[parent + _ROOT]
        vals[hole + _ROOT] = vals[parent + _ROOT]
        hole = parent
    keys[hole + _ROOT] = last
    vals[hole + _ROOT] = last_val


@numba.njit(cache=True)
def _grown(a: np.ndarray, fill) -> np.ndarray:  # noqa: ANN001 - scalar of a's dtype
    b = np.full(2 * a.size, fill, dtype=a.dtype)
    b[: a.size] = a
    return b


def _flood(z: np.ndarray, flags: np.ndarray, ncols: int, parent: np.ndarray | None = None) -> None:
    """Run the Priority-Flood from the closed valid cells, raising ``z`` in place.

    ``parent`` (flat, filled with -1), when given, receives for each cell reached from
    another the flat index of the cell that first reached it, its predecessor in the
    Priority-Flood order; :mod:`flood.flow` routes water across flats with it.
    """
    record = parent is not None
    if parent is None:
        parent = np.empty(1, dtype=np.int32)
    if z.dtype == np.float32 and z.size < 2**32:
        _flood32(z.ravel(), flags.ravel(), ncols, parent, record)
    else:
        _flood64(z.ravel(), flags.ravel(), ncols, parent, record)


@numba.njit(cache=True)
def _offsets(ncols: int) -> np.ndarray:
    return np.array(
        [-ncols - 1, -ncols, -ncols + 1, -1, 1, ncols - 1, ncols, ncols + 1], dtype=np.int64
    )


@numba.njit(cache=True)
def _frontier_seeds(flags: np.ndarray, ncols: int) -> np.ndarray:
    """Closed valid cells with at least one open neighbour (the others need no visit)."""
    nrows = flags.size // ncols
    out = np.empty(flags.size if flags.size < 1 << 20 else 1 << 20, dtype=np.int64)
    count = 0
    for i in range(flags.size):
        if (flags[i] & (CLOSED | NODATA)) != CLOSED:
            continue
        for k in range(9):
            n = _neighbour(i, k, ncols, nrows)
            if n >= 0 and not flags[n] & CLOSED:
                if count == out.size:
                    out = _grown(out, 0)
                out[count] = i
                count += 1
                break
    return out[:count]


@numba.njit(cache=True)
def _flood32(z, flags, ncols, parent, record):  # noqa: ANN001, ANN202 - numba kernel
    """Priority-Flood of a float32 raster; heap entries are (ordered elevation, index)."""
    bits = z.view(np.uint32)
    nrows = z.size // ncols
    offs = _offsets(ncols)
    seeds = _frontier_seeds(flags, ncols)
    heap = np.full(max(_INITIAL_HEAP, 2 * seeds.size + 32), _MAX, dtype=np.uint64)
    size = seeds.size
    for j in range(size):
        heap[j + _ROOT] = (_order32(bits[seeds[j]]) << np.uint64(32)) | np.uint64(seeds[j])
    heap[_ROOT : size + _ROOT].sort()  # a sorted array is a valid heap
    pit = np.empty(_INITIAL_HEAP, dtype=np.int64)
    head = 0
    tail = 0
    while True:
        if head < tail:
            c = pit[head]
            head += 1
        elif size > 0:
            head = 0
            tail = 0
            c = np.int64(heap[_ROOT] & _LOW32)
            _pop_packed(heap, size)
            size -= 1
            _prefetch_window(z, flags, np.int64(heap[_ROOT] & _LOW32), ncols)
        else:
            break
        level = z[c]
        border = flags[c] & BORDER
        for k in range(8):
            if border:
                n = _neighbour(c, k + (k >= 4), ncols, nrows)
                if n < 0:
                    continue
            else:
                n = c + offs[k]
            if flags[n] & CLOSED:
                continue
            flags[n] |= CLOSED
            if record:
                parent[n] = c
            if z[n] <= level:
                if z[n] < level:
                    z[n] = level
                if tail == pit.size:
                    pit = _grown(pit, 0)
                pit[tail] = n
                tail += 1
            else:
                if size + 2 * _ROOT + 2 >= heap.size:
                    heap = _grown(heap, _MAX)
                _push_packed(heap, size, (_order32(bits[n]) << np.uint64(32)) | np.uint64(n))
                size += 1


@numba.njit(cache=True)
def _flood64(z, flags, ncols, parent, record):  # noqa: ANN001, ANN202 - numba kernel
    """Priority-Flood of a float64 raster; heap keys (ordered elevations) beside indices."""
    bits = z.view(np.uint64)
    nrows = z.size // ncols
    offs = _offsets(ncols)
    seeds = _frontier_seeds(flags, ncols)
    seeds = seeds[np.argsort(z[seeds])]  # a sorted array is a valid heap
    keys = np.full(max(_INITIAL_HEAP, 2 * seeds.size + 32), _MAX, dtype=np.uint64)
    vals = np.zeros(keys.size, dtype=np.int64)
    size = seeds.size
    for j in range(size):
        keys[j + _ROOT] = _order64(bits[seeds[j]])
        vals[j + _ROOT] = seeds[j]
    pit = np.empty(_INITIAL_HEAP, dtype=np.int64)
    head = 0
    tail = 0
    while True:
        if head < tail:
            c = pit[head]
            head += 1
        elif size > 0:
            head = 0
            tail = 0
            c = vals[_ROOT]
            _pop_pair(keys, vals, size)
            size -= 1
            _prefetch_window(z, flags, vals[_ROOT], ncols)
        else:
            break
        level = z[c]
        border = flags[c] & BORDER
        for k in range(8):
            if border:
                n = _neighbour(c, k + (k >= 4), ncols, nrows)
                if n < 0:
                    continue
            else:
                n = c + offs[k]
            if flags[n] & CLOSED:
                continue
            flags[n] |= CLOSED
            if record:
                parent[n] = c
            if z[n] <= level:
                if z[n] < level:
                    z[n] = level
                if tail == pit.size:
                    pit = _grown(pit, 0)
                pit[tail] = n
                tail += 1
            else:
                if size + 2 * _ROOT + 2 >= keys.size:
                    keys = _grown(keys, _MAX)
                    vals = _grown(vals, 0)
                _push_pair(keys, vals, size, _order64(bits[n]), n)
                size += 1
