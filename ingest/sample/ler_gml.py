"""Utility networks as LER 2.x GML, one answer document per owner.

The structure follows the Danish Ledningsejerregistret (LER 2.0) data model
for handing out utility information ("LERs datamodel for udveksling af
ledningsoplysninger", GML application schema 2.1, namespace
``http://data.gov.dk/schemas/LER/2/gml``): a ``ler:Graveforespoergselssvar``
whose ``ler:ledningMember`` and ``ler:ledningskomponentMember`` elements hold
``ler:Elledning``, ``ler:Gasledning``, ``ler:Vandledning``,
``ler:Afloebsledning``, ``ler:TermiskLedning``,
``ler:Telekommunikationsledning`` and the matching ``...komponent`` features,
with the element order, enumerations (``fareklasse`` "ikke farlig" / "farlig" /
"meget farlig", ``driftsstatus``, ``noejagtighedsklasse`` "<= 0.25 m" ...),
``gml:MeasureType`` units and ``xsi:nil`` for unknown depth and accuracy
taken from the 2.1 XSD as published with the OpenLER tools.

Deliberate simplifications, so GDAL reads the files as plain 2-D layers:

* Geometries are 2-D in EPSG:25832; real LER answers are 3-D in EPSG:7416
  (ETRS89 / UTM 32N + DVR90) with -99 for an unknown height.
* The schema has no ``ledningsejer`` element on a feature: the owner is the
  sender of the answer. Each feature therefore carries the owner's
  ``ler:Kontaktprofil`` (``navn``, ``telefonnummer``, ``mailadresse``) in
  ``kontaktprofilTilTekniskeSpoergsmaal``, as does the answer itself.
* ``etableringstidspunkt`` is the installation year only (a valid
  ``gml:TimePositionType``); ``vejledendeDybde`` is in metres.
* The answer's ``ler:id`` is derived from the seed; no ``gyldigTil``.

GDAL reads the files with its GML driver (one layer per feature type) and,
unless opened with ``WRITE_GFS=NO``, writes a ``.gfs`` schema file beside
them; readers of the sample directory should pass that open option.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import geopandas as gpd
import shapely

from ingest.sample.utilities import Owner

NS_LER = "http://data.gov.dk/schemas/LER/2/gml"
NS_GML = "http://www.opengis.net/gml/3.2"
SRS = "http://www.opengis.net/def/crs/EPSG/0/25832"

FEATURE_TYPES = {
    "electricity": ("Elledning", "Elkomponent"),
    "gas": ("Gasledning", "Gaskomponent"),
    "water": ("Vandledning", "Vandkomponent"),
    "sewer": ("Afloebsledning", "Afloebskomponent"),
    "district_heating": ("TermiskLedning", "TermiskKomponent"),
    "fibre": ("Telekommunikationsledning", "Telekommunikationskomponent"),
    "telecom": ("Telekommunikationsledning", "Telekommunikationskomponent"),
}
_PIPES = {"Gasledning", "Vandledning", "Afloebsledning", "TermiskLedning"}
FAREKLASSE = {
    "not_dangerous": "ikke farlig",
    "dangerous": "farlig",
    "very_dangerous": "meget farlig",
}
DRIFTSSTATUS = {
    "in_service": "i drift",
    "planned": "under etablering",
    "abandoned": "permanent ude af drift",
}
NOEJAGTIGHED = {
    "0.25": "<= 0.25 m",
    "0.5": "<= 0.50 m",
    "1": "<= 1.00 m",
    "2": "<= 2.00 m",
    ">2": "> 2.00 m",
}
_COMPONENT_TYPE = {
    "manhole": "brønd", "pumping_station": "pumpestation", "outfall": "udløbsbygværk",
    "treatment_plant_inlet": "renseanlæg", "waterworks": "vandværk", "valve": "ventil",
    "hydrant": "tapsted", "main_substation": "station", "substation": "station",
    "cable_cabinet": "kabelskab", "lighting_cabinet": "tændskab/gadelys", "mr_station": "MR-station",
    "heat_plant": "bygværk", "fibre_cabinet": "skab", "distribution_box": "fordelerboks",
}  # fmt: skip
_LINE_TYPE = {
    ("electricity", "low_voltage"): "forsyningskabel", ("electricity", "medium_voltage"): "forsyningskabel",
    ("electricity", "high_voltage"): "forsyningskabel", ("electricity", "street_lighting"): "vejbelysningskabel",
    ("gas", "low_pressure"): "distributionsledning", ("gas", "high_pressure"): "fordelingsledning",
    ("district_heating", "distribution"): "distributionsledning",
    ("district_heating", "transmission"): "transmissionsledning",
    ("fibre", "distribution"): "fiberkabel", ("fibre", "backbone"): "fiberkabel", ("telecom", "copper"): "kobberkabel",
}  # fmt: skip
_PRECAUTION = "Kontakt ledningsejer senest 3 arbejdsdage før gravning; ledningen påvises på stedet."
_MEDIE = {"combined": "fællesvand", "foul": "spildevand", "storm": "regnvand"}


def _el(tag: str, text: object | None, **attrs: str) -> str:
    attr = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<ler:{tag}{attr}>{escape(str(text))}</ler:{tag}>"


def _nil(tag: str) -> str:
    return f'<ler:{tag} xsi:nil="true" nilReason="unknown"/>'


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _kontakt(owner: Owner, gid: str) -> str:
    return (
        "<ler:kontaktprofilTilTekniskeSpoergsmaal>"
        f'<ler:Kontaktprofil gml:id="{gid}">{_el("navn", owner.name)}'
        f"{_el('telefonnummer', owner.phone)}{_el('mailadresse', owner.email)}</ler:Kontaktprofil>"
        "</ler:kontaktprofilTilTekniskeSpoergsmaal>"
    )


def _geometry(geom: shapely.Geometry, gid: str) -> str:
    xy = shapely.get_coordinates(geom)
    pos = " ".join(f"{x:.2f} {y:.2f}" for x, y in xy)
    if geom.geom_type == "Point":
        return f'<ler:geometri><gml:Point gml:id="{gid}" srsName="{SRS}"><gml:pos>{pos}</gml:pos></gml:Point></ler:geometri>'
    return f'<ler:geometri><gml:LineString gml:id="{gid}" srsName="{SRS}"><gml:posList>{pos}</gml:posList></gml:LineString></ler:geometri>'


def _common(row: dict, owner: Owner, gid: str, line: bool) -> list[str]:
    parts = [
        _el("driftsstatus", DRIFTSSTATUS[row["status"]]),
        _el("etableringstidspunkt", row["installed_year"]),
        _el("fareklasse", FAREKLASSE[row["hazard_class"]]),
        _el("id", row["asset_id"]),
    ]
    if not line:
        parts.append(_el("materiale", row["material"]))
    acc = row["accuracy_class"]
    parts.append(
        _nil("noejagtighedsklasse")
        if _missing(acc)
        else _el("noejagtighedsklasse", NOEJAGTIGHED[acc])
    )
    if row["hazard_class"] == "very_dangerous":
        parts.append(_el("sikkerhedshensyn", _PRECAUTION))
    depth = row["depth_m"]
    if not _missing(depth):
        parts.append(_el("vejledendeDybde", f"{depth:.2f}", uom="m"))
    elif line:
        parts.append(_nil("vejledendeDybde"))
    parts.append(_kontakt(owner, f"K-{gid}"))
    parts.append(_geometry(row["geometry"], f"G-{gid}"))
    parts.append(_el("niveau", "under terræn" if row["level"] == "underground" else "over terræn"))
    return parts


def _line(row: dict, owner: Owner) -> str:
    ftype = FEATURE_TYPES[row["utility_type"]][0]
    gid = f"L-{row['asset_id']}"
    parts = _common(row, owner, gid, line=True)
    parts.append(_el("udvendigDiameter", row["diameter_mm"], uom="mm"))
    parts.append(_el("udvendigMateriale", row["material"]))
    if ftype in _PIPES:
        parts.append(_el("tvaersnitsform", "cirkulær"))
    key = (row["utility_type"], row["subtype"])
    if ftype == "Elledning":
        parts += [
            _el("type", _LINE_TYPE[key]),
            _el("spaendingsniveau", row["voltage_kv"], uom="kV"),
        ]
    elif ftype == "Gasledning":
        parts += [
            _el("type", _LINE_TYPE[key]),
            _el("tryk", row["pressure_bar"], uom="bar"),
            _el("medietype", "naturgas"),
        ]
    elif ftype == "TermiskLedning":
        parts += [
            _el("type", _LINE_TYPE[key]),
            _el("indhold", "varmt vand"),
            _el("konstruktion", "præisoleret"),
        ]
    elif ftype == "Telekommunikationsledning":
        parts.append(_el("type", _LINE_TYPE[key]))
    elif ftype == "Afloebsledning":
        parts += [
            _el("ledningstransporttype", "gravitation"),
            _el("medietype", _MEDIE[row["subtype"]]),
        ]
    body = "".join(parts)
    return (
        f'<ler:ledningMember><ler:{ftype} gml:id="{gid}">{body}</ler:{ftype}></ler:ledningMember>'
    )


def _component(row: dict, owner: Owner) -> str:
    ftype = FEATURE_TYPES[row["utility_type"]][1]
    gid = f"C-{row['asset_id']}"
    parts = _common(row, owner, gid, line=False)
    parts.append(_el("type", _COMPONENT_TYPE[row["subtype"]]))
    if row["subtype"] == "hydrant":
        parts.append(_el("tapstedstype", "brandhane"))
    body = "".join(parts)
    return f'<ler:ledningskomponentMember><ler:{ftype} gml:id="{gid}">{body}</ler:{ftype}></ler:ledningskomponentMember>'


def write_ler_gml(
    path: Path, owner: Owner, answer_id: str, lines: gpd.GeoDataFrame, points: gpd.GeoDataFrame
) -> int:
    """Write one owner's networks as a LER ``Graveforespoergselssvar``.

    Parameters
    ----------
    path
        Target ``.gml`` file.
    owner
        The owner (sender of the answer and contact for every feature).
    answer_id
        UUID of the answer document.
    lines, points
        The owner's assets in EPSG:25832 (world coordinates).

    Returns
    -------
    int
        Number of features written.
    """
    minx, miny, maxx, maxy = shapely.total_bounds(list(lines.geometry) + list(points.geometry))
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ler:Graveforespoergselssvar xmlns:ler="{NS_LER}" xmlns:gml="{NS_GML}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'gml:id="svar-{owner.slug}" schemaVersion="2.1">\n'
        f'<gml:boundedBy><gml:Envelope srsName="{SRS}"><gml:lowerCorner>{minx:.2f} {miny:.2f}</gml:lowerCorner>'
        f"<gml:upperCorner>{maxx:.2f} {maxy:.2f}</gml:upperCorner></gml:Envelope></gml:boundedBy>\n"
        f"{_el('id', answer_id)}\n{_el('type', 'ledningsoplysninger udleveret')}\n"
        f"{_kontakt(owner, f'K-svar-{owner.slug}')}\n"
    )
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head)
        for row in lines.to_dict("records"):
            f.write(_line(row, owner) + "\n")
        for row in points.to_dict("records"):
            f.write(_component(row, owner) + "\n")
        f.write("</ler:Graveforespoergselssvar>\n")
    return len(lines) + len(points)
