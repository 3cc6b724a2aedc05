"""Priority-Flood depression filling, tile by tile, for DEMs larger than memory.

The method is that of Barnes 2016 ("Parallel Priority-Flood depression filling for
trillion cell digital elevation models", arXiv 1606.06204), written here by hand (numba
kernels; the house rules allow hand-written core algorithms): each tile is flooded on its
own, the tiles agree through a small graph of labels, and each tile is then finished on
its own. The result equals the in-memory fill cell for cell, because only max and min of
the input elevations are ever taken: ``flood.fill.fill_depressions``, and RichDEM's
``FillDepressions(epsilon=False, topology="D8")`` wherever nodata touches the raster
border (RichDEM fills inner nodata holes as pits, where geoby drains into them).

Conventions are those of every flood module: D8; every cell on the raster border and every
cell next to nodata is an outlet; nodata is a boolean mask (NaN counts too) and stays NaN.

Steps
-----
1. **Survey** (one task per tile, in parallel). The tile is read with a one-cell halo, used
   only to see nodata across tile edges. Outlets (on the raster border or next to nodata)
   take label 0; every cell on the tile's perimeter is a seed. A Priority-Flood from the
   seeds gives each cell its local level ``w`` (the lowest level at which it drains to a
   seed inside the tile) and a label: that of the flood that reaches it first, or for a
   seed that no flood reaches below its own elevation, a new label 1..k (as in Barnes
   2016, so a tile has about as many labels as basins touching its edge, not edge cells).
   For each pair of adjacent labels the task keeps the lowest level at which they touch,
   ``min max(w(x), w(y))`` over neighbouring cells ``x``, ``y`` with those labels.
2. **Merge** (on the client: the tile-merge step). Only O(perimeter) per tile crosses the
   network: the four edge strips (label and elevation of each perimeter cell) and the label
   graph (a few edges per label; the graph is planar). A 1024 x 1024 float32 tile of rough
   terrain sends about 40 kB instead of its 4 MB of cells. The strips of neighbouring tiles
   are laid side by side along each tile boundary, and every D8 pair across it (across
   edges and at corners) becomes an edge weighted by the higher of the two elevations (the
   lowest such edge is kept per pair of labels). A Priority-Flood on this global graph from
   label 0 (Dijkstra with max for +) gives each label its spill level ``S``: the lowest
   level at which water from it leaves the raster. The client holds only strips, graph and
   spill levels, plus one finished tile at a time while writing.
3. **Finish** (one task per tile). Each cell is filled to ``max(w, S[label])``. With
   ``strategy="retain"`` the labels and levels of step 1 stay in worker memory and this is
   one vectorised pass; with ``strategy="recompute"`` nothing of full size is kept: the tile
   is read again and flooded from its perimeter cells standing at ``max(z, S[label])``
   (sent back with the task: O(perimeter) again; Barnes's "evict" strategy: one more flood
   per cell, no storage).

Why it is exact: a cell's fill is the lowest, over paths to an outlet, of the highest
elevation on the path. Every such path meets a seed of the cell's tile, and minimax levels
are ultrametric, so the fill is ``min_s max(m(c, s), F(s))`` over the tile's seeds ``s``
(``m`` the in-tile minimax, ``F`` the seed's fill), which equals ``max(w(c), F(seed(c)))``;
and the label graph has the same minimax distances between seeds as the cells have.

The per-tile flood is the "improved" Priority-Flood (Barnes, Lehman and Mulla 2014: cells
below the current level go through a FIFO queue, not the heap) with a slope stack after
Zhou, Sun and Fu 2016 (cells that end at their own elevation mostly skip the heap).

Runs on Dask futures. With ``client=None`` a local ``dask.distributed`` cluster of two
single-threaded workers in this process is started and closed (threads, not processes: the
numba kernels release the GIL, and tiles are never pickled). Pass a client to use a real
cluster; its workers must then be able to read the source raster's path.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from operator import itemgetter
from os import PathLike
from typing import NamedTuple

import numba
import numpy as np
import rasterio
from rasterio.windows import Window

from layers.errors import InvalidInput

__all__ = ["fill_depressions_tiled"]

logger = logging.getLogger(__name__)

NODATA = -1
OPEN = -2  # label of a cell not reached yet
UNNAMED = -3  # a perimeter seed not yet reached by any label


# --------------------------------------------------------------------------- public API


def fill_depressions_tiled(
    src: np.ndarray | str | PathLike,
    dst: str | PathLike | None = None,
    *,
    tile: tuple[int, int] = (1024, 1024),
    client=None,
    nodata: np.ndarray | None = None,
    strategy: str | None = None,
) -> np.ndarray | None:
    """Fill every depression of a DEM tile by tile (Barnes 2016), equal to the in-memory fill.

    Parameters
    ----------
    src
        A 2-D elevation array (float32 or float64; integers become float64; NaN = nodata) or
        the path of a raster (band 1; its nodata value or mask and NaN mark nodata), read
        window by window.
    dst
        Where to write the filled DEM as a tiled GeoTIFF (georeferencing copied from a raster
        ``src``, nodata NaN). Tiles are written as they finish; nothing of full size is held
        on the client. ``None`` returns the filled array instead.
    tile
        Tile shape (rows, columns); edge tiles may be smaller.
    client
        A ``dask.distributed.Client``. ``None`` starts a local cluster of two workers for this
        call and closes it afterwards.
    nodata
        Boolean mask, True where there is no data (array ``src`` only).
    strategy
        ``"retain"`` keeps each tile's labels and levels in worker memory between the survey
        and the finish (about ``4 + itemsize`` bytes per cell across the cluster);
        ``"recompute"`` keeps nothing and floods each tile twice. Default: ``"retain"`` for
        an array, ``"recompute"`` for a path.

    Returns
    -------
    numpy.ndarray or None
        The filled DEM in the source's float dtype, NaN at nodata; ``None`` when ``dst`` is
        given.

    Raises
    ------
    InvalidInput
        If the DEM is not 2-D, the mask does not match, or the tile shape is not positive.

    Examples
    --------
    >>> dem = np.array([[3, 3, 3, 3], [3, 1, 2, 3], [3, 3, 3, 3]], dtype=np.float32)
    >>> fill_depressions_tiled(dem, tile=(2, 2))[1].tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    source = _Source.open(src, nodata)
    th, tw = (int(t) for t in tile)
    if th < 1 or tw < 1:
        raise InvalidInput(f"tile shape must be positive, not {tile}", field="tile")
    if strategy is None:
        strategy = "recompute" if source.path else "retain"
    if strategy not in ("retain", "recompute"):
        raise InvalidInput(f"unknown strategy {strategy!r}", field="strategy")
    if client is not None:
        return _run(client, source, dst, (th, tw), strategy)
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as own,
    ):
        return _run(own, source, dst, (th, tw), strategy)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _Source:
    """The DEM to fill: an in-memory array (with its mask) or a raster path."""

    shape: tuple[int, int]
    dtype: np.dtype
    path: str | None = None
    array: np.ndarray | None = None
    mask: np.ndarray | None = None

    @classmethod
    def open(cls, src, nodata: np.ndarray | None) -> _Source:
        if isinstance(src, str | PathLike):
            if nodata is not None:
                raise InvalidInput("a nodata mask goes with an array, not a path", field="nodata")
            with rasterio.open(src) as ds:
                shape, dtype = (ds.height, ds.width), np.dtype(ds.dtypes[0])
            return cls(shape, _float_dtype(dtype), path=str(src))
        dem = np.asarray(src)
        if dem.ndim != 2 or dem.size == 0:
            raise InvalidInput(f"the DEM must be a non-empty 2-D array, not shape {dem.shape}")
        if nodata is not None:
            nodata = np.asarray(nodata, dtype=bool)
            if nodata.shape != dem.shape:
                raise InvalidInput(
                    f"nodata mask has shape {nodata.shape}, the DEM {dem.shape}", field="nodata"
                )
        return cls(dem.shape, _float_dtype(dem.dtype), array=dem, mask=nodata)

    def block(self, rows: slice, cols: slice):
        """What a task needs to read one window: array views, or the path and window."""
        if self.path is not None:
            return (self.path, rows, cols, self.dtype)
        mask = None if self.mask is None else self.mask[rows, cols]
        return (self.array[rows, cols], mask, self.dtype)


def _float_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(dtype) if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _read(block) -> tuple[np.ndarray, np.ndarray]:
    """Elevations (contiguous, float) and the nodata mask of one window."""
    if isinstance(block[0], str):
        path, rows, cols, dtype = block
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        with rasterio.open(path) as ds:
            z = ds.read(1, window=window, out_dtype=dtype)
            invalid = ds.read_masks(1, window=window) == 0
    else:
        z, mask, dtype = block
        z = np.ascontiguousarray(z, dtype=dtype)
        invalid = np.zeros(z.shape, bool) if mask is None else np.array(mask, dtype=bool)
    invalid |= ~np.isfinite(z)
    return z, invalid


class _Tile(NamedTuple):
    """One tile: its place in the tile grid and raster, and its halo widths."""

    index: int
    rows: slice  # core rows in the raster
    cols: slice
    halo: tuple[int, int, int, int]  # top, bottom, left, right: 1 where a neighbour exists
    block: object  # what _read takes (or a future of it)


def _tiles(source: _Source, tile: tuple[int, int]) -> list[list[_Tile]]:
    (h, w), (th, tw) = source.shape, tile
    grid = []
    for r0 in range(0, h, th):
        r1 = min(r0 + th, h)
        row = []
        for c0 in range(0, w, tw):
            c1 = min(c0 + tw, w)
            halo = (int(r0 > 0), int(r1 < h), int(c0 > 0), int(c1 < w))
            outer = (slice(r0 - halo[0], r1 + halo[1]), slice(c0 - halo[2], c1 + halo[3]))
            index = len(grid) * math.ceil(w / tw) + len(row)
            row.append(_Tile(index, slice(r0, r1), slice(c0, c1), halo, source.block(*outer)))
        grid.append(row)
    return grid


# --------------------------------------------------------------------------- tasks


class _Survey(NamedTuple):
    """Step 1's answer for one tile: O(perimeter) numbers."""

    k: int  # labels 1..k are this tile's perimeter seeds
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]  # label a < label b, lowest level
    top: tuple[np.ndarray, np.ndarray]  # labels, elevations of the first row
    bottom: tuple[np.ndarray, np.ndarray]
    left: tuple[np.ndarray, np.ndarray]
    right: tuple[np.ndarray, np.ndarray]


def _seeded(block, halo) -> tuple[np.ndarray, np.ndarray]:
    """The tile's elevations and its seeds (see ``_seed_labels``)."""
    z, invalid = _read(block)
    t, b, left, r = halo
    core = np.ascontiguousarray(z[t : z.shape[0] - b, left : z.shape[1] - r])
    return core, _seed_labels(invalid, t, b, left, r)


def _survey(block, halo, retain: bool):
    z, labels = _seeded(block, halo)
    level = z.copy()
    k = _flood(z, labels, level)
    edges = _label_edges(labels, level, k)
    strips = [(labels[i].copy(), z[i].copy()) for i in _SIDES]
    survey = _Survey(k, edges, *strips)
    return survey, ((labels, level) if retain else None)


_SIDES = (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1])  # top, bottom, left, right


def _finish_retained(kept, spill: np.ndarray) -> np.ndarray:
    labels, level = kept
    out = np.maximum(level, spill[np.maximum(labels, 0)])
    out[labels < 0] = np.nan
    return out


def _finish_recomputed(block, halo, seed_levels: list[np.ndarray]) -> np.ndarray:
    z, labels = _seeded(block, halo)
    level = z.copy()
    for side, seeds in zip(_SIDES, seed_levels, strict=True):
        level[side] = seeds  # perimeter cells stand at their label's spill level
    _flood(z, labels, level)
    level[labels == NODATA] = np.nan
    return level


# --------------------------------------------------------------------------- driver


def _run(client, source: _Source, dst, tile, strategy: str) -> np.ndarray | None:
    grid = _tiles(source, tile)
    tiles = [t for row in grid for t in row]
    if source.path is None:  # send each block to the cluster once, for both passes
        blocks = client.scatter([t.block for t in tiles], hash=False)
        tiles = [t._replace(block=b) for t, b in zip(tiles, blocks, strict=True)]
    retain = strategy == "retain"
    both = [client.submit(_survey, t.block, t.halo, retain, pure=False) for t in tiles]
    kept = [client.submit(itemgetter(1), f, pure=False) for f in both] if retain else None
    surveys = client.gather([client.submit(itemgetter(0), f, pure=False) for f in both])
    del both  # the surveys are here, the kept rasters stay on the workers
    spills = _merge(grid, surveys, source.dtype)
    if retain:
        return _collect(client, source, dst, tiles, _finish_retained, kept, spills)
    seeds = [_seed_levels(s, spill) for s, spill in zip(surveys, spills, strict=True)]
    blocks, halos = [t.block for t in tiles], [t.halo for t in tiles]
    return _collect(client, source, dst, tiles, _finish_recomputed, blocks, halos, seeds)


def _seed_levels(survey: _Survey, spill: np.ndarray) -> list[np.ndarray]:
    """Where the perimeter cells of a tile stand in the finish: max(z, their label's spill)."""
    sides = (survey.top, survey.bottom, survey.left, survey.right)
    return [np.maximum(z, spill[np.maximum(labels, 0)]) for labels, z in sides]


def _merge(grid: list[list[_Tile]], surveys: list[_Survey], dtype: np.dtype) -> list[np.ndarray]:
    """The tile-merge step: label spill levels from strips and label graphs (see module doc)."""
    ks = np.array([s.k for s in surveys], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(ks)[:-1]])  # global label = base + local (local > 0)

    def glob(labels: np.ndarray, t: int) -> np.ndarray:
        labels = labels.astype(np.int64)
        return np.where(labels > 0, labels + base[t], labels)

    def strip(t: int, side: str) -> tuple[np.ndarray, np.ndarray]:
        labels, z = getattr(surveys[t], side)
        return glob(labels, t), z

    parts = [(glob(s.edges[0], t), glob(s.edges[1], t), s.edges[2]) for t, s in enumerate(surveys)]
    for upper, lower in zip(grid[:-1], grid[1:], strict=True):  # horizontal tile boundaries
        parts.append(_across([strip(t.index, "bottom") for t in upper],
                             [strip(t.index, "top") for t in lower]))  # fmt: skip
    for j in range(len(grid[0]) - 1):  # vertical tile boundaries
        parts.append(_across([strip(row[j].index, "right") for row in grid],
                             [strip(row[j + 1].index, "left") for row in grid]))  # fmt: skip
    a, b, w = (np.concatenate([p[i] for p in parts]) for i in range(3))
    n = 1 + int(ks.sum())
    spill = _spill_levels(n, a, b, w.astype(np.float64))
    if not np.isfinite(spill[1:]).all():
        raise RuntimeError("tile merge left a label with no way to an outlet")
    logger.info("tile merge: %d tiles, %d labels, %d label edges", len(surveys), n, a.size)
    out = []
    for t, k in enumerate(ks):
        local = np.empty(k + 1, dtype=dtype)
        local[0] = -np.inf  # outlets spill at their own elevation
        local[1:] = spill[base[t] + 1 : base[t] + k + 1]
        out.append(local)
    return out


def _across(first: list, second: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges for every D8 pair across one tile boundary, from the strips on either side."""
    la, za = (np.concatenate([s[i] for s in first]) for i in range(2))
    lb, zb = (np.concatenate([s[i] for s in second]) for i in range(2))
    n = la.size
    out = []
    for d in (-1, 0, 1):  # cell x on one side touches x + d on the other
        xa, xb = slice(max(0, -d), n - max(0, d)), slice(max(0, d), n - max(0, -d))
        a, b = la[xa], lb[xb]
        ok = (a >= 0) & (b >= 0) & (a != b)
        out.append((a[ok], b[ok], np.maximum(za[xa], zb[xb])[ok]))
    return _lowest_edges(*(np.concatenate([o[i] for o in out]) for i in range(3)))


def _lowest_edges(a: np.ndarray, b: np.ndarray, w: np.ndarray):
    """One edge per label pair, the lowest (a boundary crosses the same pair many times)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    first = np.ones(lo.size, dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], w[first]


def _collect(client, source: _Source, dst, tiles: list[_Tile], finish, *args: list):
    """Run ``finish(*args[i])`` for each tile; gather the tiles into an array, or write them
    to ``dst`` as they arrive. A few tasks at a time, so that finished tiles never pile up
    on the workers or here."""
    from dask.distributed import as_completed

    todo = iter(range(len(tiles)))
    running = as_completed()
    where = {}

    def submit_next() -> None:
        for i in todo:
            future = client.submit(finish, *(a[i] for a in args), pure=False)
            where[future.key] = tiles[i]
            running.add(future)
            return

    for _ in range(2 * max(1, sum(client.nthreads().values()))):
        submit_next()
    out = np.empty(source.shape, dtype=source.dtype) if dst is None else None
    writer = rasterio.open(dst, "w", **_profile(source, tiles)) if dst else nullcontext()
    with rasterio.Env(GDAL_CACHEMAX=64), writer as ds:  # a bounded block cache (MB)
        for future in running:
            t, tile = where.pop(future.key), future.result()
            future.release()
            submit_next()
            if ds is None:
                out[t.rows, t.cols] = tile
            else:
                ds.write(tile, 1, window=Window.from_slices(t.rows, t.cols))
    return out


def _profile(source: _Source, tiles: list[_Tile]) -> dict:
    """A tiled GeoTIFF profile whose blocks never straddle two tiles (else uncompressed)."""
    profile = {"crs": None, "transform": rasterio.Affine.identity()}
    if source.path is not None:
        with rasterio.open(source.path) as ds:
            profile = {"crs": ds.crs, "transform": ds.transform}
    th = tiles[0].rows.stop - tiles[0].rows.start
    tw = tiles[0].cols.stop - tiles[0].cols.start
    block = next((b for b in (512, 256, 128, 64, 32, 16) if th % b == 0 and tw % b == 0), None)
    h, w = source.shape
    profile.update(driver="GTiff", height=h, width=w, count=1, dtype=source.dtype.name,
                   nodata=np.nan, tiled=True, blockxsize=block or 256, blockysize=block or 256,
                   BIGTIFF="IF_SAFER")  # fmt: skip
    if block is not None or (h <= th and w <= tw):
        profile.update(compress="deflate", predictor=3)
    return profile


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)
def _seed_labels(invalid: np.ndarray, top: int, bottom: int, left: int, right: int):
    """Labels of a tile's core before the flood: NODATA, 0 for outlets, UNNAMED for the other
    perimeter cells (seeds), OPEN for the rest.

    ``invalid`` covers the core plus the halo (1 on a side where another tile lies, 0 on the
    raster border).
    """
    hh, ww = invalid.shape
    h, w = hh - top - bottom, ww - left - right
    labels = np.full((h, w), OPEN, dtype=np.int32)
    for i in range(h):
        for j in range(w):
            bi, bj = i + top, j + left
            if invalid[bi, bj]:
                labels[i, j] = NODATA
                continue
            outlet = (
                (i == 0 and top == 0)
                or (i == h - 1 and bottom == 0)
                or (j == 0 and left == 0)
                or (j == w - 1 and right == 0)
            )
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    ni, nj = bi + di, bj + dj
                    if 0 <= ni < hh and 0 <= nj < ww and invalid[ni, nj]:
                        outlet = True
            if outlet:
                labels[i, j] = 0
            elif i == 0 or i == h - 1 or j == 0 or j == w - 1:
                labels[i, j] = UNNAMED
    return labels


@numba.njit(cache=True, nogil=True, inline="always")
def _push(keys, vals, size, key, val):
    """Binary min-heap on ``keys`` (``vals`` moves along); returns the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if keys[p] <= key:
            break
        keys[i] = keys[p]
        vals[i] = vals[p]
        i = p
    keys[i] = key
    vals[i] = val
    return size + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _pop(keys, vals, size):
    """Drop the smallest entry (read it first from keys[0], vals[0]); return the new size."""
    size -= 1
    key, val = keys[size], vals[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[c + 1] < keys[c]:
            c += 1
        if keys[c] >= key:
            break
        keys[i] = keys[c]
        vals[i] = vals[c]
        i = c
    keys[i] = key
    vals[i] = val
    return size


def _flood(z: np.ndarray, labels: np.ndarray, level: np.ndarray) -> int:
    """Priority-Flood from the seeds (label 0 or UNNAMED, standing at ``level``), in place.

    Every open cell takes the label of the seed that floods it and its level (the lowest
    level at which it drains to a seed). An unnamed seed takes the label of the first
    flood that reaches it at no more than its level (as in Barnes 2016), or else a new
    label 1, 2, ... when its turn comes; returns the number of new labels. The "improved"
    variant of Barnes et al. 2014: cells at or below the current level go through a plain
    FIFO queue, not the heap. Float32 tiles pack (level, index) into one uint64 heap key,
    which compares fastest.
    """
    if not (labels.flags.c_contiguous and level.flags.c_contiguous):
        raise ValueError("labels and level are filled in place and must be C-contiguous")
    h, w = z.shape
    packed = z.dtype == np.float32 and z.size < 2**32
    if packed:
        keys = vals = np.empty(z.size, dtype=np.uint64)  # the key holds the index
        bits = level.ravel().view(np.uint32)
    else:
        keys, vals, bits = np.empty(z.size, dtype=z.dtype), np.empty(z.size, np.int64), None
    index = np.int32 if z.size < 2**31 else np.int64
    queues = np.empty((2, z.size), dtype=index)  # the pit FIFO and the slope stack
    return _flood_kernel(z.ravel(), labels.ravel(), level.ravel(), h, w, keys, vals, bits, queues)


@numba.njit(cache=True, nogil=True, inline="always")
def _key32(bits, i):
    """The float32's bits mapped to a uint32 of the same order, then the cell index."""
    if bits & np.uint32(0x80000000):
        o = np.uint64(~bits & np.uint32(0xFFFFFFFF))
    else:
        o = np.uint64(bits | np.uint32(0x80000000))
    return (o << np.uint64(32)) | np.uint64(i)


@numba.njit(cache=True, nogil=True, inline="always")
def _neighbour(c, k, r, col, h, w, inside, offs):
    """Flat index of cell c's k-th D8 neighbour, or -1 outside the tile."""
    if inside:
        return c + offs[k]
    rr, cc = r + (k + (k > 3)) // 3 - 1, col + (k + (k > 3)) % 3 - 1
    if rr < 0 or rr >= h or cc < 0 or cc >= w:
        return -1
    return rr * w + cc


@numba.njit(cache=True, nogil=True, inline="always")
def _climbs(c, zf, lab, lev, h, w, offs):
    """True if c may be processed at once, out of level order: each open neighbour lower
    than c has a closed neighbour below c's elevation, which will flood it lower."""
    r = c // w
    col = c - r * w
    inside = 0 < r < h - 1 and 0 < col < w - 1
    for k in range(8):
        m = _neighbour(c, k, r, col, h, w, inside, offs)
        if m < 0 or lab[m] != OPEN or zf[m] >= zf[c]:
            continue
        rm = m // w
        cm = m - rm * w
        minside = 0 < rm < h - 1 and 0 < cm < w - 1
        drains = False
        for q in range(8):
            x = _neighbour(m, q, rm, cm, h, w, minside, offs)
            if x >= 0 and lab[x] != OPEN and lab[x] != NODATA and lev[x] < zf[c]:
                drains = True
                break
        if not drains:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _flood_kernel(zf, lab, lev, h, w, keys, vals, bits, queues):
    """See _flood. ``bits`` is the float32 view of ``lev`` (packed keys), or None.

    Three queues: the heap (cells in level order), the pit FIFO (cells at the level of the
    last heap pop) and the slope stack. A cell reached above the current level ends at its
    own elevation. If each open neighbour lower than it has a closed neighbour lower still
    (which will flood it at a lower level), the cell goes on the stack and is processed at
    once, out of order, leaving those lower neighbours alone: its other open neighbours
    end at their own elevations whatever the order. Otherwise it waits in the heap (the
    idea of Zhou, Sun and Fu 2016). Pit and stack are emptied before each heap pop, so
    every cell processed in order meets only levels it may trust, and every level is exact.
    """
    n = zf.size
    pit, slope = queues[0], queues[1]
    offs = np.array([-w - 1, -w, -w + 1, -1, 1, w - 1, w, w + 1], dtype=np.int64)
    size = head = tail = top = k = 0
    for i in range(n):
        if lab[i] >= 0 or lab[i] == UNNAMED:
            if bits is None:
                size = _push(keys, vals, size, lev[i], i)
            else:
                key = _key32(bits[i], i)
                size = _push(keys, vals, size, key, key)
    while True:
        ordered = True  # c is processed in level order (heap or pit), not from the stack
        if head < tail:
            c = np.int64(pit[head])
            head += 1
        elif top > 0:
            top -= 1
            c = np.int64(slope[top])
            ordered = False
        elif size > 0:
            if bits is None:
                c = np.int64(vals[0])
            else:
                c = np.int64(keys[0] & np.uint64(0xFFFFFFFF))
            size = _pop(keys, vals, size)
            head = tail = 0
        else:
            return k
        if lab[c] == UNNAMED:
            k += 1
            lab[c] = k
        level, label = lev[c], lab[c]
        r = c // w
        col = c - r * w
        inside = 0 < r < h - 1 and 0 < col < w - 1
        for q in range(8):
            nb = _neighbour(c, q, r, col, h, w, inside, offs)
            if nb < 0 or (not ordered and zf[nb] < level):
                continue  # a lower neighbour of a slope cell is left to a lower cell
            if lab[nb] == UNNAMED and lev[nb] >= level:  # a queued seed keeps its level
                lab[nb] = label
            if lab[nb] != OPEN:
                continue
            lab[nb] = label
            if ordered and zf[nb] <= level:
                lev[nb] = level
                pit[tail] = nb
                tail += 1
                continue
            lev[nb] = zf[nb]
            if _climbs(nb, zf, lab, lev, h, w, offs):
                slope[top] = nb
                top += 1
            elif bits is None:
                size = _push(keys, vals, size, zf[nb], nb)
            else:
                key = _key32(bits[nb], nb)
                size = _push(keys, vals, size, key, key)


@numba.njit(cache=True, nogil=True)
def _label_edges(labels: np.ndarray, level: np.ndarray, k: int):
    """For each pair of adjacent labels (a < b), the lowest ``max(level)`` where they touch."""
    h, w = labels.shape
    keys = np.empty(1024, dtype=np.int64)
    wts = np.empty(1024, dtype=level.dtype)
    m = 0
    for r in range(h):
        for c in range(w):
            a = labels[r, c]
            if a < 0:
                continue
            for q in range(4):  # E, SW, S, SE: each pair once
                rr, cc = (r, c + 1) if q == 0 else (r + 1, c + q - 2)
                if rr >= h or cc < 0 or cc >= w:
                    continue
                b = labels[rr, cc]
                if b == a or b < 0:
                    continue
                if m == keys.size:
                    keys = np.concatenate((keys, np.empty(m, dtype=np.int64)))
                    wts = np.concatenate((wts, np.empty(m, dtype=level.dtype)))
                keys[m] = min(a, b) * np.int64(k + 1) + max(a, b)
                wts[m] = max(level[r, c], level[rr, cc])
                m += 1
    return _min_per_key(keys[:m], wts[:m], k + 1)


@numba.njit(cache=True, nogil=True)
def _min_per_key(keys: np.ndarray, wts: np.ndarray, base: int):
    """Split keys ``a * base + b`` back into (a, b) and keep the lowest weight of each."""
    order = np.argsort(keys)
    ea = np.empty(keys.size, dtype=np.int32)
    eb = np.empty(keys.size, dtype=np.int32)
    ew = np.empty(keys.size, dtype=wts.dtype)
    u = -1
    last = np.int64(-1)
    for i in order:
        if keys[i] != last:
            u += 1
            last = keys[i]
            ea[u], eb[u], ew[u] = last // base, last % base, wts[i]
        elif wts[i] < ew[u]:
            ew[u] = wts[i]
    return ea[: u + 1].copy(), eb[: u + 1].copy(), ew[: u + 1].copy()


def _spill_levels(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Minimax level from label 0 (the outlets) to every label of the global graph."""
    src = np.concatenate([a, b])
    order = np.argsort(src, kind="stable")
    adj = np.concatenate([b, a])[order]
    wts = np.concatenate([w, w])[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return _minimax(indptr, adj, wts)


@numba.njit(cache=True, nogil=True)
def _minimax(indptr: np.ndarray, adj: np.ndarray, wts: np.ndarray) -> np.ndarray:
    """Priority-Flood on a graph (Dijkstra with max for +), from node 0."""
    n = indptr.size - 1
    spill = np.full(n, np.inf)
    done = np.zeros(n, dtype=np.bool_)
    keys = np.empty(adj.size + 1, dtype=np.float64)
    vals = np.empty(adj.size + 1, dtype=np.int64)
    spill[0] = -np.inf
    size = _push(keys, vals, 0, -np.inf, 0)
    while size > 0:
        u = vals[0]
        size = _pop(keys, vals, size)
        if done[u]:
            continue
        done[u] = True
        for e in range(indptr[u], indptr[u + 1]):
            v = adj[e]
            cand = max(spill[u], wts[e])
            if not done[v] and cand < spill[v]:
                spill[v] = cand
                size = _push(keys, vals, size, cand, v)
    return spill
