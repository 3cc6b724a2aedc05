"""The depression hierarchy: hand-built DEMs with known answers, RichDEM's Priority-Flood
fill as the reference for the top-level depressions, and the invariants of the hierarchy
on random terrain with flats and nodata."""

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
from layers.errors import InvalidInput

DK_TERRAIN = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"


def two_basins() -> np.ndarray:
    """Basin A (3x3 at 1 m) and basin B (3x3 at 2 m) split by a 3 m saddle column, inside
    a 5 m wall; the only way out is a 4 m gap in the east wall.

    By hand: A holds 9 x 2 = 18 and B 9 x 1 = 9 cell-metres at the 3 m saddle; together,
    up to the 4 m gap, 9 x 3 + 3 x 1 + 9 x 2 = 48 over 21 cells. A drains rows 1-5,
    columns 1-5 (25 cells: the saddle drains into A), B columns 6-9 (20 cells).
    """
    dem = np.full((7, 11), 9.0)
    dem[1:6, 1:10] = 5.0
    dem[2:5, 2:5] = 1.0
    dem[2:5, 5] = 3.0
    dem[2:5, 6:9] = 2.0
    dem[3, 9] = dem[3, 10] = 4.0
    return dem


def random_terrain(seed: int, shape: tuple[int, int] = (90, 110), flats: bool = True) -> np.ndarray:
    """Smooth random relief with noise; rounded to 5 cm it has flats and equal saddles."""
    rng = np.random.default_rng(seed)
    relief = ndimage.gaussian_filter(rng.normal(size=shape), 4) * 40
    dem = relief + rng.normal(scale=0.2, size=shape)
    return np.round(dem, 1 if flats else 6)


def richdem_fill(dem: np.ndarray) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        out = rd.FillDepressions(rd.rdarray(dem.copy(), no_data=-9999), epsilon=False,
                                 topology="D8")  # fmt: skip
    return np.array(out, dtype=dem.dtype)


def test_two_basins_have_the_figures_worked_out_by_hand() -> None:
    h = depression_hierarchy(two_basins(), cell_area=4.0)
    a, b = h.labels[3, 3], h.labels[3, 7]
    m = h.parent[a]
    assert h.count == 3 and h.parent[b] == m and h.parent[m] == -1
    assert sorted(h.children[m].tolist()) == sorted([a, b]) and h.is_leaf[[a, b]].all()
    assert h.volume_m3[[a, b, m]].tolist() == [18 * 4, 9 * 4, 48 * 4]
    assert h.pour_elevation[[a, b, m]].tolist() == [3.0, 3.0, 4.0]
    assert h.area_m2[[a, b, m]].tolist() == [9 * 4, 9 * 4, 21 * 4]
    assert h.catchment_m2[[a, b, m]].tolist() == [25 * 4, 20 * 4, 45 * 4]
    assert h.rain_to_fill_mm[[a, b, m]] == pytest.approx([720.0, 450.0, 48 / 45 * 1000])
    assert h.max_depth[[a, b, m]].tolist() == [2.0, 1.0, 3.0]
    assert (h.pour_row[a], h.pour_col[a]) == (2, 5)  # the first saddle cell
    assert (h.pour_row[m], h.pour_col[m]) == (3, 10)  # over the gap into the outlet
    assert h.spill_target[[a, b, m]].tolist() == [b, a, -1]
    assert h.spill_leaf[[a, b, m]].tolist() == [b, a, -1]  # the saddle drains into A
    expected = np.full((7, 11), -1)
    expected[1:6, 1:6] = a
    expected[1:6, 6:10] = b
    np.testing.assert_array_equal(h.labels, expected)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_level_depressions_hold_exactly_the_priority_flood_fill(seed: int, dtype: type) -> None:
    dem = random_terrain(seed).astype(dtype)
    filled = richdem_fill(dem).astype(np.float64)
    h = depression_hierarchy(dem, cell_area=0.25)
    wet = filled > dem
    assert h.area_cells[h.is_top].sum() == wet.sum()
    assert h.volume_m3[h.is_top].sum() == pytest.approx((filled - dem)[wet].sum() * 0.25,
                                                        rel=1e-9)  # fmt: skip
    # every filled cell lies in a top-level depression filled to its pour elevation
    top = h.top()[h.labels[wet]]
    np.testing.assert_array_equal(h.pour_elevation[top], filled[wet])


@pytest.mark.parametrize("seed", [4, 5])
def test_hierarchy_invariants_on_terrain_with_flats_and_nodata(seed: int) -> None:
    dem = random_terrain(seed, (80, 100)).astype(np.float32)
    rng = np.random.default_rng(seed)
    nodata = ndimage.binary_dilation(rng.random(dem.shape) < 0.002, iterations=2)
    dem[rng.random(dem.shape) < 0.001] = np.nan  # NaN counts as nodata too
    invalid = nodata | np.isnan(dem)
    h = depression_hierarchy(dem, nodata)
    n = h.count
    ids = np.arange(n)
    assert (h.volume_m3 > 0).all() and (h.area_cells > 0).all()  # no empty flats
    assert (h.labels[invalid] == -1).all()
    labelled = h.labels[h.labels >= 0]
    assert h.is_leaf[labelled].all()
    leaves = h.is_leaf
    assert h.catchment_cells[leaves].sum() == labelled.size
    meta = ~leaves
    a, b = h.children[meta, 0], h.children[meta, 1]
    assert (a < ids[meta]).all() and (b < ids[meta]).all()  # children come first
    assert (h.parent[a] == ids[meta]).all() and (h.parent[b] == ids[meta]).all()
    assert (h.pour_elevation[a] == h.pour_elevation[b]).all()
    assert (h.pour_elevation[a] <= h.pour_elevation[meta]).all()
    assert (h.volume_m3[meta] >= h.volume_m3[a] + h.volume_m3[b] - 1e-9).all()
    assert (h.catchment_cells[meta] == h.catchment_cells[a] + h.catchment_cells[b]).all()
    assert (h.spill_target[a] == b).all() and (h.spill_target[b] == a).all()
    assert (h.min_elevation[meta] == np.minimum(h.min_elevation[a], h.min_elevation[b])).all()
    # the bands split the depressions' cells, each by elevation, the wet ones first
    cells = h.band_cells
    assert np.unique(cells).size == cells.size and not invalid.ravel()[cells].any()
    z = dem.ravel()
    for x in range(n):
        band = z[cells[h.band_start[x] : h.band_start[x + 1]]]
        assert (np.diff(band) >= 0).all()
        assert (band[: h.band_below[x]] < h.pour_elevation[x]).all()
        assert (band[h.band_below[x] :] == h.pour_elevation[x]).all()


def test_float32_and_float64_give_the_same_hierarchy() -> None:
    dem = random_terrain(7).astype(np.float32)
    h32 = depression_hierarchy(dem)
    h64 = depression_hierarchy(dem.astype(np.float64))
    for name in ("labels", "parent", "children", "pour_cell", "spill_leaf", "area_cells"):
        np.testing.assert_array_equal(getattr(h32, name), getattr(h64, name), err_msg=name)
    np.testing.assert_allclose(h32.volume_m3, h64.volume_m3, rtol=1e-12)


def test_nodata_is_an_outlet_like_the_border() -> None:
    dem = np.full((7, 7), 5.0)
    dem[3, 3] = 1.0  # a pit ...
    dem[3, 4] = 3.0  # ... whose lowest rim cell touches a nodata cell
    nodata = np.zeros(dem.shape, bool)
    nodata[3, 5] = True
    for h in (depression_hierarchy(dem, nodata),
              depression_hierarchy(np.where(nodata, np.nan, dem))):  # fmt: skip
        assert h.count == 1
        assert h.pour_elevation[0] == 3.0 and h.volume_m3[0] == 2.0
        assert (h.pour_row[0], h.pour_col[0]) == (3, 4) and h.spill_target[0] == -1
        assert h.labels[3, 5] == -1


def test_as_many_leaves_as_richdem_on_terrain_without_flats() -> None:
    dem = random_terrain(8, (120, 150), flats=False)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        labels = rd.get_new_depression_hierarchy_labels(dem.shape)
        deps, _ = rd.get_depression_hierarchy(rd.rdarray(dem.copy(), no_data=-9999), labels)
    no_child = 2**32 - 1
    richdem_leaves = sum(1 for d in deps[1:] if d.lchild == no_child)
    h = depression_hierarchy(dem)
    assert h.is_leaf.sum() == richdem_leaves
    assert h.count == len(deps) - 1 - sum(1 for d in deps[1:] if d.dep_vol == 0)


def test_real_terrain_fills_like_priority_flood(shared_data: Path) -> None:
    with rasterio.open(shared_data / DK_TERRAIN) as src:
        dem = src.read(1)
        nodata = dem == src.nodata  # a few corner cells: below every elevation for RichDEM
        area = abs(src.transform.a * src.transform.e)
    h = depression_hierarchy(dem, nodata, cell_area=area)
    filled = richdem_fill(dem).astype(np.float64)
    wet = (filled > dem) & ~nodata
    assert h.count > 10 and (h.volume_m3 > 0).all()
    assert h.area_cells[h.is_top].sum() == wet.sum()
    assert h.volume_m3[h.is_top].sum() == pytest.approx((filled - dem)[wet].sum() * area,
                                                        rel=1e-9)  # fmt: skip


@pytest.mark.parametrize(
    ("dem", "nodata", "area"),
    [
        (np.zeros(5), None, 1.0),
        (np.zeros((0, 3)), None, 1.0),
        (np.zeros((4, 4)), np.zeros((3, 4), bool), 1.0),
        (np.zeros((4, 4)), None, 0.0),
        (np.zeros((4, 4)), None, float("nan")),
    ],
)
def test_bad_input_is_refused(dem: np.ndarray, nodata: np.ndarray | None, area: float) -> None:
    with pytest.raises(InvalidInput):
        depression_hierarchy(dem, nodata, cell_area=area)
