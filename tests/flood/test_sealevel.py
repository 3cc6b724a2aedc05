"""Sea-level flooding connected to the sea: hand-built coasts with known answers,
barriers burned in (leak-proof for D8), bathtub beside it, brute-force levels."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from scipy import ndimage
from shapely.geometry import LineString, Point, Polygon

from flood.sealevel import (
    bathtub_depth,
    burn_barriers,
    connected_depth,
    flood_levels,
    sea_mask,
)
from layers.errors import InvalidInput

D8 = np.ones((3, 3), dtype=bool)
# 1 m cells, origin at the north-west corner (0, nrows): cell (r, c) spans x c..c+1
GRID = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 20.0)


def coast(n: int = 20) -> np.ndarray:
    """Sea (-2 m) in the two westmost columns, a 0.5 m coastal plain, a 3 m ridge in
    columns 9-10, and behind it a 0.2 m bowl that a bathtub would flood."""
    dem = np.full((n, n), 0.5)
    dem[:, :2] = -2.0
    dem[:, 9:11] = 3.0
    dem[:, 11:] = 1.5
    dem[5:15, 13:18] = 0.2
    return dem


def test_a_bowl_behind_a_ridge_stays_dry_until_the_sea_tops_the_ridge():
    dem = coast()
    levels = flood_levels(dem)
    bowl = np.zeros(dem.shape, dtype=bool)
    bowl[5:15, 13:18] = True
    wet = connected_depth(dem, levels, 2.0) > 0
    assert wet[:, :9].all()  # the plain floods
    assert not wet[:, 9:].any()  # nothing behind the ridge, not even the bowl
    assert np.allclose(bathtub_depth(dem, 2.0)[bowl], 1.8)  # the bathtub would
    assert np.allclose(levels[bowl], 3.0)  # it floods once the sea reaches the crest
    assert np.allclose(connected_depth(dem, levels, 3.0)[bowl], 2.8)


def test_connected_depth_is_the_water_above_the_ground():
    dem = coast()
    depth = connected_depth(dem, flood_levels(dem), 1.0)
    assert depth.dtype == np.float64
    assert np.allclose(depth[:, :2], 3.0) and np.allclose(depth[:, 2:9], 0.5)
    assert (depth[:, 9:] == 0).all()


def test_default_sea_is_low_ground_and_nodata_touching_the_border():
    dem = coast()
    dem[0, 5] = np.nan  # a nodata cell inland of the sea, touching the border
    dem[8, 15] = -1.0  # a polder below sea level, enclosed
    sea = sea_mask(dem)
    assert sea[:, :2].all()
    assert sea[0, 5] and not sea[8, 15]
    assert sea.sum() == 2 * 20 + 1


def test_a_dike_removes_exactly_the_flooding_behind_it():
    dem = coast()
    dem[:, 9:11] = 0.5  # no ridge: the plain runs on to the bowl
    before = connected_depth(dem, flood_levels(dem), 1.0)
    dike = LineString([(6.5, 0.0), (6.5, 20.0)])  # north-south through column 6
    levels = flood_levels(dem, barriers=[(dike, 2.5)], transform=GRID)
    after = connected_depth(dem, levels, 1.0)
    assert np.array_equal(after[:, :6], before[:, :6])  # the sea side is unchanged
    assert (before[:, 7:] > 0).any()
    assert (after[:, 6:] == 0).all()  # the dike and everything behind it stay dry
    assert (connected_depth(dem, levels, 2.5)[:, 7:] > 0).any()  # overtopped at the crest


@pytest.mark.parametrize(
    "line",
    [
        [(2.5, 19.5), (19.5, 2.5)],  # through cell centres at 45 degrees: corners only
        [(2.0, 20.0), (20.0, 2.0)],  # along cell corners
        [(2.2, 19.9), (19.9, 0.3)],  # nearly diagonal
        [(3.0, 20.0), (12.1, 11.0), (19.7, 0.1)],
    ],
)
def test_a_diagonal_dike_does_not_leak_between_its_cells(line):
    dem = np.full((20, 20), 0.5)
    dem[:, :2] = -2.0
    dike = LineString(line)
    burned = burn_barriers(dem, [(dike, 5.0)], GRID)
    wall = burned > dem
    # no 2x2 window holds wall cells on one diagonal only: D8 water cannot slip through
    a, b, c, d = wall[:-1, :-1], wall[:-1, 1:], wall[1:, :-1], wall[1:, 1:]
    assert not ((a & d & ~b & ~c) | (b & c & ~a & ~d)).any()
    # the cells strictly on the far side of the line stay dry below the crest
    rows, cols = np.indices(dem.shape)
    far = ~wall & _beyond(dike, rows, cols)
    assert far.any()
    wet = connected_depth(dem, flood_levels(burned), 4.0) > 0
    assert not wet[far].any()
    assert wet[:, :2].all()
    # with a one-cell rasterisation (no gap closing) the water does get through
    naive = dem.copy()
    naive[_thin_line_cells(dike, dem.shape)] = 5.0
    assert (connected_depth(dem, flood_levels(naive), 4.0)[far] > 0).any()


def _beyond(dike: LineString, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cells whose centre lies between the dike and the north-east corner of the grid."""
    (x0, _), (_, y1) = dike.coords[0], dike.coords[-1]
    beyond = Polygon([*dike.coords, (20.0, y1), (20.0, 20.0), (x0, 20.0)])
    return shapely.contains_xy(beyond, cols + 0.5, 20 - (rows + 0.5))


def _thin_line_cells(dike: LineString, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The cells under points sampled along the line: 8-connected, with diagonal steps."""
    pts = [dike.interpolate(t, normalized=True) for t in np.linspace(0, 1, 400)]
    cols = np.clip(np.floor([p.x for p in pts]).astype(int), 0, shape[1] - 1)
    rows = np.clip(np.floor([20 - p.y for p in pts]).astype(int), 0, shape[0] - 1)
    return rows, cols


def test_polygon_barrier_raises_its_footprint_to_the_crest():
    dem = np.zeros((10, 10), dtype=np.float32)
    wall = Polygon([(2, 2), (4, 2), (4, 5), (2, 5)])  # columns 2-3, rows 5-7
    burned = burn_barriers(dem, [(wall, 1.25)], Affine(1.0, 0.0, 0.0, 0.0, -1.0, 10.0))
    assert burned.dtype == np.float32 and dem.max() == 0  # a new array
    assert (burned[5:8, 2:4] == np.float32(1.25)).all()
    assert (burned[:, 6:] == 0).all() and (burned[:3] == 0).all()
    high = burn_barriers(np.full((10, 10), 2.0), [(wall, 1.25)], GRID)
    assert (high == 2.0).all()  # never lowers the ground


def test_barrier_input_is_checked():
    with pytest.raises(InvalidInput):
        burn_barriers(np.zeros((5, 5)), [(Point(1, 1), 2.0)], GRID)
    with pytest.raises(InvalidInput):
        burn_barriers(np.zeros((5, 5)), [(LineString([(0, 0), (3, 3)]), float("nan"))], GRID)
    with pytest.raises(InvalidInput):
        flood_levels(np.zeros((5, 5)), barriers=[(LineString([(0, 0), (3, 3)]), 1.0)])


@pytest.mark.parametrize("seed", range(4))
def test_bathtub_is_never_below_connected(seed):
    rng = np.random.default_rng(seed)
    dem = ndimage.gaussian_filter(rng.normal(size=(60, 80)), 3) * 8
    dem = dem.astype(np.float32)
    dem[rng.random(dem.shape) < 0.01] = np.nan
    levels = flood_levels(dem)
    for level in (-1.0, 0.0, 0.1, 0.5, 1.7, 3.0):
        connected = connected_depth(dem, levels, level)
        bathtub = bathtub_depth(dem, level)
        valid = np.isfinite(dem)
        assert np.isnan(connected[~valid]).all() and np.isnan(bathtub[~valid]).all()
        assert (bathtub[valid] >= connected[valid]).all()
        assert (
            connected[valid][connected[valid] > 0] == bathtub[valid][connected[valid] > 0]
        ).all()


@pytest.mark.parametrize("seed", range(6))
def test_levels_equal_brute_force_labelling(seed):
    rng = np.random.default_rng(seed)
    dem = np.round(ndimage.gaussian_filter(rng.normal(size=(45, 45)), 2) * 6, 2)
    nodata = rng.random(dem.shape) < 0.02
    sea = sea_mask(dem, nodata)
    levels = flood_levels(dem, sea, nodata)
    for h in (-0.5, 0.0, 0.2, 0.5, 1.0, 1.5, 2.5):
        wet = (dem <= h) & ~nodata
        labels, _ = ndimage.label(wet, D8)
        entry = (sea & wet) | (ndimage.binary_dilation(sea & nodata, D8) & wet)
        brute = np.isin(labels, np.unique(labels[entry & (labels > 0)]))
        assert np.array_equal(np.nan_to_num(levels, nan=np.inf) <= h, brute)
