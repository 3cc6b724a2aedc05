"""NGSI-LD ``WasteContainer`` entities (FIWARE smart data model) as bins and readings.

A file is one entity or a JSON array of entities, as a context broker
returns them, in the normalized form (``{"type": "Property", "value": ...}``)
or the concise/keyValues form (plain values); attribute names may be
compacted (``fillingLevel``) or expanded URIs. Mapping
(https://github.com/smart-data-models/dataModel.WasteManagement):

=========================================  ==========================================
entity                                     geoby
=========================================  ==========================================
``id``                                     ``bin_id`` (the entity id, unchanged)
``location`` (GeoJSON, WGS 84)             the bin's point
``storedWasteKind``                        ``fraction`` (normalised; the reported
                                           value kept in ``properties``)
``binCapacity``                            ``capacity_l`` (litres assumed)
``category``                               ``bin_type`` (comma list)
``refWasteContainerModel``                 ``model``
``refWasteContainerIsle`` / ``isleId``     ``site_id``
``name``, ``address``, ``description``     ``name``, ``address``, ``description``
every other attribute                      ``properties``
``fillingLevel`` (0-1)                     a reading at ``fillingLevel.observedAt``,
                                           else ``dateObserved``, ``binLoggedTime``,
                                           ``timeInstant`` or ``dateModified``
``temperature``                            the reading's ``temperature_c``
``status`` ``burning`` / ``dropped``       the reading's ``fire_flag`` / ``tilt_flag``
=========================================  ==========================================

Entities of other types (``WasteContainerIsle``, ``WasteContainerModel``)
are skipped with a warning; a ``fillingLevel`` without any time yields no
reading (a warning names the entity), since a level without a time is not a
point of a series.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely.geometry

from layers.errors import InvalidInput

ENTITY_TYPE = "WasteContainer"
TIME_ATTRIBUTES = ("dateObserved", "observedAt", "binLoggedTime", "timeInstant", "TimeInstant",
                   "dateModified")  # fmt: skip
_MAPPED = {"id", "type", "@context", "location", "storedWasteKind", "binCapacity", "category",
           "refWasteContainerModel", "refWasteContainerIsle", "isleId", "name", "address",
           "description", "fillingLevel", "temperature"}  # fmt: skip
SNIFF_BYTES = 4096


def looks_like_ngsi(path: Path) -> bool:
    """Whether a JSON file holds NGSI-LD entities rather than GeoJSON."""
    if path.suffix.lower() not in (".json", ".jsonld", ".geojson"):
        return False
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    compact = "".join(head.split())
    if '"type":"FeatureCollection"' in compact or '"type":"Feature"' in compact[:200]:
        return False
    return '"id":' in compact and ('"type":"' in compact) and (
        "WasteContainer" in head or "@context" in head or '"value":' in compact
    )  # fmt: skip


def read_entities(path: Path) -> list[dict]:
    """The entities of an NGSI-LD file.

    Raises
    ------
    InvalidInput
        Not JSON, or not an entity or array of entities.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not valid JSON: {exc}", record=path.name) from exc
    entities = doc.get("@graph", [doc]) if isinstance(doc, dict) else doc
    if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
        raise InvalidInput(f"{path.name}: expected an NGSI-LD entity or an array of entities",
                           record=path.name)  # fmt: skip
    return entities


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _value(attr: Any) -> Any:
    if isinstance(attr, dict):
        if "value" in attr:
            attr = attr["value"]
        elif "object" in attr:
            attr = attr["object"]
        elif "@value" in attr:
            return attr["@value"]
    if isinstance(attr, dict) and "@value" in attr:
        return attr["@value"]
    return attr


def _observed(attr: Any) -> str | None:
    return attr.get("observedAt") if isinstance(attr, dict) else None


def _address(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None if value is None else str(value)
    street = value.get("streetAddress")
    town = " ".join(str(v) for v in (value.get("postalCode"), value.get("addressLocality")) if v)
    return ", ".join(p for p in (street, town) if p) or None


def _listed(value: Any) -> str | None:
    if value is None:
        return None
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _geometry(value: Any):
    if not isinstance(value, dict) or "type" not in value:
        return None
    try:
        return shapely.geometry.shape(value)
    except (ValueError, TypeError, AttributeError, IndexError):
        return None


def to_frames(
    entities: list[dict], source: str
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list[str]]:
    """Bins (in EPSG:4326), reading records (text) and warnings from entities."""
    bins, readings, warnings = [], [], []
    skipped: dict[str, int] = {}
    for entity in entities:
        kind = _short(str(entity.get("type", "")))
        if kind != ENTITY_TYPE:
            skipped[kind or "(none)"] = skipped.get(kind or "(none)", 0) + 1
            continue
        attrs = {_short(k): v for k, v in entity.items()}
        record = str(entity.get("id") or f"entity {len(bins) + 1}")
        bins.append(_bin(attrs, record))
        level = attrs.get("fillingLevel")
        if level is None:
            continue
        when = _observed(level) or next(
            (_value(attrs[a]) for a in TIME_ATTRIBUTES if attrs.get(a) is not None), None
        )  # fmt: skip
        if when is None:
            warnings.append(f"{source}: entity {record} has a fillingLevel without a time "
                            "(observedAt, dateObserved...); no reading kept")  # fmt: skip
            continue
        status = _value(attrs.get("status"))
        readings.append({
            "_record": record, "bin_id": entity.get("id"), "time": when,
            "fill_level": _value(level), "temperature_c": _value(attrs.get("temperature")),
            "fire_flag": None if status is None else status == "burning",
            "tilt_flag": None if status is None else status == "dropped",
        })  # fmt: skip
    if skipped:
        shown = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        warnings.append(f"{source}: entities of other types than {ENTITY_TYPE} skipped ({shown})")
    if not bins:
        raise InvalidInput(f"{source} holds no {ENTITY_TYPE} entities", record=source)
    frame = gpd.GeoDataFrame(bins, geometry="geometry", crs="EPSG:4326")
    columns = ["_record", "bin_id", "time", "fill_level", "temperature_c", "fire_flag", "tilt_flag"]
    return frame, pd.DataFrame(readings, columns=columns).astype(object), warnings


def _bin(attrs: dict, record: str) -> dict:
    kind = _value(attrs.get("storedWasteKind"))
    rest = {k: _value(v) for k, v in attrs.items() if k not in _MAPPED}
    return {
        "_record": record, "bin_id": attrs.get("id"),
        "fraction": kind[0] if isinstance(kind, list) and len(kind) == 1 else _listed(kind),
        "capacity_l": _value(attrs.get("binCapacity")),
        "bin_type": _listed(_value(attrs.get("category"))),
        "model": _value(attrs.get("refWasteContainerModel")),
        "site_id": _value(attrs.get("refWasteContainerIsle")) or _value(attrs.get("isleId")),
        "name": _value(attrs.get("name")), "address": _address(_value(attrs.get("address"))),
        "description": _value(attrs.get("description")),
        "_properties": rest or None, "geometry": _geometry(_value(attrs.get("location"))),
    }  # fmt: skip
