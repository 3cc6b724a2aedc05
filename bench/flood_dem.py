"""Synthetic lowland DEMs for ``bench_flood.py``, cached on disk.

The terrain imitates the reference benchmark of geoby issue 6 (a 0.4 m Danish-style
lowland DTM): fractional Brownian relief (Hurst exponent 0.8, standard deviation 2 m),
a tilt of 4 m west to east and 0.5 m north to south down to a sea edge on the west,
Gaussian hollows and knolls (1,600 per 64 M cells, scaled with the area; widths of
5-40 cells, from 1.5 m deep to 1 m high), two 1 m embankments three cells wide running
north-south (dikes or road beds that dam whole valleys) and 3 cm of white noise (the
survey's), so there are hundreds of thousands of depressions from centimetre pits to
lakes behind the embankments. float32, row 0 north, no nodata.

A DEM depends only on its size and seed; ``dem_path`` writes it once as ``.npy`` under
``var/bench/flood/`` and later runs reuse it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from scipy import fft

log = logging.getLogger(__name__)

CELL_M = 0.4
HURST = 0.8
RELIEF_STD_M = 2.0
HOLLOWS_PER_CELL = 1600 / 64e6
EMBANKMENT_COLUMNS = (0.3, 0.6)  # fractions of the width
NOISE_STD_M = 0.03
CRS = "EPSG:25832"
TRANSFORM = from_origin(700000.0, 6200000.0, CELL_M, CELL_M)
NODATA = -9999.0  # below every elevation


def synthetic_dem(n: int, seed: int = 1) -> np.ndarray:
    """An ``n`` x ``n`` float32 synthetic lowland DEM (m), deterministic per ``seed``.

    Parameters
    ----------
    n
        Rows and columns.
    seed
        Seed of the random generator.

    Returns
    -------
    numpy.ndarray
        float32 elevations, row 0 north, roughly -6 to +10 m.
    """
    rng = np.random.default_rng(seed)
    z = _fbm(n, rng)
    cols = np.arange(n, dtype=np.float32)[None, :] / np.float32(n)
    rows = np.arange(n, dtype=np.float32)[:, None] / np.float32(n)
    z += np.float32(4.0) * cols + np.float32(0.5) * rows - np.float32(1.0)
    _add_hollows(z, rng, max(10, round(HOLLOWS_PER_CELL * n * n)))
    for frac in EMBANKMENT_COLUMNS:
        c = int(n * frac)
        z[:, c : c + 3] += np.float32(1.0)
    z += rng.normal(0.0, NOISE_STD_M, z.shape).astype(np.float32)
    return z


def dem_path(n: int, directory: Path, seed: int = 1) -> Path:
    """The cached ``.npy`` of :func:`synthetic_dem` (written on first use).

    Parameters
    ----------
    n, seed
        As for :func:`synthetic_dem`.
    directory
        Cache folder (created if missing).

    Returns
    -------
    pathlib.Path
        The file, ``dem_<n>_seed<seed>.npy``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"dem_{n}_seed{seed}.npy"
    if not path.exists():
        log.info("generating a %d x %d synthetic DEM", n, n)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, synthetic_dem(n, seed))
        tmp.replace(path)
    return path


def dem_geotiff(npy: Path) -> Path:
    """The DEM cached at ``npy`` as a tiled GeoTIFF beside it (written on first use).

    Parameters
    ----------
    npy
        A file from :func:`dem_path`.

    Returns
    -------
    pathlib.Path
        The ``.tif`` (EPSG:25832, 0.4 m cells, nodata -9999, which no cell has).
    """
    tif = npy.with_suffix(".tif")
    if not tif.exists():
        dem = np.load(npy)
        tmp = tif.with_suffix(".tmp.tif")
        profile = {"driver": "GTiff", "width": dem.shape[1], "height": dem.shape[0], "count": 1,
                   "dtype": "float32", "crs": CRS, "transform": TRANSFORM, "nodata": NODATA,
                   "tiled": True, "blockxsize": 512, "blockysize": 512}  # fmt: skip
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(dem, 1)
        tmp.replace(tif)
    return tif


def _fbm(n: int, rng: np.random.Generator) -> np.ndarray:
    """Fractional Brownian surface by spectral synthesis, in float32 to keep 64 M cells light."""
    ky = fft.fftfreq(n).astype(np.float32)[:, None]
    kx = fft.rfftfreq(n).astype(np.float32)[None, :]
    k = np.sqrt(kx * kx + ky * ky)
    k[0, 0] = 1.0
    amp = k ** np.float32(-(2 * HURST + 2) / 2)  # power spectrum k^-(2H+2)
    amp[0, 0] = 0.0
    del k
    phase = rng.random(amp.shape, dtype=np.float32) * np.float32(2 * np.pi)
    spec = amp * np.exp(1j * phase).astype(np.complex64)
    del amp, phase
    z = fft.irfft2(spec, s=(n, n), workers=2).astype(np.float32)
    del spec
    z *= np.float32(RELIEF_STD_M / z.std())
    return z


def _add_hollows(z: np.ndarray, rng: np.random.Generator, count: int) -> None:
    n = z.shape[0]
    for _ in range(count):
        r, c = rng.integers(0, n, 2)
        sigma = rng.uniform(5, 40)
        height = rng.uniform(-1.5, 1.0)
        reach = 3 * int(sigma)
        r0, r1, c0, c1 = max(0, r - reach), min(n, r + reach), max(0, c - reach), min(n, c + reach)
        rr = np.arange(r0, r1, dtype=np.float32)[:, None] - np.float32(r)
        cc = np.arange(c0, c1, dtype=np.float32)[None, :] - np.float32(c)
        bump = np.exp(-(rr * rr + cc * cc) / np.float32(2 * sigma * sigma))
        z[r0:r1, c0:c1] += np.float32(height) * bump
