"""GeoPackage, GeoJSON, Shapefile (any vector file GDAL reads) with a documented column mapping.

Each layer of the file goes by its geometry to ``utilities_lines``,
``utilities_points`` or ``utilities_areas``; a polygon layer of interest
areas goes to ``utilities_interest_areas`` (see below). Layers without
geometry (the sample town's ``owner`` contact table) are not loaded; the
report says so.

Default mapping: the first source field (compared as a lower-case
identifier: ``Fareklasse`` -> ``fareklasse``) that a column lists fills it.

==================  ======================================================
column              source fields accepted
==================  ======================================================
asset_id            asset_id, id, ledning_id, ler_id, objectid, uuid, lokalid
owner               owner, ejer, ledningsejer, eier, eigenaar, beheerder, netbeheerder,
                    organisation, organization
utility_type        utility_type, type, ledningstype, forsyningsart, utility, network,
                    thema, theme
subtype             subtype, sub_type, undertype
asset_kind          asset_kind, component_type, komponenttype, appurtenance_type, kind
hazard_class        hazard_class, hazard, fareklasse, gevarenklasse
depth_m             depth_m, depth, dybde, dybde_m, vejledende_dybde, diepte, cover_depth
depth_reference     depth_reference, depth_ref, dybde_reference
accuracy_class      accuracy_class, accuracy, noejagtighed, noejagtighedsklasse,
                    nauwkeurigheid, nauwkeurigheid_xy, position_accuracy
status              status, driftsstatus, condition, current_status
vertical_position   vertical_position, level, niveau
diameter_mm         diameter_mm, diameter, dimension, dn, udvendig_diameter, pipe_diameter
material            material, materiale, materiaal, materialtype
voltage_kv          voltage_kv, spaending_kv, kv
pressure_bar        pressure_bar, tryk_bar, pressure, tryk, druk
installed_year      installed_year, year, anlaegsaar, etableringsaar, construction_year,
                    bouwjaar
==================  ======================================================

Overrides (``--option`` on the CLI, ``IngestOptions.extra`` in code):

- ``map.<column>=<field>``: fill ``<column>`` from ``<field>`` (e.g.
  ``map.utility_type=TYPE_COL``); ``map.<column>=`` (empty) leaves it unmapped;
- ``mapping=<file>``: a JSON or YAML object ``{column: field}``, the same as
  many ``map.`` options (``map.`` options win);
- ``default.<column>=<value>``: the value where the mapped field is empty or
  there is none (``default.utility_type=telecom`` for a fibre owner's file);
- ``layers=a,b``: load only these layers.

Values are read as the model reads them (:mod:`ingest.utilities.model`):
type names in four languages, hazard and accuracy classes refused when
unreadable, depth NULL when empty. A record with no utility type (no field,
no default) is refused. Records without an id get ``<file stem>-<n>``
(``<file stem>-<layer>-<n>`` in a file of several layers; n counting from 1
in file order), so a rerun or ``--mode upsert`` finds the
same keys. A point layer without an ``asset_kind`` field takes its subtype
as the kind (the sample town writes ``valve``, ``cable_cabinet``... there).
Every unmapped field stays in ``attributes``, and the source text of a
translated value (``fibre`` -> telecom) is kept as ``source_<column>``.

Interest areas: a polygon layer is taken as an owner's interest areas when
its name (or the file's, for a one-layer file) says so (``interest``,
``interesse``, ``interesseomraade``, ``belang``, ``belangengebied``), with
``layer_kind=interest_areas``, or when the file is given as
``interest_areas=<file>``. Columns: ``area_id`` (id fields as above),
``owner``, ``utility_type`` (empty: every type of the owner).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import shapely
import yaml

from ingest.field_map import json_records, name_tokens
from ingest.loader import Part
from ingest.spec import column_name
from ingest.utilities import model
from ingest.utilities.frames import Seen, frame
from ingest.vector import list_layers, peek, read_chunks
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

ALIASES: dict[str, tuple[str, ...]] = {
    "asset_id": ("asset_id", "id", "ledning_id", "ler_id", "objectid", "uuid", "lokalid"),
    "owner": ("owner", "ejer", "ledningsejer", "eier", "eigenaar", "beheerder", "netbeheerder",
              "organisation", "organization"),
    "utility_type": ("utility_type", "type", "ledningstype", "forsyningsart", "utility", "network",
                     "thema", "theme"),
    "subtype": ("subtype", "sub_type", "undertype"),
    "asset_kind": ("asset_kind", "component_type", "komponenttype", "appurtenance_type", "kind"),
    "hazard_class": ("hazard_class", "hazard", "fareklasse", "gevarenklasse"),
    "depth_m": ("depth_m", "depth", "dybde", "dybde_m", "vejledende_dybde", "diepte", "cover_depth"),
    "depth_reference": ("depth_reference", "depth_ref", "dybde_reference"),
    "accuracy_class": ("accuracy_class", "accuracy", "noejagtighed", "noejagtighedsklasse",
                       "nauwkeurigheid", "nauwkeurigheid_xy", "position_accuracy"),
    "status": ("status", "driftsstatus", "condition", "current_status"),
    "vertical_position": ("vertical_position", "level", "niveau"),
    "diameter_mm": ("diameter_mm", "diameter", "dimension", "dn", "udvendig_diameter",
                    "pipe_diameter"),
    "material": ("material", "materiale", "materiaal", "materialtype"),
    "voltage_kv": ("voltage_kv", "spaending_kv", "kv"),
    "pressure_bar": ("pressure_bar", "tryk_bar", "pressure", "tryk", "druk"),
    "installed_year": ("installed_year", "year", "anlaegsaar", "etableringsaar",
                       "construction_year", "bouwjaar"),
}  # fmt: skip
INTEREST_ALIASES = {"area_id": ("area_id", "interest_id", "id", "objectid"),
                    "owner": ALIASES["owner"], "utility_type": ALIASES["utility_type"]}  # fmt: skip
INTEREST_WORDS = {"interest", "interests", "interesse", "interesseomraade", "interesseomraader",
                  "belang", "belangen", "belangengebied", "interestarea", "interestareas"}  # fmt: skip
_SHAPES = {"POINT": 0, "LINESTRING": 1, "POLYGON": 2}
FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON", "json": "GeoJSON", "shp": "Shapefile",
           "zip": "Shapefile", "fgb": "FlatGeobuf", "gml": "GML", "kml": "KML"}  # fmt: skip


def parts(path: Path, options, seen: Seen, *, interest: bool = False) -> Iterator[Part]:
    """One part per spatial layer of a vector file."""
    wanted = [s.strip() for s in options.extra.get("layers", "").split(",") if s.strip()]
    layers = list_layers(path)
    forced = interest or options.extra.get("layer_kind") == "interest_areas"
    for name, kind in layers:
        if wanted and name not in wanted:
            continue
        first, chunks = peek(read_chunks(path, layer=name, crs=options.crs))
        if first is None:
            continue
        dimension = _dimension(kind, first)
        if dimension is None:
            seen.notes.append(f"{path.name}: layer {name} has no geometry; not loaded")
            continue
        words = set(name_tokens(name)) | (
            set(name_tokens(path.stem)) if len(layers) == 1 else set()
        )
        if dimension == 2 and (forced or words & INTEREST_WORDS):
            layer, fields = model.INTEREST, INTEREST_ALIASES
        else:
            layer, fields = (model.POINTS, model.LINES, model.AREAS)[dimension], ALIASES
        spec = layer.spec(owner=options.owner, licence=options.licence,
                          attribution=options.extra.get("attribution"))  # fmt: skip
        mapping = _mapping(path, name, list(first.columns), fields, options)
        prefix = path.stem if len(layers) == 1 else f"{path.stem}-{name}"
        rows = _interest_rows if layer is model.INTEREST else _asset_rows
        make = partial(rows, mapping=mapping, options=options, seen=seen, source=path.name,
                       prefix=prefix, dimension=dimension)  # fmt: skip
        yield Part(spec=spec, chunks=_frames(chunks, make, spec.columns))


def _frames(chunks, make, columns) -> Iterator:
    """Each source chunk as a chunk of model rows; ``make(chunk, start)`` gives the rows."""
    start = 0
    for chunk in chunks:
        yield frame(list(make(chunk, start=start)), columns, chunk.crs)
        start += len(chunk)


def _dimension(kind: str | None, first) -> int | None:
    base = (kind or "").upper().replace("3D ", "").replace(" Z", "").replace("25D", "").strip()
    found = _SHAPES.get(base.removeprefix("MULTI"))
    if found is not None:
        return found
    geoms = first.geometry.dropna()
    return int(shapely.get_dimensions(geoms.iloc[0])) if len(geoms) else None


def _mapping(path: Path, layer: str, columns: list[str], fields: dict[str, tuple[str, ...]],
             options) -> dict[str, str]:  # fmt: skip
    """``{column: source field}`` from the defaults and the overrides."""
    available = {c for c in columns if c not in ("_record", "geometry")}
    explicit = _overrides(options)
    mapping: dict[str, str] = {}
    for column, aliases in fields.items():
        if column in explicit:
            source = explicit[column]
            if not source:
                continue
            if column_name(source) not in available:
                raise InvalidInput(
                    f"{path.name} layer {layer}: the mapping names field {source!r} for {column}, "
                    f"but the layer has no such field; its fields are {', '.join(sorted(available))}",
                    record=path.name, field=column,
                )  # fmt: skip
            mapping[column] = column_name(source)
            continue
        used = set(mapping.values())
        hit = next((a for a in aliases if a in available and a not in used), None)
        if hit:
            mapping[column] = hit
    return mapping


def _overrides(options) -> dict[str, str]:
    extra = options.extra
    out: dict[str, str] = {}
    if extra.get("mapping"):
        path = Path(extra["mapping"])
        try:
            text = path.read_text(encoding="utf-8")
            loaded = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read the column mapping {path}: {exc}", record=str(path),
                               field="mapping") from exc  # fmt: skip
        if not isinstance(loaded, dict):
            raise InvalidInput(f"the column mapping {path} must be an object {{column: field}}",
                               record=str(path), field="mapping")  # fmt: skip
        out.update({str(k): "" if v is None else str(v) for k, v in loaded.items()})
    out.update({k.removeprefix("map."): v for k, v in extra.items() if k.startswith("map.")})
    known = set(ALIASES) | set(INTEREST_ALIASES)
    unknown = sorted(set(out) - known)
    if unknown:
        raise InvalidInput(f"the column mapping names unknown columns {', '.join(unknown)}; "
                           f"columns are {', '.join(ALIASES)}", field="mapping")  # fmt: skip
    return out


def _defaults(options) -> dict[str, str]:
    return {k.removeprefix("default."): v for k, v in options.extra.items()
            if k.startswith("default.")}  # fmt: skip


class _Row:
    """Values of one source record by model column."""

    def __init__(self, record: dict, mapping: dict[str, str], defaults: dict[str, str]) -> None:
        self.record, self.mapping, self.defaults = record, mapping, defaults

    def __call__(self, column: str) -> object | None:
        source = self.mapping.get(column)
        value = self.record.get(source) if source else None
        return self.defaults.get(column) if model.missing(value) else value

    def field(self, column: str) -> str:
        return self.mapping.get(column, column)


def _asset_rows(chunk, mapping, options, seen: Seen, source: str, prefix: str, start: int,
                dimension: int) -> Iterator[dict]:  # fmt: skip
    defaults = _defaults(options)
    mapped = set(mapping.values())
    rest = [c for c in chunk.columns if c not in mapped and c not in ("_record", "geometry")]
    extras = json_records(chunk[rest]) if rest else [None] * len(chunk)
    for n, (record, attrs) in enumerate(zip(chunk.to_dict("records"), extras, strict=True)):
        value = _Row(record, mapping, defaults)
        name = str(record["_record"])
        raw_type = value("utility_type")
        if model.missing(raw_type):
            raise InvalidInput(
                f"{source}: record {name} has no utility type; map a field with "
                "--option map.utility_type=FIELD or give --option default.utility_type=TYPE",
                record=f"record {name}", field=value.field("utility_type"),
            )  # fmt: skip
        utility, media = model.utility_type(raw_type)
        attributes = dict(attrs or {})
        row = {
            "_record": name, "geometry": record.get("geometry"),
            "asset_id": value("asset_id") or f"{prefix}-{start + n + 1}",
            "owner": value("owner") or options.owner, "utility_type": utility,
            "subtype": media or model.subtype(value("subtype")),
            "asset_kind": model.subtype(value("asset_kind") or (value("subtype") if dimension == 0 else None))
            or (("cable" if utility in ("electricity", "telecom") else "pipe") if dimension == 1 else None),
            "hazard_class": model.hazard_class(value("hazard_class"), source=source, record=name,
                                               field=value.field("hazard_class")),
            "depth_m": model.depth(value("depth_m"), source=source, record=name,
                                   field=value.field("depth_m")),
            "depth_reference": value("depth_reference"),
            "accuracy_class": model.accuracy_class(value("accuracy_class"), source=source,
                                                   record=name, field=value.field("accuracy_class")),
            "status": model.status(value("status")),
            "vertical_position": model.vertical_position(value("vertical_position")),
            "diameter_mm": model.positive(value("diameter_mm")), "material": value("material"),
            "voltage_kv": model.positive(value("voltage_kv")),
            "pressure_bar": model.positive(value("pressure_bar")),
            "installed_year": model.year(value("installed_year")),
            "source_format": FORMATS.get(source.rsplit(".", 1)[-1].lower(), "vector"),
        }  # fmt: skip
        for column in ("utility_type", "subtype", "status", "vertical_position", "hazard_class"):
            given = value(column)
            if not model.missing(given) and str(given) != str(row[column]):
                attributes[f"source_{column}"] = given
        if row["depth_m"] is not None and not row["depth_reference"]:
            row["depth_reference"] = "ground level (as given)"
        row["attributes"] = attributes or None
        if not model.missing(row["owner"]):
            seen.owners.add(str(row["owner"]))
        yield model.finish(row, source=source, record=name)


def _interest_rows(chunk, mapping, options, seen: Seen, source: str, prefix: str, start: int,
                   dimension: int) -> Iterator[dict]:  # fmt: skip
    defaults = _defaults(options)
    mapped = set(mapping.values())
    rest = [c for c in chunk.columns if c not in mapped and c not in ("_record", "geometry")]
    extras = json_records(chunk[rest]) if rest else [None] * len(chunk)
    for n, (record, attrs) in enumerate(zip(chunk.to_dict("records"), extras, strict=True)):
        value = _Row(record, mapping, defaults)
        name = str(record["_record"])
        owner = value("owner") or options.owner
        if model.missing(owner):
            raise InvalidInput(f"{source}: interest area {name} has no owner; give one with "
                               "--owner ORG or an owner field", record=f"record {name}",
                               field="owner")  # fmt: skip
        raw_type = value("utility_type")
        geom = record.get("geometry")
        seen.owners.add(str(owner))
        yield {
            "_record": name, "geometry": None if geom is None else shapely.force_2d(geom),
            "area_id": str(value("area_id") or f"{prefix}-{start + n + 1}"), "owner": owner,
            "utility_type": None if model.missing(raw_type) else model.utility_type(raw_type)[0],
            "origin": "uploaded", "buffer_rule": None, "asset_count": None, "area_m2": None,
            "attributes": attrs,
        }  # fmt: skip
