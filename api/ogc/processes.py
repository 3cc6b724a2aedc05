"""OGC API - Processes: the process registry and geoby's own processes.

A process is a pygeoapi :class:`~pygeoapi.process.base.BaseProcessor` named
by its dotted path; :func:`register` adds it to the OGC configuration
(``config.EXTRA_RESOURCES``), so it is listed at ``/ogc/processes`` and runs
through the job manager of :mod:`api.ogc.jobs`. Processes that subclass
:class:`GeobyProcessor` are handed the app's :class:`~api.ogc.context.OgcContext`
(database pools, settings) by the manager, and their :meth:`~GeobyProcessor.validate`
runs before a job is created, so bad input is a 400 that leaves no job behind,
in synchronous and asynchronous execution alike.

Registered here: ``terrain-profile``, the terrain heights along a line.

Examples
--------
>>> register("terrain-profile", "api.ogc.processes.TerrainProfileProcessor")
"""

from __future__ import annotations

import copy
import logging
import math
import re
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from rasterio.windows import Window

from api.ogc import config
from api.ogc.context import OgcContext
from layers import catalog
from layers.crs import CRS84, STORAGE_EPSG, crs_uri, epsg_from_uri, transformer
from layers.errors import GeobyError

log = logging.getLogger(__name__)

_PROCESS_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def register(process_id: str, processor: str) -> None:
    """Publish a process at ``/ogc/processes/{process_id}``.

    Parameters
    ----------
    process_id
        Lower-case letters, digits and hyphens, e.g. ``terrain-profile``.
    processor
        Dotted path of the processor class, e.g. ``flood.process.CloudburstProcessor``.

    Raises
    ------
    ValueError
        A malformed id, or an id already registered for another processor.
    """
    if not _PROCESS_ID.match(process_id):
        raise ValueError(f"process id {process_id!r} is not lower-case letters, digits, '-'")
    resource = {"type": "process", "processor": {"name": processor}}
    known = config.EXTRA_RESOURCES.get(process_id)
    if known is not None and known != resource:
        raise ValueError(f"process {process_id!r} is already registered as {known}")
    config.EXTRA_RESOURCES[process_id] = resource


class InvalidProcessInput(ProcessorExecuteError):
    """An input a process cannot accept: HTTP 400, ``InvalidParameterValue``."""

    http_status_code = HTTPStatus.BAD_REQUEST
    ogc_exception_code = "InvalidParameterValue"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(user_msg=f"input '{name}': {problem}")
        self.input = name


class GeobyProcessor(BaseProcessor):
    """A process that needs geoby's database or settings.

    The job manager calls :meth:`bind` with the app's context before it runs
    or describes the process, and :meth:`validate` before it creates a job.
    """

    context: OgcContext | None = None

    def bind(self, context: OgcContext) -> None:
        """Hand the process the app's database pools and settings."""
        self.context = context

    def validate(self, data: dict[str, Any]) -> Any:
        """Check the inputs; return them parsed.

        The base class refuses unknown inputs and missing required ones.

        Raises
        ------
        InvalidProcessInput
            Names the input at fault.
        """
        if not isinstance(data, dict):
            raise InvalidProcessInput("inputs", "must be a JSON object of named inputs")
        declared = self.metadata["inputs"]
        for name in data:
            if name not in declared:
                raise InvalidProcessInput(name, f"unknown; inputs are {', '.join(declared)}")
        for name, spec in declared.items():
            if spec.get("minOccurs", 1) > 0 and data.get(name) is None:
                raise InvalidProcessInput(name, "is required")
        return data

    @property
    def bound(self) -> OgcContext:
        """The context; a process run outside a manager fails clearly."""
        if self.context is None:
            raise ProcessorExecuteError(user_msg=f"process {self.name} has no geoby context")
        return self.context


# -- terrain profile -------------------------------------------------------------------

DEFAULT_LAYER = "terrain_dtm"
DEFAULT_STEP_M = 10.0
MIN_STEP_M, MAX_STEP_M = 1.0, 1000.0
MAX_SAMPLES = 5000

_LINE_SCHEMA = {
    "type": "object",
    "description": "A GeoJSON LineString geometry.",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["LineString"]},
        "coordinates": {
            "type": "array",
            "minItems": 2,
            "items": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}},
        },
    },
}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "terrain-profile",
    "title": "Terrain profile",
    "description": (
        "Heights of the terrain model (DVR90) along a line: a sample every step_m metres, "
        "measured in EPSG:25832, and at the line's end. Each sample gives its distance "
        "along the line, its position in EPSG:25832 and the height of the terrain cell it "
        "falls in (null outside the terrain model or where it has no data), with the "
        "lowest and highest height and the line's length."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["terrain", "profile", "elevation", "DVR90"],
    "links": [],
    "inputs": {
        "line": {
            "title": "Line",
            "description": "The line to profile: a GeoJSON LineString geometry, in `crs`.",
            "schema": _LINE_SCHEMA,
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "crs": {
            "title": "CRS of the line",
            "description": (
                "CRS84 (lon, lat; the default), EPSG:25832, EPSG:3857 or EPSG:4326 "
                "(lat, lon order, as the OGC APIs use it), as an OGC URI or EPSG:nnnn."
            ),
            "schema": {"type": "string", "default": CRS84},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "step_m": {
            "title": "Sample spacing (m)",
            "description": f"Metres between samples; at most {MAX_SAMPLES} samples per line.",
            "schema": {
                "type": "number",
                "default": DEFAULT_STEP_M,
                "minimum": MIN_STEP_M,
                "maximum": MAX_STEP_M,
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "layer": {
            "title": "Terrain layer",
            "description": "Id of an open terrain raster layer of the catalog.",
            "schema": {"type": "string", "default": DEFAULT_LAYER},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "profile": {
            "title": "Profile",
            "description": (
                "layer, crs (EPSG:25832), vertical_datum, step_m, length_m, samples, "
                "min_height_m, max_height_m, and profile: a list of "
                "{distance_m, x, y, height_m}."
            ),
            "schema": {"type": "object", "contentMediaType": "application/json"},
        }
    },
    "example": {
        "inputs": {
            "line": {"type": "LineString", "coordinates": [[12.56, 55.67], [12.58, 55.68]]},
            "step_m": 10,
        }
    },
}


@dataclass(frozen=True)
class ProfileRequest:
    """Validated inputs of ``terrain-profile``: the line in EPSG:25832."""

    line: shapely.LineString
    step_m: float
    layer: catalog.Layer
    raster: Path


class TerrainProfileProcessor(GeobyProcessor):
    """``terrain-profile``: terrain heights sampled along a line."""

    def __init__(self, processor_def: dict) -> None:
        # pygeoapi's OpenAPI generation edits the metadata in place: give it a copy.
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))

    def validate(self, data: dict[str, Any]) -> ProfileRequest:
        data = super().validate(data)
        epsg = _crs(data.get("crs", CRS84))
        line = _line(data["line"], epsg)
        step = _step(data.get("step_m", DEFAULT_STEP_M))
        samples = math.ceil(line.length / step) + 1
        if samples > MAX_SAMPLES:
            least = math.ceil(line.length / (MAX_SAMPLES - 1))
            raise InvalidProcessInput(
                "step_m",
                f"{step:g} m gives {samples} samples on this {line.length:.0f} m line; the most "
                f"is {MAX_SAMPLES}: use a step of at least {least} m or a shorter line",
            )
        layer, raster = self._terrain(data.get("layer", DEFAULT_LAYER))
        return ProfileRequest(line, step, layer, raster)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        request = self.validate(data)
        return "application/json", profile(request)

    def _terrain(self, layer_id: Any) -> tuple[catalog.Layer, Path]:
        if not isinstance(layer_id, str):
            raise InvalidProcessInput("layer", "must be a layer id (a string)")
        context = self.bound
        with context.database.connection("read") as conn:
            found = catalog.list_layers(conn, access="open", ids=[layer_id])
        if not found or found[0].kind != "raster" or found[0].theme != "terrain":
            raise InvalidProcessInput("layer", f"'{layer_id}' is not an open terrain raster layer")
        path = Path(found[0].raster_path or "")
        if not path.is_absolute():
            path = context.settings.data_dir / path
        if not path.is_file():
            log.error("terrain layer %s: raster %s is missing", layer_id, path)
            raise ProcessorExecuteError(user_msg=f"the raster of layer '{layer_id}' is missing")
        return found[0], path


def profile(request: ProfileRequest) -> dict[str, Any]:
    """The profile document of a validated request (see ``PROCESS_METADATA``)."""
    line, step = request.line, request.step_m
    distances = np.arange(0.0, line.length, step)
    if line.length - distances[-1] > 1e-9 or len(distances) == 1:
        distances = np.append(distances, line.length)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(line, distances))
    heights = sample_heights(request.raster, xy[:, 0], xy[:, 1])
    known = heights[~np.isnan(heights)]
    return {
        "layer": request.layer.id,
        "crs": crs_uri(STORAGE_EPSG),
        "vertical_datum": request.layer.vertical_datum,
        "step_m": step,
        "length_m": round(float(line.length), 3),
        "samples": len(distances),
        "min_height_m": round(float(known.min()), 3) if known.size else None,
        "max_height_m": round(float(known.max()), 3) if known.size else None,
        "profile": [
            {
                "distance_m": round(float(d), 3),
                "x": round(float(x), 3),
                "y": round(float(y), 3),
                "height_m": None if math.isnan(h) else round(float(h), 3),
            }
            for d, (x, y), h in zip(distances, xy, heights, strict=True)
        ],
    }


def sample_heights(path: Path, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Band 1 of a north-up raster at points: the value of the cell each falls in.

    A point on a cell border belongs to the cell east and south of it, as in
    ``geoby.terrain_height``. Each raster block holding a point is read once.

    Returns
    -------
    numpy.ndarray
        float64 heights, NaN outside the raster and on nodata.
    """
    heights = np.full(len(xs), np.nan)
    with rasterio.Env(), rasterio.open(path) as src:
        cols, rows = ~src.transform @ (np.asarray(xs), np.asarray(ys))
        cols, rows = np.floor(cols).astype(np.int64), np.floor(rows).astype(np.int64)
        inside = (cols >= 0) & (cols < src.width) & (rows >= 0) & (rows < src.height)
        block_h, block_w = src.block_shapes[0]
        block_cols = -(-src.width // block_w)
        blocks = np.where(inside, rows // block_h * block_cols + cols // block_w, -1)
        for block in np.unique(blocks[inside]):
            at = blocks == block
            top, left = block // block_cols * block_h, block % block_cols * block_w
            window = Window(left, top, min(block_w, src.width - left),
                            min(block_h, src.height - top))  # fmt: skip
            values = src.read(1, window=window, masked=True)[rows[at] - top, cols[at] - left]
            heights[at] = np.ma.filled(values.astype(np.float64), np.nan)
    return heights


def _crs(value: Any) -> int:
    if not isinstance(value, str):
        raise InvalidProcessInput("crs", "must be a CRS URI or EPSG:nnnn string")
    try:
        return epsg_from_uri(value)
    except GeobyError as exc:
        raise InvalidProcessInput("crs", exc.detail) from None


def _line(value: Any, epsg: int) -> shapely.LineString:
    if isinstance(value, dict) and "value" in value and "type" not in value:
        value = value["value"]  # the qualified form {"value": ..., "mediaType": ...}
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or value.get("type") != "LineString":
        kind = value.get("type") if isinstance(value, dict) else type(value).__name__
        raise InvalidProcessInput("line", f"must be a GeoJSON LineString, not {kind}")
    try:
        coords = np.asarray(value.get("coordinates"), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidProcessInput("line", "coordinates must be [x, y] number pairs") from None
    if coords.ndim != 2 or coords.shape[0] < 2 or coords.shape[1] not in (2, 3):
        raise InvalidProcessInput("line", "needs at least two [x, y] positions")
    x, y = (coords[:, 1], coords[:, 0]) if epsg == 4326 else (coords[:, 0], coords[:, 1])
    if epsg != STORAGE_EPSG:
        x, y = transformer(epsg, STORAGE_EPSG).transform(x, y)
    x, y = np.asarray(x), np.asarray(y)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InvalidProcessInput("line", f"has positions that are not valid in {crs_uri(epsg)}")
    line = shapely.LineString(np.column_stack([x, y]))
    if line.length == 0:
        raise InvalidProcessInput("line", "has zero length")
    return line


def _step(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidProcessInput("step_m", "must be a number of metres")
    if not MIN_STEP_M <= value <= MAX_STEP_M:
        raise InvalidProcessInput(
            "step_m", f"{value:g} is outside {MIN_STEP_M:g}..{MAX_STEP_M:g} m"
        )
    return float(value)


register("terrain-profile", f"{__name__}.TerrainProfileProcessor")
