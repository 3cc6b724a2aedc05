"""Terrain edits for a flood scenario: barriers, culverts and openings.

Edits change the terrain of one run, never the stored terrain:

* ``barriers`` (lines or polygons with ``crest_height_m``, m in the terrain's
  datum: dikes, walls, sandbag lines) raise the cells they cover to the crest
  (:func:`flood.sealevel.burn_barriers`, diagonal gaps closed);
* ``openings`` (lines: culverts, passages under a road or an embankment) lower
  the cells along the line to the lower of the terrain heights at its two ends,
  so water passes the obstacle they cross.

Geometries come as GeoJSON in a given CRS (CRS84 by default) and are kept in
EPSG:25832.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.features import rasterize
from shapely.geometry import mapping, shape

from flood.io import Dem
from flood.sealevel import burn_barriers
from layers.crs import STORAGE_EPSG, reproject
from layers.errors import InvalidInput

MAX_EDITS = 1000


@dataclass(frozen=True)
class Edits:
    """Terrain edits for one run: barriers (geometry, crest m) and openings (lines)."""

    barriers: tuple[tuple[Any, float], ...] = ()
    openings: tuple[Any, ...] = ()

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None, crs_epsg: int = 0) -> Edits:
        """Read ``{"barriers": [...], "openings": [...]}``.

        Each item is a GeoJSON Feature (``crest_height_m`` among its properties for a
        barrier) or ``{"geometry": ..., "crest_height_m": ...}``; geometries are in
        ``crs_epsg`` (0: CRS84) and are kept in EPSG:25832.

        Raises
        ------
        InvalidInput
            Naming the edit at fault (``edits.barriers[2]``).
        """
        doc = doc or {}
        if not isinstance(doc, dict):
            raise InvalidInput("edits must be an object with barriers and openings", field="edits")
        unknown = set(doc) - {"barriers", "openings"}
        if unknown:
            raise InvalidInput(f"unknown terrain edit(s): {', '.join(sorted(unknown))}; "
                               "known: barriers, openings", field="edits")  # fmt: skip
        items = {k: [] if doc.get(k) is None else doc[k] for k in ("barriers", "openings")}
        for name, value in items.items():
            if not isinstance(value, list):
                raise InvalidInput("must be a list", field=f"edits.{name}")
        if sum(len(v) for v in items.values()) > MAX_EDITS:
            raise InvalidInput(f"at most {MAX_EDITS} edits per run", field="edits")
        barriers = []
        for i, item in enumerate(items["barriers"]):
            where = f"edits.barriers[{i}]"
            geom, props = _item(item, where, crs_epsg)
            try:
                crest = float(props["crest_height_m"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput("a barrier needs crest_height_m (m)", field=where) from exc
            if not np.isfinite(crest):
                raise InvalidInput("crest_height_m must be finite", field=where)
            barriers.append((geom, crest))
        openings = []
        for i, item in enumerate(items["openings"]):
            where = f"edits.openings[{i}]"
            geom, _ = _item(item, where, crs_epsg)
            if geom.geom_type != "LineString":
                raise InvalidInput("an opening (culvert) is a LineString", field=where)
            openings.append(geom)
        return cls(tuple(barriers), tuple(openings))

    def to_json(self) -> dict[str, Any]:
        """The edits as GeoJSON in EPSG:25832 (for a scenario's record)."""
        return {
            "barriers": [{"geometry": mapping(g), "crest_height_m": c} for g, c in self.barriers],
            "openings": [{"geometry": mapping(g)} for g in self.openings],
        }

    def __bool__(self) -> bool:
        return bool(self.barriers or self.openings)

    @property
    def key(self) -> str:
        parts = [(g.wkb_hex, c) for g, c in self.barriers] + [(g.wkb_hex, None)
                                                               for g in self.openings]  # fmt: skip
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def apply(self, dem: Dem) -> np.ndarray:
        """The edited terrain (a new array; the input stays as it is)."""
        terrain = dem.array
        if self.barriers:
            terrain = burn_barriers(terrain, list(self.barriers), dem.transform)
        if self.openings:
            terrain = np.array(terrain, copy=True)
            for line in self.openings:
                terrain = _open(terrain, line, dem)
        return terrain


def _item(item: Any, where: str, crs_epsg: int) -> tuple[Any, dict[str, Any]]:
    if not isinstance(item, dict):
        raise InvalidInput("must be a GeoJSON Feature or {geometry, ...}", field=where)
    props = item.get("properties") if item.get("type") == "Feature" else item
    return _geometry(item, where, crs_epsg), dict(props or {})


def _geometry(item: Any, field_name: str, crs_epsg: int):  # noqa: ANN202 - shapely geometry
    try:
        geom = shape(item["geometry"])
    except Exception as exc:  # noqa: BLE001 - any unreadable geometry is the caller's
        raise InvalidInput("not a GeoJSON geometry", field=field_name) from exc
    if geom.is_empty or not geom.is_valid:
        raise InvalidInput("the geometry is empty or invalid", field=field_name)
    return reproject(geom, crs_epsg, STORAGE_EPSG)


def _open(terrain: np.ndarray, line, dem: Dem) -> np.ndarray:  # noqa: ANN001 - shapely line
    cells = rasterize([(line, 1)], out_shape=terrain.shape, transform=dem.transform,
                      all_touched=True, dtype="uint8").astype(bool)  # fmt: skip
    if not cells.any():
        raise InvalidInput("an opening lies outside the terrain", field="edits.openings")
    inverse = ~dem.transform
    ends = []
    for x, y in (line.coords[0], line.coords[-1]):
        col, row = (math.floor(v) for v in inverse @ (x, y))
        if 0 <= row < terrain.shape[0] and 0 <= col < terrain.shape[1]:
            ends.append(terrain[row, col])
    level = np.nanmin(ends) if ends else np.nanmin(terrain[cells])
    terrain[cells] = np.minimum(terrain[cells], level)
    return terrain
