"""``geoby ingest sample DIR``: load a generated sample town through the real pipelines.

The sample's ``manifest.json`` lists every file with its family. They are
loaded in dependency order (terrain, climate, water, energy, waste,
utilities; buildings before their consumption, bins before their readings),
each through the same family pipeline a user's file would take, so the demo
exercises the real ingestion path. Choices:

- the 16 DEM tiles are one mosaic (one ``terrain`` call); the ASCII-grid and
  XYZ copies of single tiles exist to test those readers and are not loaded;
- buildings and roads (manifest family ``base``) load with the energy and
  water families, which own those layers;
- each utility owner's network is written twice (GeoPackage and LER GML);
  the LER GML, the Danish exchange format, is loaded, with the owner's name
  from the manifest.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ingest.loader import LoadReport
from ingest.pipelines import IngestOptions, ingest
from ingest.sample.manifest import read_manifest
from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

ORDER = ("terrain", "climate", "water", "energy", "waste", "utilities")
BASE_FAMILY = {"buildings.gpkg": "energy", "roads.gpkg": "water"}
# within a family, files whose rows others refer to come first
FIRST = ("buildings.gpkg", "bins.gpkg", "fleet.csv", "rain_gauges.csv")


@dataclasses.dataclass(frozen=True)
class Step:
    """One call of a family pipeline."""

    family: str
    paths: tuple[Path, ...]
    owner: str | None = None


def plan(directory: Path, manifest: dict) -> list[Step]:
    """The family calls that load a sample, in order."""
    by_family: dict[str, list[dict]] = {family: [] for family in ORDER}
    for entry in manifest["files"]:
        family = entry["family"]
        if family == "base":
            family = BASE_FAMILY.get(Path(entry["path"]).name, "")
        if family in by_family:
            by_family[family].append(entry)
    owners = {o["slug"]: o["name"] for o in manifest.get("owners", [])}
    steps: list[Step] = []
    for family in ORDER:
        entries = sorted(by_family[family],
                         key=lambda e: (Path(e["path"]).name not in FIRST, e["path"]))  # fmt: skip
        if family == "terrain":
            tiles = tuple(directory / e["path"] for e in entries if e["format"] == "GTiff")
            steps.append(Step("terrain", tiles))
            continue
        for entry in entries:
            path = directory / entry["path"]
            if family == "utilities":
                if entry["format"] != "GML":
                    continue
                steps.append(Step(family, (path,), owners.get(path.stem)))
            else:
                steps.append(Step(family, (path,)))
    return steps


def ingest_sample(
    database: Database,
    directory: Path,
    options: IngestOptions | None = None,
    *,
    families: tuple[str, ...] = ORDER,
) -> list[LoadReport]:
    """Load every file of a generated sample; rerunning loads only what changed.

    Parameters
    ----------
    database
        Where to load.
    directory
        The sample's root (holding ``manifest.json``).
    options
        Mode and other options for every call; the owner is set per utility file.
    families
        Load only these families (the demo and tests may skip some).

    Raises
    ------
    InvalidInput
        No manifest in ``directory``.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise InvalidInput(
            f"{directory} holds no sample manifest.json; generate one with "
            f"`geoby sample --out {directory}`", record=str(directory),
        )  # fmt: skip
    options = options or IngestOptions()
    reports: list[LoadReport] = []
    for step in plan(directory, manifest):
        if step.family not in families:
            continue
        step_options = dataclasses.replace(options, owner=step.owner or options.owner)
        reports.extend(ingest(database, step.family, list(step.paths), step_options))
    return reports
