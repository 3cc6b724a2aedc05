"""Fill-Spill-Merge: hand-built DEMs with known answers (two basins that merge, a polder
behind a dike), volume conservation on random terrain, RichDEM's Priority-Flood fill for a
rain that fills everything, RichDEM's own Fill-Spill-Merge, and the real Danish DTM."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import rasterio
import richdem as rd
from scipy import ndimage

from flood.depressions import depression_hierarchy
from flood.fsm import fill_spill_merge
from layers.errors import InvalidInput

DK_TERRAIN = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"
AREA = 4.0  # m2 per cell in the hand-built cases


def two_basins() -> np.ndarray:
    """As in test_depressions: A (3x3 at 1 m, drains 25 cells) and B (3x3 at 2 m, drains
    20 cells) split by a 3 m saddle that drains into A; together they spill at 4 m.

    By hand, for a rain of r metres (77 cells, 45 draining into A or B):
    - r < 0.45: A's level 1 + 25r/9, B's 2 + 20r/9;
    - B is full at r = 0.45 and spills into A: A's level 1 + (45r - 9)/9;
    - A is full too at r = 0.6: they merge, the level over 21 cells is (45r + 36)/21;
    - full at r = 48/45: beyond, everything else leaves at the gap.
    """
    dem = np.full((7, 11), 9.0)
    dem[1:6, 1:10] = 5.0
    dem[2:5, 2:5] = 1.0
    dem[2:5, 5] = 3.0
    dem[2:5, 6:9] = 2.0
    dem[3, 9] = dem[3, 10] = 4.0
    return dem


def random_terrain(seed: int, shape: tuple[int, int] = (90, 110)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    relief = ndimage.gaussian_filter(rng.normal(size=shape), 4) * 40
    return np.round(relief + rng.normal(scale=0.2, size=shape), 2)


def quiet(call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - RichDEM chatter
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return call(*args, **kwargs)


def richdem_fill_depth(dem: np.ndarray) -> np.ndarray:
    filled = quiet(rd.FillDepressions, rd.rdarray(dem.copy(), no_data=-9999), epsilon=False,
                   topology="D8")  # fmt: skip
    return np.array(filled, dtype=np.float64) - dem


def richdem_fsm_depth(dem: np.ndarray, rain_mm: float) -> np.ndarray:
    d = rd.rdarray(dem.astype(np.float64), no_data=-9999)
    labels = quiet(rd.get_new_depression_hierarchy_labels, dem.shape)
    deps, flowdirs = quiet(rd.get_depression_hierarchy, d, labels)
    wtd = rd.rdarray(np.full(dem.shape, rain_mm / 1000.0), no_data=-9999)
    quiet(rd.fill_spill_merge, d, labels, flowdirs, deps, wtd)
    return np.maximum(np.array(wtd), 0.0)


@pytest.mark.parametrize(
    ("rain", "level_a", "level_b", "level_m"),
    [
        (0.3, 1 + 25 * 0.3 / 9, 2 + 20 * 0.3 / 9, None),
        (0.5, 1 + (45 * 0.5 - 9) / 9, 3.0, None),
        (0.6, 3.0, 3.0, None),
        (0.8, (45 * 0.8 + 36) / 21, (45 * 0.8 + 36) / 21, (45 * 0.8 + 36) / 21),
        (1.2, 4.0, 4.0, 4.0),
    ],
)
def test_two_basins_fill_spill_and_merge_as_worked_out(
    rain: float, level_a: float, level_b: float, level_m: float | None
) -> None:
    dem = two_basins()
    h = depression_hierarchy(dem, cell_area=AREA)
    r = fill_spill_merge(dem, h, rain * 1000.0)
    a, b = h.labels[3, 3], h.labels[3, 7]
    m = h.parent[a]
    assert r.water_level[a] == pytest.approx(level_a, abs=1e-12)
    assert r.water_level[b] == pytest.approx(level_b, abs=1e-12)
    if level_m is None:
        assert np.isnan(r.water_level[m])
    else:
        assert r.water_level[m] == pytest.approx(level_m, abs=1e-12)
    stored = min(45 * rain, 48.0) * AREA
    assert r.stored_m3 == pytest.approx(stored, rel=1e-12)
    assert r.rain_m3 == pytest.approx(77 * rain * AREA, rel=1e-12)
    assert r.lost_m3 == pytest.approx(r.rain_m3 - stored, rel=1e-12)
    np.testing.assert_allclose(r.depth[3, 2:5], max(level_a - 1, 0))
    np.testing.assert_allclose(r.depth[3, 6:9], max(level_b - 2, 0))
    assert r.depth[3, 5] == pytest.approx(max((level_m or 0) - 3, 0))
    assert r.fill_fraction[m] == pytest.approx(min(45 * rain / 48, 1.0))


def test_the_basins_merge_at_600_mm() -> None:
    dem = two_basins()
    h = depression_hierarchy(dem)
    a, m = h.labels[3, 3], h.parent[h.labels[3, 3]]
    before, after = fill_spill_merge(dem, h, 599.0), fill_spill_merge(dem, h, 601.0)
    assert before.fill_fraction[a] < 1 and np.isnan(before.water_level[m])
    assert after.fill_fraction[a] == 1 and after.water_level[m] == pytest.approx(
        (45 * 0.601 + 36) / 21
    )
    assert before.depth[3, 5] == 0 and after.depth[3, 5] > 0  # the saddle goes under


def test_a_polder_behind_a_dike_fills_to_the_crest_then_spills_to_the_sea() -> None:
    dem = np.full((7, 10), 5.0)  # hills around (the border is an outlet too)
    dem[:, 0] = 0.0  # the sea
    dem[1:6, 1:3] = 0.5  # the beach
    dem[1:6, 3] = 3.0  # the dike
    dem[1:6, 4:9] = 1.0  # the polder: 25 cells of 10 m x 10 m, 2 m below the crest
    h = depression_hierarchy(dem, cell_area=100.0)
    assert h.count == 1
    assert h.volume_m3[0] == 25 * 100 * 2.0 and h.rain_to_fill_mm[0] == 2000.0
    assert h.pour_elevation[0] == 3.0 and h.spill_target[0] == -1 and h.pour_col[0] == 3
    for rain_m, depth in ((0.5, 0.5), (2.0, 2.0), (3.0, 2.0)):
        r = fill_spill_merge(dem, h, rain_m * 1000.0)
        np.testing.assert_allclose(r.depth[1:6, 4:9], depth, rtol=1e-12)
        assert np.count_nonzero(r.depth) == 25
        assert r.stored_m3 == pytest.approx(25 * 100 * depth)
        assert r.lost_m3 == pytest.approx(70 * 100 * rain_m - 25 * 100 * depth)


def test_rain_on_one_catchment_fills_it_and_spills_into_the_other() -> None:
    dem = two_basins()
    h = depression_hierarchy(dem)
    a, b = h.labels[3, 3], h.labels[3, 7]
    rain = np.zeros(dem.shape)
    rain[:, 6:] = 1000.0  # 1 m on B's side only: 20 m3 into B, which holds 9
    r = fill_spill_merge(dem, h, rain)
    assert r.rain_m3 == pytest.approx(7 * 5)
    assert r.stored_by_depression_m3[b] == pytest.approx(9.0)
    assert r.stored_by_depression_m3[a] == pytest.approx(11.0)  # B's overflow
    assert r.water_level[a] == pytest.approx(1 + 11 / 9)


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_volume_is_conserved_on_random_terrain(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    dem = random_terrain(seed).astype(dtype)
    nodata = ndimage.binary_dilation(rng.random(dem.shape) < 0.002, iterations=2)
    h = depression_hierarchy(dem, nodata, cell_area=0.16)
    rains = [0.5, 10.0, 50.0, 100.0, 400.0, 5000.0, rng.uniform(0, 80, dem.shape)]
    stored = []
    for rain in rains:
        r = fill_spill_merge(dem, h, rain, nodata)
        assert abs(r.rain_m3 - r.stored_m3 - r.lost_m3) <= 1e-9 * r.rain_m3
        assert np.isnan(r.depth[nodata]).all() and not np.isnan(r.depth[~nodata]).any()
        assert (r.depth[~nodata] >= 0).all()
        assert np.nansum(r.depth) * 0.16 == pytest.approx(r.stored_m3, rel=1e-9)
        assert (r.depth[h.labels < 0][~nodata[h.labels < 0]] == 0).all()
        assert ((r.fill_fraction >= 0) & (r.fill_fraction <= 1)).all()
        stored.append(r.depth)
    for less, more in zip(stored[:-2], stored[1:-1], strict=True):  # more rain, never less water
        assert (np.nan_to_num(more) >= np.nan_to_num(less) - 1e-12).all()


@pytest.mark.parametrize("seed", [21, 22])
def test_a_rain_that_fills_everything_gives_the_priority_flood_depth(seed: int) -> None:
    dem = random_terrain(seed, (100, 120)).astype(np.float32)
    h = depression_hierarchy(dem, cell_area=0.16)
    r = fill_spill_merge(dem, h, 1e6)  # 1000 m
    expected = richdem_fill_depth(dem)
    assert np.abs(r.depth - expected).max() <= 1e-6
    assert r.stored_m3 == pytest.approx(expected.sum() * 0.16, rel=1e-9)
    assert (r.fill_fraction == 1).all()


def test_agrees_with_richdem_fill_spill_merge() -> None:
    dem = random_terrain(31, (150, 150))
    dem = dem + np.random.default_rng(31).normal(scale=1e-4, size=dem.shape)  # no ties
    h = depression_hierarchy(dem)
    for rain_mm in (10.0, 50.0, 200.0):
        ours = fill_spill_merge(dem, h, rain_mm).depth
        theirs = richdem_fsm_depth(dem, rain_mm)
        assert ours.sum() == pytest.approx(theirs.sum(), rel=1e-3)
        assert np.mean(np.abs(ours - theirs) > 1e-3) < 0.01


def test_real_terrain_conserves_water_and_fills_like_priority_flood(shared_data: Path) -> None:
    with rasterio.open(shared_data / DK_TERRAIN) as src:
        dem = src.read(1)
        nodata = dem == src.nodata
        area = abs(src.transform.a * src.transform.e)
    h = depression_hierarchy(dem, nodata, cell_area=area)
    for rain_mm in (20.0, 100.0):
        r = fill_spill_merge(dem, h, rain_mm, nodata, cell_area=area)
        assert abs(r.rain_m3 - r.stored_m3 - r.lost_m3) <= 1e-9 * r.rain_m3
        assert 0 < r.stored_m3 < r.rain_m3
    full = fill_spill_merge(dem, h, 1e6, nodata)
    expected = richdem_fill_depth(dem)  # nodata is -9999, below everything: an outlet
    assert np.abs(full.depth[~nodata] - expected[~nodata]).max() <= 1e-6


@pytest.mark.parametrize(
    ("rain", "kwargs"),
    [
        (-1.0, {}),
        (float("nan"), {}),
        (np.full((3, 3), 5.0), {}),
        (np.full((7, 11), -5.0), {}),
        (np.full((7, 11), np.inf), {}),
        (10.0, {"cell_area": 2.0}),
    ],
)
def test_bad_input_is_refused(rain: float | np.ndarray, kwargs: dict) -> None:
    dem = two_basins()
    h = depression_hierarchy(dem)
    with pytest.raises(InvalidInput):
        fill_spill_merge(dem, h, rain, **kwargs)
    with pytest.raises(InvalidInput):
        fill_spill_merge(dem[:5], h, 10.0)
    with pytest.raises(InvalidInput):
        fill_spill_merge(dem + 0.5, h, 10.0)  # not the hierarchy's terrain
