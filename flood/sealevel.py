"""Sea-level and storm-surge flooding connected to the sea, beside the naive bathtub.

One Priority-Flood seeded from the sea cells (:func:`flood.fill.priority_flood_levels`)
gives every cell the lowest sea level that floods it: the sea reaches a cell when some D8
path from the sea never rises above the water. One pass therefore answers every position
of a sea-level slider (SCALGO Live works this way): ``levels <= h`` is the flooded area at
level ``h``. Barriers (dikes, walls) are burned into a copy of the DEM before the run.

Heights are absolute (m, the DEM's vertical datum, DVR90 in geoby's storage CRS). Nodata
cells are never crossed by water and stay NaN in the outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import rasterio.features
from affine import Affine
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from flood.fill import priority_flood_levels
from layers.errors import InvalidInput

__all__ = ["bathtub_depth", "burn_barriers", "connected_depth", "flood_levels", "sea_mask"]

_D8 = np.ones((3, 3), dtype=bool)


def sea_mask(
    dem: np.ndarray, nodata: np.ndarray | None = None, *, below: float = 0.0
) -> np.ndarray:
    """The default sea: nodata cells and cells at or below ``below``, touching the border.

    Of the cells that are nodata (or NaN) or lie at or below ``below`` (default 0 m, mean
    sea level in DVR90), keep the 8-connected groups that touch the raster border. Land
    below sea level that lies behind higher ground (a polder) is not sea; land below
    ``below`` joined to the open sea by such low cells is, so levels under ``below`` are
    not meaningful with this mask. Where the coastline is known, pass an explicit mask.

    Parameters
    ----------
    dem
        2-D elevation raster.
    nodata
        Boolean mask, True where there is no data.
    below
        Highest elevation still counted as sea.

    Returns
    -------
    numpy.ndarray
        Boolean sea mask.
    """
    z = np.asarray(dem, dtype=np.float64)
    low = ~(z > below)  # NaN counts as low: nodata
    if nodata is not None:
        low |= _mask(nodata, z.shape, "nodata")
    labels, _ = ndimage.label(low, structure=_D8)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    edge = np.unique(edge[edge > 0])
    return np.isin(labels, edge)


def flood_levels(
    dem: np.ndarray,
    sea: np.ndarray | None = None,
    nodata: np.ndarray | None = None,
    barriers: Sequence[tuple[BaseGeometry, float]] | None = None,
    *,
    transform: Affine | None = None,
) -> np.ndarray:
    """For each cell, the lowest sea level that floods it through a connected path.

    Parameters
    ----------
    dem
        2-D elevation raster (float32 or float64); NaN = nodata.
    sea
        Boolean mask of the sea; ``None`` for :func:`sea_mask`. Nodata sea cells let
        water in at their valid neighbours. Barrier cells are never sea.
    nodata
        Boolean mask, True where there is no data.
    barriers
        ``(geometry, crest_m)`` pairs burned in first (:func:`burn_barriers`); needs
        ``transform``.
    transform
        The raster's affine transform, for the barriers.

    Returns
    -------
    numpy.ndarray
        Levels in the DEM's float dtype: a cell is under water when the sea stands at or
        above its level. NaN at nodata and where the sea cannot reach.

    Raises
    ------
    InvalidInput
        On mismatched shapes, or barriers without a transform.

    Examples
    --------
    >>> dem = np.array([[-1.0, 0.5, 2.0, 0.2, 3.0]])
    >>> flood_levels(dem, dem < 0).tolist()
    [[-1.0, 0.5, 2.0, 2.0, 3.0]]
    """
    if barriers:
        if transform is None:
            raise InvalidInput("barriers need the raster's transform", field="transform")
        crest = _crest_raster(dem, barriers, transform, nodata)
        dem = _burned(dem, crest)
    else:
        crest = None
    sea = sea_mask(dem, nodata) if sea is None else _mask(sea, np.shape(dem), "sea")
    if crest is not None:
        sea = sea & np.isnan(crest)
    return priority_flood_levels(dem, sea, nodata)


def connected_depth(
    dem: np.ndarray, levels: np.ndarray, level: float, nodata: np.ndarray | None = None
) -> np.ndarray:
    """Water depth with the sea at ``level``, only where the sea reaches.

    Parameters
    ----------
    dem
        The DEM (pass the one with barriers burned in for depths over their crests).
    levels
        :func:`flood_levels` of that DEM.
    level
        Sea level (m).
    nodata
        Boolean mask, True where there is no data.

    Returns
    -------
    numpy.ndarray
        float64 depth ``level - dem`` where ``levels <= level``, else 0; NaN at nodata.
        The sea cells themselves count too: mask them with the sea mask to map land.
    """
    z = np.asarray(dem, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)  # compare in float64, as bathtub_depth does
    if lv.shape != z.shape:
        raise InvalidInput(f"levels have shape {lv.shape}, the DEM {z.shape}", field="levels")
    depth = np.where(lv <= level, level - z, 0.0)
    return _nodata_nan(depth, z, nodata)


def bathtub_depth(dem: np.ndarray, level: float, nodata: np.ndarray | None = None) -> np.ndarray:
    """Naive bathtub depth: ``level - dem`` wherever the ground lies at or below ``level``.

    It ignores connectivity, so it floods polders behind dikes; shown beside
    :func:`connected_depth`, never instead of it.

    Returns
    -------
    numpy.ndarray
        float64 depth; NaN at nodata.
    """
    z = np.asarray(dem, dtype=np.float64)
    depth = np.where(z <= level, level - z, 0.0)
    return _nodata_nan(depth, z, nodata)


def burn_barriers(
    dem: np.ndarray,
    barriers: Iterable[tuple[BaseGeometry, float]],
    transform: Affine,
    nodata: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of the DEM with barriers raised to their crest: cell = max(cell, crest).

    Lines and polygons (in the DEM's CRS) are rasterised with every touched cell. A
    one-cell-wide line that steps diagonally would still let D8 water slip between two of
    its cells that touch only at a corner, so wherever a 2x2 window holds barrier cells on
    one diagonal only and two valid cells on the other, the higher of those two is burned
    too (at the lower of the two crests), until no such window is left: the burned cells
    then block D8 flow as a 4-connected wall does.

    Parameters
    ----------
    dem
        2-D elevation raster; never modified.
    barriers
        ``(geometry, crest_m)`` pairs: LineString, Polygon or their Multi- forms, crest
        as an absolute height (m).
    transform
        The raster's affine transform.
    nodata
        Boolean mask, True where there is no data; nodata cells stay as they are.

    Returns
    -------
    numpy.ndarray
        The burned DEM, in the DEM's float dtype.

    Raises
    ------
    InvalidInput
        On a geometry that is not a line or polygon, or a crest that is not finite.
    """
    return _burned(dem, _crest_raster(dem, list(barriers), transform, nodata))


def _crest_raster(
    dem: np.ndarray,
    barriers: Sequence[tuple[BaseGeometry, float]],
    transform: Affine,
    nodata: np.ndarray | None,
) -> np.ndarray:
    """Crest height per cell (NaN where there is no barrier), diagonal gaps closed."""
    z = np.asarray(dem, dtype=np.float64)
    shapes = []
    for i, (geom, crest) in enumerate(barriers):
        if geom.geom_type not in {"LineString", "MultiLineString", "Polygon", "MultiPolygon"}:
            raise InvalidInput(
                f"barrier {i} is a {geom.geom_type}; lines or polygons only", field="barriers"
            )
        if not np.isfinite(crest):
            raise InvalidInput(f"barrier {i} has no finite crest height", field="barriers")
        shapes.append((geom, float(crest)))
    crest = np.full(z.shape, np.nan)
    if shapes:
        shapes.sort(key=lambda s: s[1])  # drawn in order: the highest crest wins on overlap
        rasterio.features.rasterize(
            shapes, out=crest, transform=transform, all_touched=True, fill=np.nan
        )
    valid = np.isfinite(z)
    if nodata is not None:
        valid &= ~_mask(nodata, z.shape, "nodata")
    crest[~valid] = np.nan
    _close_diagonal_gaps(crest, np.where(valid, z, -np.inf))
    return crest


def _close_diagonal_gaps(crest: np.ndarray, z: np.ndarray) -> None:
    """Burn one more cell wherever D8 water could pass between diagonal barrier cells."""
    while True:
        wall = np.isfinite(crest)
        open_ = ~wall & (z > -np.inf)
        added = False
        for a, d, b, c in (  # (a, d) one diagonal of each 2x2 window, (b, c) the other
            ((0, 0), (1, 1), (0, 1), (1, 0)),
            ((0, 1), (1, 0), (0, 0), (1, 1)),
        ):
            leak = _win(wall, a) & _win(wall, d) & _win(open_, b) & _win(open_, c)
            if not leak.any():
                continue
            added = True
            rows, cols = np.nonzero(leak)
            height = np.minimum(crest[rows + a[0], cols + a[1]], crest[rows + d[0], cols + d[1]])
            use_b = z[rows + b[0], cols + b[1]] >= z[rows + c[0], cols + c[1]]
            r = np.where(use_b, rows + b[0], rows + c[0])
            q = np.where(use_b, cols + b[1], cols + c[1])
            crest[r, q] = np.fmax(crest[r, q], height)
        if not added:
            return


def _win(mask: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    """The corner ``at`` of every 2x2 window of ``mask``."""
    nrows, ncols = mask.shape
    return mask[at[0] : nrows - 1 + at[0], at[1] : ncols - 1 + at[1]]


def _burned(dem: np.ndarray, crest: np.ndarray) -> np.ndarray:
    z = np.asarray(dem)
    dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.float64
    out = np.array(z, dtype=dtype, copy=True)
    wall = np.isfinite(crest)
    out[wall] = np.maximum(out[wall], crest[wall].astype(dtype))
    return out


def _mask(mask: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise InvalidInput(f"{name} mask has shape {mask.shape}, the DEM {shape}", field=name)
    return mask.astype(bool, copy=False)


def _nodata_nan(depth: np.ndarray, z: np.ndarray, nodata: np.ndarray | None) -> np.ndarray:
    depth[np.isnan(z)] = np.nan
    if nodata is not None:
        depth[_mask(nodata, z.shape, "nodata")] = np.nan
    return depth
