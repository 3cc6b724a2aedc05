"""Coordinate reference systems: the storage CRS, the output CRSs, transformers.

geoby stores everything in EPSG:25832 (ETRS89 / UTM zone 32N) with heights in
DVR90, and serves CRS84 by default and EPSG:25832, EPSG:4326 and EPSG:3857 on
request, named by their OGC URIs. Transformers are cached (building one costs
milliseconds; using one costs microseconds) and always use x/y (east/north,
lon/lat) axis order; the OGC API adapts axis order for EPSG:4326 where the
standard requires it.

Examples
--------
>>> epsg_from_uri("http://www.opengis.net/def/crs/EPSG/0/25832")
25832
>>> x, y = transformer(4326, STORAGE_EPSG).transform(12.5, 55.7)
>>> round(x), round(y)
(719925, 6178243)
"""

from __future__ import annotations

import re
from functools import lru_cache

from pyproj import CRS, Transformer

from layers.errors import CRSMismatch

STORAGE_EPSG = 25832
VERTICAL_DATUM = "DVR90"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
#: Output CRSs the API offers; 0 stands for CRS84 (lon/lat, WGS 84).
OUTPUT_EPSG: tuple[int, ...] = (0, 4326, STORAGE_EPSG, 3857)

_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$")


def crs_uri(epsg: int) -> str:
    """OGC URI of an output CRS (``0`` for CRS84)."""
    return CRS84 if epsg == 0 else EPSG_URI.format(epsg)


def epsg_from_uri(uri: str) -> int:
    """EPSG code of an OGC CRS URI, ``0`` for CRS84; also accepts ``EPSG:nnnn``.

    Raises
    ------
    CRSMismatch
        The URI is not an OGC CRS URI or names a CRS geoby does not serve.
    """
    uri = uri.strip().strip("[]")
    if uri in (CRS84, "CRS84", "OGC:CRS84"):
        return 0
    match = _URI.match(uri) or re.match(r"^EPSG:(\d+)$", uri, re.IGNORECASE)
    if not match:
        raise CRSMismatch(f"'{uri}' is not a CRS URI geoby understands", field="crs")
    epsg = int(match.group(1))
    if epsg not in OUTPUT_EPSG:
        supported = ", ".join(crs_uri(e) for e in OUTPUT_EPSG)
        raise CRSMismatch(f"CRS {uri} is not supported; use one of {supported}", field="crs")
    return epsg


@lru_cache(maxsize=64)
def transformer(source: int | str, target: int | str) -> Transformer:
    """A cached x/y-ordered transformer between two CRSs (EPSG codes or CRS strings)."""
    return Transformer.from_crs(_as_crs(source), _as_crs(target), always_xy=True)


def _as_crs(value: int | str) -> CRS:
    if value == 0:
        return CRS.from_user_input("OGC:CRS84")
    return CRS.from_user_input(value if isinstance(value, str) else f"EPSG:{value}")


@lru_cache(maxsize=64)
def area_of_use(epsg: int) -> tuple[float, float, float, float] | None:
    """The lon/lat bounds where a projected or geographic CRS is valid, if known."""
    area = CRS.from_epsg(epsg).area_of_use
    return (area.west, area.south, area.east, area.north) if area else None


def reproject(geometry, source: str | int, target: str | int):  # noqa: ANN001, ANN201 - shapely
    """A shapely geometry from ``source`` to ``target`` (EPSG codes or pyproj strings), x first.

    0 and "CRS84" mean OGC:CRS84 (lon/lat); the result is 2D.
    """
    import shapely

    def name(crs: str | int) -> str:
        if crs in (0, "CRS84", CRS84):
            return "OGC:CRS84"
        return f"EPSG:{crs}" if isinstance(crs, int) else crs

    if name(source) == name(target):
        return geometry
    project = _transformer(name(source), name(target)).transform
    return shapely.transform(geometry, lambda xy: _apply(project, xy), include_z=False)


def _apply(project, xy):  # noqa: ANN001, ANN202 - numpy arrays
    import numpy as np

    x, y = project(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)
