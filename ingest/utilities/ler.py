"""Danish LER 2.x GML: a ``ler:Graveforespoergselssvar`` (an owner's answer to a dig request).

The answer holds ``ler:ledningMember`` / ``ler:ledningskomponentMember`` /
``ler:ledningstraceMember`` features (``Elledning``, ``Gaskomponent``,
``Foeringsroer``...). Each becomes one asset: lines to ``utilities_lines``,
components to ``utilities_points``, polygons to ``utilities_areas``.

Read with :mod:`ingest.utilities.gml` (ElementTree ``iterparse``) rather than
GDAL: GDAL reads the features as flat layers but drops the ``uom`` of
measures (LER depths come in m or mm) and ``xsi:nil`` (unknown) from known
values, and the reader would still need to know every feature type. The
file is streamed once per target layer (lines, points, areas), so memory
stays flat however large the answer.

Mapping:

- ``utility_type`` from the feature type's stem (``El`` electricity, ``Gas``,
  ``Vand`` water, ``Afloeb`` sewer, ``Termisk`` district heating,
  ``Telekommunikation`` telecom, ``Olie`` oil and chemicals, else other);
- ``asset_id`` from ``ler:id`` (else the GML id); ``_record`` is the GML id;
- ``owner``: a ``ledningsejer`` in the feature where there is one, else
  ``--owner`` (who loads an answer knows who sent it), else the answer's
  contact profile name (LER puts the sender's contact there; it may be a
  person, hence last); none of these refuses the file;
- ``hazard_class`` from ``fareklasse`` (data); ``accuracy_class`` from
  ``noejagtighedsklasse`` (nil is unknown); ``depth_m`` from
  ``vejledendeDybde`` in its unit (nil or absent stays NULL), referenced to
  ground level (LER's depth is indicative, to the top of the line);
- ``status`` from ``driftsstatus`` ("under etablering" is ``planned``, as
  LER has no separate planned state); ``vertical_position`` from ``niveau``;
- ``subtype`` from ``type`` (``vejbelysningskabel`` street lighting,
  ``fiberkabel`` fibre...), else from voltage or pressure; sewers from
  ``medietype`` (foul, storm, combined);
- ``asset_kind``: cable (electricity, telecom), pipe, duct (Foeringsroer),
  trace (Ledningstrace); components from ``type`` (brønd manhole, ventil
  valve, kabelskab cabinet...);
- every property except the id and the numeric measures stays in
  ``attributes`` (the contact profile included).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import shapely

from ingest.loader import Part
from ingest.utilities import model
from ingest.utilities.frames import FileCrs, Seen, chunks, unit_scale
from ingest.utilities.gml import Feature, iter_features

STEMS = (("Telekommunikation", "telecom"), ("Termisk", "district_heating"), ("Afloeb", "sewer"),
         ("Vand", "water"), ("Gas", "gas"), ("Olie", "oil_chemicals"), ("El", "electricity"))  # fmt: skip
COMPONENT_KINDS = {
    "broend": "manhole", "pumpestation": "pumping_station", "udloebsbygvaerk": "outfall",
    "renseanlaeg": "treatment_plant", "vandvaerk": "waterworks", "ventil": "valve",
    "tapsted": "tap", "station": "station", "kabelskab": "cabinet", "skab": "cabinet",
    "taendskab_gadelys": "lighting_cabinet", "mr_station": "mr_station", "bygvaerk": "structure",
    "fordelerboks": "distribution_box", "mast": "mast", "muffe": "joint", "brandhane": "hydrant",
}  # fmt: skip
LINE_SUBTYPES = {
    "vejbelysningskabel": "street_lighting", "fiberkabel": "fibre", "kobberkabel": "copper",
    "coaxkabel": "coax", "distributionsledning": "distribution",
    "transmissionsledning": "transmission", "fordelingsledning": "distribution",
    "stikledning": "service",
}  # fmt: skip
_MEASURES = ("vejledendeDybde", "udvendigDiameter", "spaendingsniveau", "tryk")
_DROP = {"id", *_MEASURES, *(f"{m}_uom" for m in _MEASURES)}
_LAYERS = {0: model.POINTS, 1: model.LINES, 2: model.AREAS}


def sniff(head: bytes) -> bool:
    """Whether the start of a file is a LER GML document."""
    return b"data.gov.dk/schemas/LER/" in head


def parts(path: Path, options, seen: Seen) -> Iterator[Part]:
    """The lines, points and areas of one LER answer, each streamed from the file."""
    for dimension, layer in _LAYERS.items():
        spec = layer.spec(owner=options.owner, licence=options.licence,
                          attribution=options.extra.get("attribution"))  # fmt: skip
        file_crs = FileCrs(path.name, options.crs)
        rows = _rows(path, dimension, options, seen, file_crs)
        yield Part(spec=spec, chunks=chunks(rows, spec.columns, file_crs))


def _rows(path: Path, dimension: int, options, seen: Seen, file_crs: FileCrs) -> Iterator[dict]:
    sender = None
    with open(path, "rb") as stream:
        for feature in iter_features(stream, name=path.name):
            if feature.header:
                if feature.tag.startswith("kontaktprofil"):
                    sender = feature.first("navn") or sender
                continue
            geom = feature.geometry
            have = int(shapely.get_dimensions(geom)) if geom is not None else 1
            if have != dimension:
                continue
            record = feature.gml_id or str(feature.first("id"))
            file_crs.check(feature.srs, record)
            row = asset(feature, path.name, options.owner or sender, record)
            seen.owners.add(row["owner"])
            yield row


def _utility(tag: str) -> str:
    return next((kind for stem, kind in STEMS if tag.startswith(stem)), "other")


def _measure(f: Feature, name: str, quantity: str, default: str, source: str, record: str):
    value = f.first(name)
    if value is None:
        return None
    scale = unit_scale(f.props.get(f"{name}_uom"), quantity, default, source=source,
                       record=record, field=name)  # fmt: skip
    if quantity == "length_m":
        return model.depth(value, source=source, record=record, field=name, scale=scale)
    return model.positive(value, scale=scale)


def asset(f: Feature, source: str, owner: str | None, record: str) -> dict:
    """One LER feature as a row of the utilities model."""
    utility = _utility(f.tag)
    volts = _measure(f, "spaendingsniveau", "voltage_kv", "kv", source, record)
    bar = _measure(f, "tryk", "pressure_bar", "bar", source, record)
    depth = _measure(f, "vejledendeDybde", "length_m", "m", source, record)
    geom = f.geometry
    line = geom is not None and shapely.get_dimensions(geom) == 1
    kind_text = model.key(f.first("type") or "")
    row = {
        "_record": record,
        "geometry": geom,
        "asset_id": f.first("id") or f.gml_id,
        "owner": f.first("ledningsejer", "ledningsejer.navn") or owner,
        "utility_type": utility,
        "subtype": _subtype(f, utility, kind_text) if line else None,
        "asset_kind": _line_kind(f.tag, utility) if line else _component_kind(f, kind_text),
        "hazard_class": model.hazard_class(
            f.first("fareklasse"), source=source, record=record, field="fareklasse"
        ),  # fmt: skip
        "depth_m": depth,
        "depth_reference": "ground level to top of line (LER vejledende dybde)"
        if depth is not None
        else None,
        "accuracy_class": model.accuracy_class(
            f.first("noejagtighedsklasse"),
            source=source,
            record=record,
            field="noejagtighedsklasse",
        ),  # fmt: skip
        "status": model.status(f.first("driftsstatus")),
        "vertical_position": model.vertical_position(f.first("niveau")),
        "diameter_mm": _measure(f, "udvendigDiameter", "diameter_mm", "mm", source, record),
        "material": f.first("udvendigMateriale", "materiale"),
        "voltage_kv": volts,
        "pressure_bar": bar,
        "installed_year": model.year(f.first("etableringstidspunkt")),
        "source_format": "LER1" if "/LER/1/" in f.namespace else "LER2",
        "attributes": {
            "feature_type": f.tag,
            **{k: v for k, v in f.props.items() if k not in _DROP},
        },  # fmt: skip
    }
    return model.finish(row, source=source, record=record)


def _subtype(f: Feature, utility: str, kind_text: str) -> str | None:
    """From the line's type; electricity and gas only where voltage or pressure cannot tell."""
    if utility == "sewer":
        return model.subtype(f.first("medietype"))
    found = LINE_SUBTYPES.get(kind_text)
    if utility == "electricity":
        return found if found == "street_lighting" else None
    if utility == "gas":
        return found if found == "transmission" else None
    return found


def _line_kind(tag: str, utility: str) -> str:
    if tag == "Foeringsroer":
        return "duct"
    if tag == "Ledningstrace":
        return "trace"
    return "cable" if utility in ("electricity", "telecom") else "pipe"


def _component_kind(f: Feature, kind_text: str) -> str | None:
    if kind_text == "tapsted" and model.key(f.first("tapstedstype") or "") == "brandhane":
        return "hydrant"
    return COMPONENT_KINDS.get(kind_text, kind_text or None)
