"""What a waste file holds: recognising kinds from names, columns and content.

:func:`recognise` looks at a file before anything is loaded: a JSON file of
NGSI-LD entities is ``ngsi``; a CSV or spreadsheet is readings, collections,
the fleet or bins by its columns (:func:`table_kind`); each layer of a vector
file is bins, recycling stations or facilities by its name, else by its
columns. ``--option kind=KIND`` forces a kind the file's form allows. A file
that matches nothing is refused with every kind and the columns it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest import waste_ngsi
from ingest.field_map import describe, match, name_tokens
from ingest.vector import list_layers, read_fields
from ingest.waste_layers import BINS, COLLECTIONS, FLEET, KINDS, READINGS
from ingest.waste_tables import read_csv, read_xlsx
from layers.errors import InvalidInput

TABLES = (".csv", ".tsv", ".txt", ".gz")
WORKBOOKS = (".xlsx", ".xlsm")
RANK = {"ngsi": 0, "bins": 0, "recycling_stations": 0, "facilities": 0, "fleet": 1,
        "readings": 2, "collections": 3}  # fmt: skip
LAYER_WORDS = {
    "bins": {"bin", "bins", "container", "containers", "litter", "beholder", "beholdere",
             "wastecontainer", "wastecontainers", "skraldespand"},
    "recycling_stations": {"recycling", "station", "stations", "genbrug", "genbrugsoe",
                           "genbrugsoeer", "bring", "dropoff"},
    "facilities": {"facility", "facilities", "depot", "depots", "disposal", "incinerator",
                   "landfill", "plant", "plants"},
}  # fmt: skip
#: columns geoby derives, not expected from a source
DERIVED = {"fill_level_reported", "quality"}
LONLAT = (("longitude", "lon", "lng", "long"), ("latitude", "lat"))
XY = (("x", "easting", "east", "e", "x_coord", "utm_x"), ("y", "northing", "north", "n",
                                                         "y_coord", "utm_y"))  # fmt: skip


@dataclass
class Job:
    """One file to load and what it was recognised as."""

    path: Path
    kind: str
    layers: list[tuple[str, str]] | None = None  # (layer in the file, waste kind)

    @property
    def rank(self) -> int:
        kinds = [k for _, k in self.layers] if self.layers else [self.kind]
        return min(RANK[k] for k in kinds)


def recognise(path: Path, forced: str | None = None) -> Job:
    """What a file holds, or its refusal naming the kinds and their columns.

    Parameters
    ----------
    path
        The file.
    forced
        ``--option kind=...``: one of the kinds or ``ngsi``.

    Raises
    ------
    InvalidInput
        No such file, an unknown kind, a kind the file's form cannot hold
        (readings from a vector layer), or a file that matches no kind.
    """
    if forced is not None and forced not in (*KINDS, "ngsi"):
        raise InvalidInput(f"unknown waste kind '{forced}'; one of {', '.join(KINDS)}, ngsi",
                           field="kind")  # fmt: skip
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; pass its files ({path.name}/*)", record=str(path))
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", record=str(path))
    suffix = path.suffix.lower()
    if forced == "ngsi" or (forced is None and waste_ngsi.looks_like_ngsi(path)):
        return Job(path, "ngsi")
    if suffix in TABLES:
        return Job(path, forced or table_kind(read_csv(path).keys, path))
    if suffix in WORKBOOKS:
        table = read_xlsx(path, [READINGS, COLLECTIONS, FLEET, BINS])
        return Job(path, forced or table_kind(table.keys, path))
    if forced is not None and KINDS[forced].geometry_type is None:
        raise InvalidInput(f"{path.name}: {forced} come as a table (CSV or XLSX), not as a "
                           "vector file", record=path.name, field="kind")  # fmt: skip
    layers = [(n, g) for n, g in list_layers(path) if g is not None]
    if not layers:
        raise InvalidInput(f"{path.name} has no layer with geometries", record=path.name)
    found = [(name, forced or _layer_kind(path, name, len(layers) == 1)) for name, _ in layers]
    return Job(path, "vector", found)


def table_kind(keys: list[str], path: Path) -> str:
    """The kind of a table by its column keys (see the module docstring of :mod:`ingest.waste`)."""
    readings = set(match(keys, READINGS).values())
    collections = set(match(keys, COLLECTIONS).values())
    if {"bin_id", "time"} <= collections and collections & {"fill_before", "weight_kg",
                                                            "volume_l"}:  # fmt: skip
        return "collections"
    if {"bin_id", "time"} <= readings and readings & {"fill_level", "temperature_c"}:
        return "readings"
    if {"bin_id", "time"} <= collections and collections & {"collection_id", "truck_id"}:
        return "collections"
    if {"truck_id"} <= set(match(keys, FLEET).values()) and "bin_id" not in readings:
        return "fleet"
    if coordinates(keys):
        return "bins"
    raise InvalidInput(
        f"{path.name}: cannot tell what waste table this is (columns {', '.join(keys)}). "
        f"Waste kinds: {kinds_help()}. Rename the columns or pass --option kind=KIND",
        record=path.name, field="kind",
    )  # fmt: skip


def _layer_kind(path: Path, layer: str, single: bool) -> str:
    tokens = set(name_tokens(layer)) | (set(name_tokens(path.stem)) if single else set())
    found = [k for k, words in LAYER_WORDS.items() if tokens & words]
    if len(found) == 1:
        return found[0]
    if found and "recycling_stations" in found and "bins" in found:
        return "recycling_stations" if tokens & {"station", "stations"} else "bins"
    fields = read_fields(path, layer)
    if "bin_id" in match(fields, BINS).values() or "fraction" in match(fields, BINS).values():
        return "bins"
    other = [w for w in ("building", "buildings", "road", "roads", "stream", "lake", "sewer")
             if any(t.startswith(w) for t in tokens)]  # fmt: skip
    family = {"building": "energy", "buildings": "energy"}.get(other[0], "water") if other else None
    hint = f" It looks like {other[0]} data: use the {family} family." if other else ""
    raise InvalidInput(
        f"{path.name} layer {layer}: cannot tell what waste layer this is.{hint} "
        f"Waste kinds: {kinds_help()}. Name the layer after its kind or pass --option kind=KIND",
        record=f"{path.name} layer {layer}", field="kind",
    )  # fmt: skip


def kinds_help() -> str:
    """Every kind with the columns it expects (for refusals)."""
    parts = []
    for kind in KINDS.values():
        inputs = tuple(f for f in kind.fields if f.name not in DERIVED)
        where = "points with lon/lat or x/y: " if kind.geometry_type else ""
        parts.append(f"{kind.name} ({where}{describe(inputs, 6)})")
    parts.append("ngsi (NGSI-LD WasteContainer JSON: id, location, fillingLevel, "
                 "storedWasteKind, binCapacity)")  # fmt: skip
    return "; ".join(parts)


def coordinates(keys: list[str]) -> tuple[str, str, bool] | None:
    """The x and y columns and whether they are lon/lat."""
    for (xs, ys), lonlat in ((LONLAT, True), (XY, False)):
        x = next((k for k in xs if k in keys), None)
        y = next((k for k in ys if k in keys), None)
        if x and y:
            return x, y, lonlat
    return None
