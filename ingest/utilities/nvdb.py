"""Norwegian road database (NVDB) GML: road-lighting cables and masts, manholes, culverts.

NVDB exports one feature type per file (``Kabel``, ``Lysmast``, ``Kum``,
``StikkrenneKulvert``...) in EPSG:25833; the loader reprojects to EPSG:25832.
Read with :mod:`ingest.utilities.gml`, which takes each feature's geometry
from whichever geometry property it has (``senterlinje`` for lines,
``posisjon`` for points; the line where a feature has both), so no GDAL
geometry-field selection (``.gfs`` files) is involved.

Decisions:

- type mapping: ``Kabel`` (road lighting) electricity / low_voltage / cable;
  ``Lysmast`` electricity / low_voltage / mast (above ground); ``Kum`` sewer /
  storm / manhole; ``StikkrenneKulvert`` sewer / storm / culvert; other types
  ``other``;
- owner: ``--owner`` where given, else the register holder named by the
  objects' namespace (``vegvesen.no.nvdb``: Statens vegvesen). NVDB's ``eier``
  is an ownership category (``stat``, ``kommune``, ``privat``), not an
  organisation; it stays in ``attributes``;
- ``depth_m``: a culvert's fill over its top (``overfyllingInnløp`` /
  ``overfyllingUtløp``, the smaller of the two) where given, else NULL;
  diameters in mm (``Kum.diameter`` is in metres in NVDB); ``driftsattår`` or
  ``byggeår`` is the installation year; status is unknown (NULL);
- NVDB holds objects registered without a position (1,537 of the 2,810
  culverts of ``NIFS_0520_StikkrenneKulvert.gml`` carry no geometry element
  at all). They cannot be placed, so they are set aside, not refused: the
  rest of the file loads, and each is kept in ``geoby.load_rejects`` with
  the reason and counted as rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import shapely

from ingest.loader import Part
from ingest.prepare import Reject
from ingest.utilities import model
from ingest.utilities.frames import FileCrs, Seen, chunks
from ingest.utilities.gml import Feature, iter_features
from layers.errors import InvalidInput

TYPES = {
    "Kabel": ("electricity", "low_voltage", "cable", 1),
    "Lysmast": ("electricity", "low_voltage", "mast", 1),
    "Kum": ("sewer", "storm", "manhole", 1000),
    "StikkrenneKulvert": ("sewer", "storm", "culvert", 1),
}
REGISTERS = {"vegvesen.no.nvdb": "Statens vegvesen"}
UNLOCATED = "has no position in the file (NVDB object registered without geometry); not loaded"
_LAYERS = {0: model.POINTS, 1: model.LINES}


def sniff(head: bytes) -> bool:
    """Whether the start of a file is an NVDB GML export."""
    return b"NVDBGML" in head or b"vegvesen.no.nvdb" in head


def parts(path: Path, options, seen: Seen) -> Iterator[Part]:
    """The lines and points of one NVDB file, each streamed from the file."""
    for dimension, layer in _LAYERS.items():
        spec = layer.spec(owner=options.owner, licence=options.licence or "NLOD 2.0",
                          attribution=options.extra.get("attribution")
                          or "Contains data from the Norwegian Public Roads Administration (NVDB)")  # fmt: skip
        file_crs = FileCrs(path.name, options.crs)
        part = Part(spec=spec, chunks=())
        part.chunks = chunks(_rows(path, dimension, options, seen, file_crs, part), spec.columns,
                             file_crs)  # fmt: skip
        yield part


def _rows(path: Path, dimension: int, options, seen: Seen, file_crs: FileCrs,
          part: Part) -> Iterator[dict]:  # fmt: skip
    with open(path, "rb") as stream:
        for feature in iter_features(stream, name=path.name):
            if feature.header:
                continue
            record = feature.gml_id or str(feature.first("identifikasjon.lokalId"))
            geom = feature.geometry
            if geom is None:
                if dimension == 1:  # reported once, with the lines
                    part.set_aside.append(Reject(record, f"{path.name}: record {record} {UNLOCATED}",
                                                 field="geometry"))  # fmt: skip
                continue
            if int(shapely.get_dimensions(geom)) != dimension:
                continue
            file_crs.check(feature.srs, record)
            row = asset(feature, path.name, options.owner, record)
            seen.owners.add(row["owner"])
            yield row
    if part.set_aside:
        seen.notes.append(f"{path.name}: {len(part.set_aside):,} records have no position in the "
                          "file; not loaded, kept in geoby.load_rejects")  # fmt: skip


def asset(f: Feature, source: str, owner: str | None, record: str) -> dict:
    """One NVDB feature as a row of the utilities model."""
    utility, sub, kind, diameter_scale = TYPES.get(f.tag, ("other", None, None, 1))
    register = str(f.first("identifikasjon.navnerom") or "")
    owner = owner or REGISTERS.get(register)
    if owner is None:
        raise InvalidInput(f"{source}: record {record} is from register {register or 'unknown'}, "
                           "which names no owner; give the owning organisation with --owner ORG",
                           record=f"record {record}", field="owner")  # fmt: skip
    fills = [model.depth(f.first(name), source=source, record=record, field=name)
             for name in ("overfyllingInnløp", "overfyllingUtløp")]  # fmt: skip
    fills = [d for d in fills if d is not None]
    diameter = model.positive(f.first("diameterInnvendig"))
    if diameter is None:
        diameter = model.positive(f.first("diameter"), scale=diameter_scale)
    if diameter is None and model.key(f.first("tverrsnittsform") or "") == "sirkulaer":
        diameter = model.positive(f.first("breddeInnvendig"))
    row = {
        "_record": record, "geometry": f.geometry, "asset_id": f.gml_id or record,
        "owner": owner, "utility_type": utility, "subtype": sub,
        "asset_kind": kind or model.key(f.tag), "hazard_class": None,
        "depth_m": min(fills) if fills else None,
        "depth_reference": "fill over the top of the culvert (NVDB overfylling, smaller of inlet "
                           "and outlet)" if fills else None,
        "accuracy_class": None, "status": None,
        "vertical_position": "above_ground" if kind == "mast" else "underground",
        "diameter_mm": diameter, "material": f.first("materialtype"),
        "voltage_kv": None, "pressure_bar": None,
        "installed_year": model.year(f.first("driftsattår", "byggeår")),
        "source_format": "NVDB",
        "attributes": {"feature_type": f.tag, "register": register, **f.props},
    }  # fmt: skip
    return model.finish(row, source=source, record=record)
