"""OGC API - Processes for flood scenarios: ``flood-cloudburst``, ``flood-sealevel``,
``flood-bluespots`` and ``flood-flowpaths``.

Each runs :func:`flood.scenario.run` as a job (asynchronous by preference: a
client sends ``Prefer: respond-async`` and follows the job's ``monitor``
link), reports its progress on the job (``progress`` 0-100 and a message, as
the run goes), and answers with the scenario's summary: the resolved inputs
(design rain, sea level), volumes and areas, exposure totals, and the layers it
wrote with their OGC API links. Results are ordinary layers, so the depth is a
coverage and the polygons and exposure are feature collections and vector
tiles. Exposure of buried assets is stored in a restricted layer; the job's
answer carries only its totals.

Inputs are checked before a job is created (:func:`flood.scenario.parameters`),
so bad input is a 400 naming the input, and leaves no job behind.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from api.ogc import config
from api.ogc.processes import GeobyProcessor, InvalidProcessInput, register
from flood.edits import Edits
from flood.scenario import Scenario, resolve_inputs, run
from flood.store import drop_layers
from layers.crs import CRS84, epsg_from_uri
from layers.errors import GeobyError, InvalidInput, NotFound

log = logging.getLogger(__name__)

_NUMBER = {"type": "number"}
_COMMON = {
    "terrain_layer": {
        "title": "Terrain layer",
        "description": "A raster layer of the catalog (default terrain_dtm).",
        "schema": {"type": "string", "default": "terrain_dtm"},
        "minOccurs": 0, "maxOccurs": 1,
    },
    "edits": {
        "title": "Terrain edits",
        "description": (
            "{barriers: [GeoJSON Feature with properties.crest_height_m], openings: [GeoJSON "
            "LineString Feature]} in `crs`: dikes and walls raise the terrain to their crest, "
            "openings (culverts) let water through; for this run only."
        ),
        "schema": {"type": "object"},
        "minOccurs": 0, "maxOccurs": 1,
    },
    "crs": {
        "title": "CRS of the edits",
        "schema": {"type": "string", "default": CRS84},
        "minOccurs": 0, "maxOccurs": 1,
    },
}  # fmt: skip


def _input(title: str, description: str, schema: dict | None = None) -> dict[str, Any]:
    return {"title": title, "description": description, "schema": schema or _NUMBER,
            "minOccurs": 0, "maxOccurs": 1}  # fmt: skip


_INPUTS: dict[str, dict[str, Any]] = {
    "cloudburst": {
        "rain_mm": _input("Rain (mm)", "Net rain depth; or give return_period_years and "
                          "duration_min to use the ingested IDF table."),
        "return_period_years": _input("Return period (years)", "With duration_min."),
        "duration_min": _input("Duration (minutes)", "With return_period_years."),
        "climate_factor": _input("Climate factor", "Default: the ingested factor for the "
                                 "return period."),
        "drainage_mm": _input("Drainage capacity (mm)", "What the sewers carry away during "
                              "the event; default 0."),
        "min_depth_m": _input("Smallest depression depth (m)", "Shallower depressions are "
                              "left out of the fill-state layer; default 0.05."),
    },
    "sealevel": {
        "level_m": _input("Water level (m DVR90)", "Or give year."),
        "year": _input("Scenario year", "Sea level of the ingested climate scenario.",
                       {"type": "integer"}),
        "climate_scenario": _input("Climate scenario", "Default SSP2-4.5.", {"type": "string"}),
        "surge_return_period": _input("Storm surge return period (years)", "0, 20 or 100.",
                                      {"type": "integer", "enum": [0, 20, 100]}),
    },
    "bluespots": {
        "min_depth_m": _input("Smallest depth (m)", "Default 0.05."),
        "min_area_m2": _input("Smallest area (m2)", "Default 0."),
    },
    "flowpaths": {
        "min_area_m2": _input("Upstream area of a flow path (m2)", "Default 10,000."),
    },
}  # fmt: skip
_TEXT = {
    "cloudburst": ("Cloudburst: fill-spill-merge of a design rain",
                   "Rain falls on the terrain, fills depressions, spills over their pour points "
                   "and merges downstream. Writes a water-depth coverage, flooded areas by depth "
                   "class, each depression's fill state and the exposed buildings, roads and "
                   "buried assets."),
    "sealevel": ("Sea level / storm surge, connected to the sea",
                 "Floods only cells the sea reaches at the given level (barriers burned in "
                 "first); reports the naive bathtub's area beside it. Writes a water-depth "
                 "coverage, flooded areas and exposure."),
    "bluespots": ("Bluespots: the depressions of the terrain",
                  "Every depression with depth, area, volume, pour point, spill target, "
                  "catchment, the rain that fills it, and the nested hierarchy."),
    "flowpaths": ("Flow accumulation and main flow paths",
                  "D8 flow directions on the filled terrain, accumulation as a coverage, main "
                  "flow paths as lines."),
}  # fmt: skip


def metadata(kind: str) -> dict[str, Any]:
    """The process description of one scenario kind."""
    title, description = _TEXT[kind]
    return {
        "version": "1.0.0",
        "id": f"flood-{kind}",
        "title": title,
        "description": description,
        "jobControlOptions": ["async-execute", "sync-execute"],
        "keywords": ["flood", kind, "terrain"],
        "links": [],
        "inputs": copy.deepcopy(_INPUTS[kind] | _COMMON),
        "outputs": {
            "summary": {
                "title": "Scenario summary",
                "description": "Resolved inputs, volumes, areas, exposure totals and layers.",
                "schema": {"type": "object", "contentMediaType": "application/json"},
            }
        },
        "example": {"inputs": _EXAMPLES[kind]},
    }


_EXAMPLES = {
    "cloudburst": {"return_period_years": 100, "duration_min": 60},
    "sealevel": {"year": 2100, "surge_return_period": 100},
    "bluespots": {"min_depth_m": 0.1},
    "flowpaths": {"min_area_m2": 10000},
}


# Runs at once per process: a scenario on a large DEM takes all of a core and GBs.
MAX_RUNNING = 2
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)
# Names the climate lookups use for what the processes call otherwise.
_FIELDS = {
    "return_period": "return_period_years",
    "scenario": "climate_factor",
    "layer": "terrain_layer",
}


class FloodProcessor(GeobyProcessor):
    """A flood scenario of the kind named by the class."""

    kind = ""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, metadata(self.kind))
        self.job_id: str | None = None

    def set_job_id(self, job_id: str) -> None:
        self.job_id = job_id

    def validate(self, data: dict[str, Any]) -> Scenario:
        data = super().validate(data)
        params = {k: v for k, v in data.items() if k in _INPUTS[self.kind]}
        try:
            epsg = epsg_from_uri(data.get("crs") or CRS84)
        except (GeobyError, ValueError) as exc:
            raise InvalidProcessInput("crs", str(exc)) from None
        try:
            edits = Edits.from_json(data.get("edits"), epsg)
            layer = data.get("terrain_layer") or "terrain_dtm"
            if not isinstance(layer, str):
                raise InvalidInput("must be a layer id", field="terrain_layer")
            scenario = Scenario(self.kind, params, edits, layer)
            resolve_inputs(self.bound.database, scenario)
            return scenario
        except (InvalidInput, NotFound) as exc:
            name = (exc.field or "inputs").split(".")[0].split("[")[0]
            raise InvalidProcessInput(_FIELDS.get(name, name), exc.detail) from None

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        scenario = self.validate(data)
        if not _SLOTS.acquire(blocking=False):  # a burst of runs queues, not shares the cores
            self._progress(5, f"waiting: {MAX_RUNNING} scenarios are running")
            _SLOTS.acquire()
        try:
            summary = run(self.bound.database, scenario, progress=self._progress)
        finally:
            _SLOTS.release()
        base = f"{config.base_url(self.bound)}/collections"
        summary["links"] = [{"href": f"{base}/{layer_id}", "rel": "related", "title": layer_id}
                            for layer_id in summary.get("layers", [])]  # fmt: skip
        return "application/json", summary

    def discard(self, data: dict[str, Any]) -> None:
        """Remove what a run on ``data`` may have written before it was cut off.

        Called by the job manager for a job interrupted by a restart: a scenario's
        layers are written one after another, so a run killed halfway leaves some
        of them registered; the catalog then shows all of a scenario or none of it.
        """
        drop_layers(self.bound.database, self.validate(data).layer_ids())

    def _progress(self, percent: int, message: str) -> None:
        log.info("flood-%s %s: %d%% %s", self.kind, self.job_id, percent, message)
        if self.job_id is None:
            return
        with self.bound.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE geoby.jobs SET progress = %s, message = %s, updated = now() "
                "WHERE identifier = %s AND status = 'running'",
                (max(10, min(99, int(percent))), message[:200], self.job_id),
            )


class CloudburstProcessor(FloodProcessor):
    kind = "cloudburst"


class SeaLevelProcessor(FloodProcessor):
    kind = "sealevel"


class BluespotsProcessor(FloodProcessor):
    kind = "bluespots"


class FlowPathsProcessor(FloodProcessor):
    kind = "flowpaths"


PROCESSORS = {
    "cloudburst": CloudburstProcessor,
    "sealevel": SeaLevelProcessor,
    "bluespots": BluespotsProcessor,
    "flowpaths": FlowPathsProcessor,
}
for _kind, _class in PROCESSORS.items():
    register(f"flood-{_kind}", f"{__name__}.{_class.__name__}")
