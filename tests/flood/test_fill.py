"""Priority-Flood filling against RichDEM (bit for bit), a brute-force reference and
hand-built DEMs; sea-seeded levels against repeated connected-component labelling."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import rasterio
import richdem as rd
from rasterio.warp import Resampling, calculate_default_transform, reproject
from scipy import ndimage

from flood.fill import fill_depressions, priority_flood_levels
from layers.errors import InvalidInput

D8 = np.ones((3, 3), dtype=bool)
SENTINEL = -9999.0  # below every elevation: RichDEM treats nodata as very low terrain


def richdem_fill(dem: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    """RichDEM's FillDepressions(epsilon=False, D8) with nodata NaN in the result."""
    src = np.where(nodata, SENTINEL, dem).astype(dem.dtype)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        out = rd.FillDepressions(rd.rdarray(src, no_data=SENTINEL), epsilon=False, topology="D8")
    out = np.array(out, dtype=dem.dtype)
    out[nodata] = np.nan
    return out


def minimax_fill(dem: np.ndarray, outlets: np.ndarray) -> np.ndarray:
    """Independent reference: relax max(dem, min over D8 neighbours) from the outlets."""
    nrows, ncols = dem.shape
    water = np.where(outlets, dem, np.inf)
    while True:
        padded = np.pad(water, 1, constant_values=np.inf)
        low = water.copy()
        for dr in range(3):
            for dc in range(3):
                low = np.minimum(low, padded[dr : dr + nrows, dc : dc + ncols])
        new = np.maximum(dem, low)
        if np.array_equal(new, water):
            return water
        water = new


def outlet_cells(nodata: np.ndarray) -> np.ndarray:
    out = ndimage.binary_dilation(nodata, D8) & ~nodata
    out[[0, -1], :] |= ~nodata[[0, -1], :]
    out[:, [0, -1]] |= ~nodata[:, [0, -1]]
    return out


def border_holes(rng: np.random.Generator, shape: tuple[int, int], p: float) -> np.ndarray:
    """Random nodata that reaches the border (the sea, the area outside a survey)."""
    holes = ndimage.binary_dilation(rng.random(shape) < p, D8 if p > 0.02 else None)
    labels, _ = ndimage.label(holes, D8)
    edge = np.unique(np.r_[labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.isin(labels, edge[edge > 0])


def lowland(n: int, seed: int) -> np.ndarray:
    """fBm-like float32 terrain: smoothed noise, a tilt, hollows, cm steps (ties, flats)."""
    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(size=(n, n)), 6) * 40
    z += ndimage.gaussian_filter(rng.normal(size=(n, n)), 1.5) * 2
    z += np.linspace(0, 3, n)[:, None]
    for _ in range(n // 4):
        r, c = rng.integers(0, n, 2)
        z[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4] -= rng.uniform(0.1, 1.0)
    return np.round(z, 2).astype(np.float32)


def test_fills_a_pit_to_its_spill_point():
    dem = np.array(
        [[5, 5, 5, 5, 5], [5, 1, 2, 5, 5], [5, 2, 0, 3, 5], [5, 5, 5, 4, 5], [5, 5, 5, 2.5, 5]],
        dtype=np.float32,
    )
    filled = fill_depressions(dem)
    expected = dem.copy()
    expected[1:3, 1:4] = np.maximum(dem[1:3, 1:4], 4)  # spills over 4 to the 2.5 border cell
    assert np.array_equal(filled, expected)
    assert filled.dtype == np.float32
    assert dem[2, 2] == 0  # input untouched


def test_border_cells_and_nodata_rims_are_outlets():
    dem = np.full((7, 7), 9.0)
    dem[1:6, 1:6] = 2.0
    dem[3, 3] = np.nan  # a hole inside: its rim drains into it
    filled = fill_depressions(dem)
    assert np.isnan(filled[3, 3])
    assert np.array_equal(filled[np.isfinite(filled)], dem[np.isfinite(dem)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(40))
def test_equals_richdem_on_random_dems(dtype, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 40, 2))
    dem = rng.integers(0, 7, shape).astype(dtype)  # few values: many ties and flats
    dem += (rng.random(shape) < 0.3) * rng.random(shape).astype(dtype)
    nodata = border_holes(rng, shape, [0.0, 0.02, 0.1][seed % 3])
    ours = fill_depressions(np.where(nodata, np.nan, dem).astype(dtype), nodata)
    assert ours.dtype == dtype
    assert np.array_equal(ours, richdem_fill(dem, nodata), equal_nan=True)


@pytest.mark.parametrize("seed", range(20))
def test_interior_holes_match_the_minimax_reference(seed):
    # RichDEM fills interior nodata holes like pits; here their rims are outlets.
    rng = np.random.default_rng(100 + seed)
    shape = tuple(rng.integers(3, 30, 2))
    dem = rng.integers(0, 6, shape).astype(np.float64)
    nodata = rng.random(shape) < 0.12
    ref = minimax_fill(np.where(nodata, -np.inf, dem), outlet_cells(nodata))
    ref[nodata] = np.nan
    assert np.array_equal(fill_depressions(dem, nodata), ref, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_richdem_on_synthetic_terrain(dtype):
    dem = lowland(400, seed=3).astype(dtype)
    nodata = np.zeros(dem.shape, dtype=bool)
    nodata[:40, :25] = True  # a corner outside the survey
    nodata[250:, -3:] = True
    ours = fill_depressions(dem, nodata)
    assert (ours[~nodata] > dem[~nodata]).mean() > 0.05  # depressions were filled
    assert np.array_equal(ours, richdem_fill(dem, nodata), equal_nan=True)


def test_equals_richdem_on_the_danish_dtm(shared_data):
    with rasterio.open(shared_data / "dk-terrain" / "dk_dtm_6171_727_10m_dvr90.tif") as src:
        dem = src.read(1)
        nodata = dem == src.nodata
    assert nodata.any()
    ours = fill_depressions(dem, nodata)
    assert np.count_nonzero(ours[~nodata] > dem[~nodata]) > 0
    assert np.array_equal(ours, richdem_fill(dem, nodata), equal_nan=True)


def test_equals_richdem_on_texas_reprojected_to_utm(shared_data):
    # EPSG:4326 int16 HydroSHEDS, warped to UTM zone 14N (EPSG:32614) at 90 m, bilinear.
    with rasterio.open(shared_data / "dem-texas" / "dem.tif") as src:
        dst_crs = "EPSG:32614"
        transform, width, height = calculate_default_transform(
            src.crs, dst_crs, src.width, src.height, *src.bounds, resolution=90
        )
        dem = np.full((height, width), np.nan, dtype=np.float32)
        reproject(
            rasterio.band(src, 1), dem, dst_transform=transform, dst_crs=dst_crs,
            dst_nodata=np.nan, resampling=Resampling.bilinear,
        )  # fmt: skip
    nodata = np.isnan(dem)
    assert nodata[0].any() and not nodata.all()
    ours = fill_depressions(dem, nodata)
    assert np.count_nonzero(ours[~nodata] > dem[~nodata]) > 100
    assert np.array_equal(ours, richdem_fill(dem, nodata), equal_nan=True)


def test_integer_dems_are_filled_in_float64():
    dem = np.array([[3, 3, 3], [3, 1, 3], [3, 3, 3]], dtype=np.int16)
    filled = fill_depressions(dem)
    assert filled.dtype == np.float64 and filled[1, 1] == 3


def test_rejects_bad_input():
    with pytest.raises(InvalidInput):
        fill_depressions(np.zeros((2, 2, 2)))
    with pytest.raises(InvalidInput):
        fill_depressions(np.zeros((3, 3)), np.zeros((3, 4), dtype=bool))
    with pytest.raises(InvalidInput):
        priority_flood_levels(np.zeros((3, 3)), np.zeros((2, 3), dtype=bool))


def brute_levels(dem: np.ndarray, seeds: np.ndarray, nodata: np.ndarray, h: float) -> np.ndarray:
    """Cells under water with the water at h at the seeds: components of dem <= h
    (8-connected, nodata excluded) that hold a seed at or below h; nodata seeds let water in
    at their valid neighbours."""
    wet = (dem <= h) & ~nodata
    entry = (seeds & wet) | (ndimage.binary_dilation(seeds & nodata, D8) & wet)
    labels, _ = ndimage.label(wet, D8)
    return np.isin(labels, np.unique(labels[entry & (labels > 0)]))


@pytest.mark.parametrize("seed", range(8))
def test_levels_equal_repeated_labelling(seed):
    rng = np.random.default_rng(seed)
    dem = np.round(ndimage.gaussian_filter(rng.normal(size=(40, 50)), 2) * 10, 1)
    nodata = rng.random(dem.shape) < 0.03
    seeds = np.zeros(dem.shape, dtype=bool)
    seeds[:, 0] = True  # the sea along the west edge, partly nodata
    seeds[rng.random(dem.shape) < 0.002] = True
    levels = priority_flood_levels(np.where(nodata, np.nan, dem), seeds, nodata)
    assert np.isnan(levels[nodata]).all()
    for h in np.unique(np.quantile(dem, np.linspace(0, 1, 13)).round(1)):
        assert np.array_equal(
            np.nan_to_num(levels, nan=np.inf) <= h, brute_levels(dem, seeds, nodata, h)
        )


def test_levels_leave_cells_beyond_nodata_unreached():
    dem = np.zeros((5, 7), dtype=np.float32)
    nodata = np.zeros(dem.shape, dtype=bool)
    nodata[:, 3] = True  # a nodata wall: water never crosses it
    seeds = np.zeros(dem.shape, dtype=bool)
    seeds[2, 0] = True
    levels = priority_flood_levels(dem, seeds, nodata)
    assert np.array_equal(levels[:, :3], np.zeros((5, 3), dtype=np.float32))
    assert np.isnan(levels[:, 3:]).all()


def test_levels_from_nodata_sea_enter_at_the_coast():
    dem = np.array([[np.nan, 1.0, 3.0, 2.0, 4.0]])
    levels = priority_flood_levels(dem, np.isnan(dem))
    assert np.array_equal(levels, [[np.nan, 1.0, 3.0, 3.0, 4.0]], equal_nan=True)


def test_fill_equals_levels_seeded_at_the_outlets():
    dem = lowland(120, seed=9)
    nodata = border_holes(np.random.default_rng(1), dem.shape, 0.01)
    filled = fill_depressions(dem, nodata)
    levels = priority_flood_levels(dem, outlet_cells(nodata), nodata)
    assert np.array_equal(filled, levels, equal_nan=True)
