"""Bluespot and flooded-area polygons: hand-built cases, the traced geometry against
rasterio.features.shapes (GDAL's polygonize), and the real Danish DTM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import shapes
from rasterio.transform import from_origin
from shapely.geometry import box, shape

from flood.bluespots import _polygons, bluespot_polygons, flooded_polygons
from flood.depressions import depression_hierarchy
from flood.fsm import fill_spill_merge
from layers.errors import InvalidInput

DK_TERRAIN = "dk-terrain/dk_dtm_6171_727_10m_dvr90.tif"
TRANSFORM = from_origin(700000.0, 6200000.0, 2.0, 2.0)  # 2 m cells, row 0 north


def two_basins() -> np.ndarray:
    """As in test_depressions: basins A (1 m) and B (2 m) split by a 3 m saddle column,
    merging below a 4 m gap."""
    dem = np.full((7, 11), 9.0)
    dem[1:6, 1:10] = 5.0
    dem[2:5, 2:5] = 1.0
    dem[2:5, 5] = 3.0
    dem[2:5, 6:9] = 2.0
    dem[3, 9] = dem[3, 10] = 4.0
    return dem


def cells(row0: int, row1: int, col0: int, col1: int) -> shapely.Polygon:
    """The polygon of raster rows row0..row1-1 and columns col0..col1-1 under TRANSFORM."""
    x0, y0 = TRANSFORM @ (col0, row0)
    x1, y1 = TRANSFORM @ (col1, row1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def test_two_basins_as_polygons() -> None:
    dem = two_basins()
    h = depression_hierarchy(dem, cell_area=4.0)
    frame = bluespot_polygons(h, TRANSFORM, "EPSG:25832")
    a, b = h.labels[3, 3], h.labels[3, 7]
    m = h.parent[a]
    assert frame.crs.to_epsg() == 25832
    assert frame["depression_id"].tolist() == sorted([a, b, m])
    rows = frame.set_index("depression_id")
    assert rows.loc[a, "is_leaf"] and not rows.loc[a, "is_top"] and rows.loc[a, "top_id"] == m
    assert rows.loc[m, "is_top"] and not rows.loc[m, "is_leaf"]
    assert rows.geometry[a].equals(cells(2, 5, 2, 5))
    assert rows.geometry[b].equals(cells(2, 5, 6, 9))
    assert rows.geometry[m].equals(cells(2, 5, 2, 9))  # both basins and the saddle
    assert rows.loc[m, "volume_m3"] == 48 * 4 and rows.loc[m, "area_m2"] == 21 * 4
    assert rows.loc[a, "rain_to_fill_mm"] == pytest.approx(720.0)
    assert rows.loc[m, "spill_target"] == -1 and rows.loc[a, "spill_target"] == b
    x, y = TRANSFORM @ (10.5, 3.5)  # the centre of the pour cell (3, 10)
    assert (rows.loc[m, "pour_x"], rows.loc[m, "pour_y"]) == (x, y)
    shallow = bluespot_polygons(h, TRANSFORM, "EPSG:25832", min_depth=1.5)
    assert sorted(shallow["depression_id"]) == sorted([a, m])


@pytest.mark.parametrize("seed", range(6))
def test_traced_polygons_match_gdal_polygonize(seed: int) -> None:
    rng = np.random.default_rng(seed)
    regions = rng.integers(-1, 3, (23, 29)).astype(np.int32)  # diagonal touches, holes
    regions[5:15, 5:15] = 1
    regions[8:12, 8:12] = 2  # an island in a hole
    regions[9:11, 9:11] = -1
    geoms, labels = _polygons(regions.copy(), TRANSFORM, per_part=False)
    assert labels.tolist() == [0, 1, 2]
    assert shapely.is_valid(geoms).all()
    for label, geom in zip(labels, geoms, strict=True):
        parts = [shape(g) for g, v in shapes(regions, regions == label, transform=TRANSFORM)
                 if v == label]  # fmt: skip
        gdal = shapely.union_all(parts)
        assert len(geom.geoms) == len(parts)
        assert geom.symmetric_difference(gdal).area == 0
        assert geom.area == pytest.approx(4.0 * (regions == label).sum())


def test_real_terrain_bluespots(shared_data: Path) -> None:
    with rasterio.open(shared_data / DK_TERRAIN) as src:
        dem = src.read(1)
        nodata = dem == src.nodata
        transform, crs = src.transform, src.crs
    area = abs(transform.a * transform.e)
    h = depression_hierarchy(dem, nodata, cell_area=area)
    frame = bluespot_polygons(h, transform, crs)
    leaves, tops = h.is_leaf.sum(), (h.is_top & ~h.is_leaf).sum()
    assert len(frame) == leaves + tops and frame["depression_id"].is_unique
    assert frame.is_valid.all() and (frame.geom_type == "MultiPolygon").all()
    np.testing.assert_allclose(frame.area, frame["area_m2"])
    assert frame.total_bounds[0] >= transform.c and frame.total_bounds[3] <= transform.f
    by_id = frame.set_index("depression_id").geometry
    inner = frame[frame["is_leaf"] & ~frame["is_top"]]
    for leaf, top in zip(inner["depression_id"], inner["top_id"], strict=True):
        assert by_id[top].buffer(1e-6).contains(by_id[leaf])
    # a full rain wets exactly the top-level bluespots
    wet = fill_spill_merge(dem, h, 1e6, nodata).depth > 0
    tops_area = frame.loc[frame["is_top"], "area_m2"].sum()
    assert tops_area == pytest.approx(wet.sum() * area)


def test_flooded_polygons_by_depth_class() -> None:
    depth = np.zeros((8, 10))
    depth[1:7, 1:7] = 0.2  # class 1 (0.1-0.3 m) ...
    depth[3:5, 3:5] = 1.5  # ... around a class 3 core (>= 1 m): a hole
    depth[1, 8] = 0.5  # class 2, a single cell
    depth[6, 8] = 0.05  # too shallow
    depth[0, 0] = np.nan
    frame = flooded_polygons(depth, TRANSFORM, "EPSG:25832")
    assert sorted(frame["depth_class"]) == [1, 2, 3]
    rows = frame.set_index("depth_class")
    assert rows.geometry[1].equals(cells(1, 7, 1, 7).difference(cells(3, 5, 3, 5)))
    assert rows.loc[1, "area_m2"] == (36 - 4) * 4.0 and rows.loc[1, "label"] == "0.1-0.3 m"
    assert rows.geometry[3].equals(cells(3, 5, 3, 5)) and np.isnan(rows.loc[3, "max_depth_m"])
    assert rows.loc[2, "min_depth_m"] == 0.3 and rows.loc[3, "label"] == ">= 1 m"
    assert len(flooded_polygons(np.zeros((4, 4)), TRANSFORM, None)) == 0
    for bad in ((), (0.3, 0.1)):
        with pytest.raises(InvalidInput):
            flooded_polygons(depth, TRANSFORM, None, bad)
