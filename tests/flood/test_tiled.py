"""Tiled Priority-Flood (Barnes 2016) equals the in-memory fill, cell for cell.

The reference is RichDEM's ``FillDepressions(epsilon=False, topology="D8")``. RichDEM
treats a nodata hole inside the raster as a pit to fill, while geoby's convention makes the
hole's rim an outlet; for DEMs with such holes the reference is an independent
morphological reconstruction (repeated 3x3 minimum filters, no priority queue), itself
checked against RichDEM on DEMs without holes.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import richdem as rd
from dask.distributed import Client, LocalCluster
from rasterio.enums import Resampling
from rasterio.transform import Affine
from scipy import ndimage as ndi

from flood.tiled import fill_depressions_tiled
from layers.errors import InvalidInput

ND = -9999.0


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    )
    with cluster, Client(cluster) as client:
        yield client


@pytest.fixture
def dtm(shared_data):
    """The real 10 m Danish DTM (100 x 100, a few nodata cells on its border)."""
    return shared_data / "dk-terrain" / "dk_dtm_6171_727_10m_dvr90.tif"


def richdem_fill(dem: np.ndarray, invalid: np.ndarray | None = None) -> np.ndarray:
    """RichDEM's fill, NaN at nodata (RichDEM sees nodata as a value below every elevation)."""
    z = np.where(invalid, ND, dem).astype(dem.dtype) if invalid is not None else dem.copy()
    r = rd.rdarray(z, no_data=ND)
    r.geotransform = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    out = np.array(rd.FillDepressions(r, epsilon=False, topology="D8"))
    if invalid is not None:
        out[invalid] = np.nan
    return out


def reconstruction_fill(dem: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """Fill by reconstruction: lower a +inf sheet until each cell meets an outlet's level."""
    z = np.where(invalid, np.inf, dem.astype(np.float64))
    outlet = ndi.binary_dilation(invalid, np.ones((3, 3), bool)) & ~invalid
    outlet[0, :] = outlet[-1, :] = outlet[:, 0] = outlet[:, -1] = True
    f = np.where(outlet, z, np.inf)
    while True:
        g = np.maximum(z, np.minimum(f, ndi.minimum_filter(f, 3, mode="constant", cval=np.inf)))
        if np.array_equal(g, f):
            break
        f = g
    f[invalid] = np.nan
    return f.astype(dem.dtype)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def terrain(shape, seed: int, dtype=np.float32, smooth: float = 2.0) -> np.ndarray:
    """Rough random terrain with depressions of many sizes."""
    rng = np.random.default_rng(seed)
    dem = ndi.gaussian_filter(rng.standard_normal(shape), smooth) * 20
    return (dem + rng.standard_normal(shape) * 0.05).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strategy", ["retain", "recompute"])
@pytest.mark.parametrize(
    "tile", [(16, 16), (7, 9), (13, 64), (1, 61), (53, 1), (100, 100)], ids=str
)
def test_random_dems_equal_richdem(client, tile, strategy, dtype):
    dem = terrain((53, 61), seed=sum(tile), dtype=dtype)
    dem[::5, 3::7] += np.float32(0.5)  # and some white noise of pits and peaks
    got = fill_depressions_tiled(dem, tile=tile, client=client, strategy=strategy)
    assert same(got, richdem_fill(dem))


def test_one_cell_tiles(client):
    dem = np.random.default_rng(3).random((8, 9)).astype(np.float32)
    assert same(fill_depressions_tiled(dem, tile=(1, 1), client=client), richdem_fill(dem))


def test_reference_matches_richdem_without_holes():
    dem = terrain((40, 45), seed=9, dtype=np.float64)
    sea = np.zeros(dem.shape, bool)
    sea[:6, :10] = True  # nodata touching the border: both conventions agree
    assert same(reconstruction_fill(dem, sea), richdem_fill(dem, sea))


@pytest.mark.parametrize("tile", [(10, 10), (9, 14), (1, 50)], ids=str)
def test_nodata_connected_to_border_crossing_tiles(client, tile):
    dem = terrain((44, 50), seed=5)
    invalid = np.zeros(dem.shape, bool)
    invalid[:15, :17] = True  # a sea over four tiles
    invalid[14:, 24:26] = True  # a channel from it to the south border, along tile edges
    invalid[14, 16:24] = True
    invalid[30:, 40:] = True
    dem[invalid] = np.nan
    got = fill_depressions_tiled(dem, tile=tile, client=client)
    assert same(got, richdem_fill(dem, invalid))


@pytest.mark.parametrize("tile", [(10, 10), (8, 13)], ids=str)
def test_inner_nodata_holes_crossing_tiles_are_outlets(client, tile):
    dem = terrain((40, 41), seed=11, dtype=np.float64)
    invalid = np.zeros(dem.shape, bool)
    invalid[8:13, 7:12] = True  # across a tile corner
    invalid[25:27, 15:35] = True  # along tile rows
    invalid[20, 20] = True
    got = fill_depressions_tiled(dem, tile=tile, client=client, nodata=invalid)
    assert same(got, reconstruction_fill(dem, invalid))
    assert not same(got, richdem_fill(dem, invalid))  # RichDEM fills the holes instead


def test_rim_of_inner_hole_drains_into_it(client):
    dem = np.full((9, 9), 5.0)
    dem[2:7, 2:7] = 1.0  # a basin over four 4x4 tiles, with a hole at its centre
    invalid = np.zeros(dem.shape, bool)
    invalid[4, 4] = True
    got = fill_depressions_tiled(dem, tile=(4, 4), client=client, nodata=invalid)
    expected = dem.copy()
    expected[4, 4] = np.nan
    assert same(got, expected)


def test_depression_spanning_four_tiles(client):
    n = 40
    r, c = np.mgrid[:n, :n]
    dem = (1 + np.hypot(r - 19.5, c - 19.5) * 0.05).astype(np.float32)  # bowl on tile corner
    dem[(r - 19.5) ** 2 + (c - 19.5) ** 2 > 15**2] = 9.0  # rim
    dem[0:20, 5] = 2.0  # a lower pass through the rim, inside the top-left tile only
    dem[20, 20] = -3.0  # the bottom, in the bottom-right tile
    got = fill_depressions_tiled(dem, tile=(20, 20), client=client)
    assert same(got, richdem_fill(dem))
    assert got[20, 20] == 2.0 and got[25, 30] == 2.0  # the whole bowl stands at the pass


def test_flats_crossing_tiles(client):
    dem = np.full((30, 30), 4.0, np.float32)
    dem[5:25, 5:25] = 1.0  # a flat-bottomed basin over nine tiles
    dem[12:18, 12:18] = 6.0  # a flat plateau inside it, on tile corners
    dem[0:5, 14] = 3.0  # a channel through the 4.0 ring to the border: the basin spills at 3
    got = fill_depressions_tiled(dem, tile=(10, 10), client=client)
    assert same(got, richdem_fill(dem))
    expected = dem.copy()
    expected[5:25, 5:25] = np.maximum(dem[5:25, 5:25], 3.0)
    assert same(got, expected)


@pytest.mark.parametrize("tile", [(32, 32), (17, 23), (1, 100)], ids=str)
def test_real_dtm(client, dtm, tile):
    with rasterio.open(dtm) as ds:
        dem = ds.read(1, masked=True)
    invalid = np.ma.getmaskarray(dem)
    dem = dem.filled(np.nan)
    got = fill_depressions_tiled(dem, tile=tile, client=client)
    assert same(got, richdem_fill(dem, invalid))
    assert (got[~invalid] > dem[~invalid]).sum() > 10  # the DTM has depressions


def test_real_dtm_resampled_to_1m_in_256_tiles(client, dtm):
    with rasterio.open(dtm) as ds:  # the real 1 km tile, bilinear to 1000 x 1000
        dem = ds.read(1, out_shape=(1000, 1000), resampling=Resampling.bilinear, masked=True)
    invalid = np.ma.getmaskarray(dem)
    dem = dem.filled(np.nan)
    got = fill_depressions_tiled(dem, tile=(256, 256), client=client)
    assert same(got, richdem_fill(dem, invalid))


def test_file_in_file_out(client, tmp_path):
    dem = terrain((70, 90), seed=21)
    dem[:3, :40] = ND  # nodata in the file, crossing tile edges at the border
    transform = Affine(0.4, 0.0, 727000.0, 0.0, -0.4, 6172000.0)
    src = tmp_path / "dem.tif"
    profile = dict(driver="GTiff", height=70, width=90, count=1, dtype="float32",
                   crs="EPSG:25832", transform=transform, nodata=ND)  # fmt: skip
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(dem, 1)
    dst = tmp_path / "filled.tif"
    assert fill_depressions_tiled(src, dst, tile=(32, 32), client=client) is None
    with rasterio.open(dst) as ds:
        got = ds.read(1)
        assert ds.crs.to_epsg() == 25832 and ds.transform == transform
        assert ds.profile["tiled"] and ds.block_shapes == [(32, 32)]
        assert np.isnan(ds.nodata)
    expected = richdem_fill(dem, dem == ND)
    assert same(got, expected)
    in_memory = fill_depressions_tiled(src, tile=(25, 40), client=client)
    assert same(in_memory, expected)
    unaligned = tmp_path / "unaligned.tif"  # tiles that split the file's blocks
    fill_depressions_tiled(src, unaligned, tile=(25, 40), client=client, strategy="retain")
    with rasterio.open(unaligned) as ds:
        assert same(ds.read(1), expected)


def test_real_dtm_file_to_file_default_cluster(dtm, tmp_path):
    dst = tmp_path / "dtm_filled.tif"
    fill_depressions_tiled(dtm, dst, tile=(48, 48))  # client=None: own local cluster
    with rasterio.open(dtm) as ds:
        dem = ds.read(1, masked=True)
    with rasterio.open(dst) as ds:
        got = ds.read(1)
    assert same(got, richdem_fill(dem.filled(np.nan), np.ma.getmaskarray(dem)))


def test_integer_dem_fills_as_float64(client):
    dem = (terrain((30, 30), seed=2) * 10).astype(np.int16)
    got = fill_depressions_tiled(dem, tile=(8, 8), client=client)
    assert same(got, richdem_fill(dem.astype(np.float64)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"src": np.zeros((4, 4, 2))},
        {"src": np.zeros((4, 4)), "tile": (0, 4)},
        {"src": np.zeros((4, 4)), "nodata": np.zeros((3, 4), bool)},
        {"src": np.zeros((4, 4)), "strategy": "keep"},
    ],
)
def test_invalid_input(kwargs):
    with pytest.raises(InvalidInput):
        fill_depressions_tiled(**kwargs)


def test_mask_with_a_path_is_refused(dtm):
    with pytest.raises(InvalidInput, match="nodata mask"):
        fill_depressions_tiled(dtm, nodata=np.zeros((100, 100), bool))
