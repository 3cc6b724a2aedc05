"""A dig answer as GML 3.2, in the structure of a Danish LER 2 answer package.

LER hands a digger a *ledningspakke*: a ZIP whose ``consolidated.gml`` is one
feature collection holding the dig request (``Graveforesp``), one entry per
owner's package, and every owner's features (``ler:Elledning``,
``ler:Vandkomponent``...), each tagged with its ``ledningsejer`` and package
number. The collection and request elements are not part of the published
LER schema (namespace ``http://data.gov.dk/schemas/LER/2/gml``, OpenLER
featurekatalog 2.0-2.2), so geoby writes them, and everything else LER has
no slot for, in its own namespace ``https://geoby.dev/schemas/dig/1``
(prefix ``dig``); the asset features themselves are LER features.

Document::

    dig:AnswerPackage                  gml:id, gml:boundedBy
      dig:request/dig:DigRequest       reference, period, work types, dig area, answer area
      dig:ownerPackage/dig:OwnerPackage    one per owner: state, counts, LER answer type
      ler:ledningMember/ler:Elledning ...  line assets (utilities_lines)
      ler:ledningskomponentMember/ler:Elkomponent ...  point and area assets

Decisions where neither the issue nor LER decides:

- Feature types by utility type: ``Elledning``, ``Gasledning``,
  ``Vandledning``, ``Afloebsledning``, ``TermiskLedning``,
  ``Telekommunikationsledning``, ``Olieledning``, else
  ``LedningUkendtForsyningsart``; ducts (``asset_kind`` duct) are
  ``Foeringsroer`` with their ``forsyningsart``; points and areas are the
  matching ``...komponent`` (``AndenKomponent`` for other).
- LER elements are written in the schema's order with its vocabulary:
  ``fareklasse`` "ikke farlig" / "farlig" / "meget farlig",
  ``noejagtighedsklasse`` "<= 0.25 m" ... "> 2.00 m", ``driftsstatus``;
  an unknown class or status is ``xsi:nil`` with ``nilReason="unknown"``
  (the only nil reason LER allows). ``vejledendeDybde`` is in mm (LER's
  unit restriction) and is left out when the depth is unknown: no number
  is ever invented for it. The required ``etableringstidspunkt`` of a line,
  which an answer does not carry, is ``indeterminatePosition="unknown"``.
- ``sikkerhedshensyn`` (LER's free text for precautions) holds the required
  actions' texts; the structured actions, distances, depth-known flag and
  the owner are geoby extension elements at the end of each feature. The
  owner is ``dig:ledningsejer``, the name LER's consolidated package uses,
  which :mod:`ingest.utilities.ler` reads.
- Geometries are 2-D in EPSG:25832 (``srsName``
  ``http://www.opengis.net/def/crs/EPSG/0/25832``), clipped to the answer
  area as stored; LER's own packages are 3-D in EPSG:7416 with -99 for an
  unknown height. A line clipped into several parts is a ``gml:MultiCurve``.
- Each owner package carries LER's answer type (``Graveforespoergselssvartype``):
  pending or overdue is "udtaget til manuel behandling", answered with
  on-site marking demanded "udtaget til påvisning - ledningsoplysninger
  udleveret", answered without assets "ingen ledninger i graveområde", else
  "ledningsoplysninger udleveret".
- ``owner=`` gives the same document restricted to that owner (LER's
  per-owner package); the request is in every package.

The features are therefore not valid against the LER XSD (extension
elements, 2-D CRS), but every LER element present is where the schema puts
it, and LER readers that skip unknown elements read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import shapely
from lxml import etree
from shapely.geometry.base import BaseGeometry

from dig_coordination.model import Answer, Conflict, OwnerState, least_distance
from ingest.utilities import model as utilities
from layers.crs import STORAGE_EPSG, crs_uri

NS_LER = "http://data.gov.dk/schemas/LER/2/gml"
NS_GML = "http://www.opengis.net/gml/3.2"
NS_DIG = "https://geoby.dev/schemas/dig/1"
NS_XLINK = "http://www.w3.org/1999/xlink"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"dig": NS_DIG, "ler": NS_LER, "gml": NS_GML, "xlink": NS_XLINK, "xsi": NS_XSI}
SRS_NAME = crs_uri(STORAGE_EPSG)
MEDIA_TYPE = "application/gml+xml; version=3.2"

LINE_TYPES = {
    "electricity": "Elledning", "gas": "Gasledning", "water": "Vandledning",
    "sewer": "Afloebsledning", "district_heating": "TermiskLedning",
    "telecom": "Telekommunikationsledning", "oil_chemicals": "Olieledning",
}  # fmt: skip
COMPONENT_TYPES = {
    "electricity": "Elkomponent", "gas": "Gaskomponent", "water": "Vandkomponent",
    "sewer": "Afloebskomponent", "district_heating": "TermiskKomponent",
    "telecom": "Telekommunikationskomponent", "oil_chemicals": "Oliekomponent",
}  # fmt: skip
FORSYNINGSART = {
    "electricity": "el", "gas": "gas", "water": "vand", "sewer": "afløb",
    "district_heating": "fjernvarme/fjernkøling", "telecom": "telekommunikation",
    "oil_chemicals": "olie",
}  # fmt: skip
FAREKLASSE = {"not_dangerous": "ikke farlig", "dangerous": "farlig",
              "very_dangerous": "meget farlig"}  # fmt: skip
NOEJAGTIGHEDSKLASSE = {"0.25": "<= 0.25 m", "0.5": "<= 0.50 m", "1": "<= 1.00 m",
                       "2": "<= 2.00 m", ">2": "> 2.00 m"}  # fmt: skip
DRIFTSSTATUS = {"in_service": "i drift", "out_of_service": "i drift",
                "planned": "under etablering", "under_construction": "under etablering",
                "abandoned": "permanent ude af drift"}  # fmt: skip
# LER line types (ler:type) that a geoby subtype names without doubt
_LINE_TYPE_VALUES = {
    "Elledning": {"street_lighting": "vejbelysningskabel", "low_voltage": "forsyningskabel",
                  "medium_voltage": "forsyningskabel", "high_voltage": "forsyningskabel"},
    "Telekommunikationsledning": {"fibre": "fiberkabel", "copper": "kobberkabel",
                                  "coax": "coaxkabel"},
    "Gasledning": {"low_pressure": "distributionsledning", "high_pressure": "fordelingsledning",
                   "transmission": "transmissionsledning", "service": "stikledning"},
    "TermiskLedning": {"distribution": "distributionsledning",
                       "transmission": "transmissionsledning", "service": "stikledning"},
}  # fmt: skip
_MEDIETYPE = {"foul": "spildevand", "storm": "regnvand", "combined": "fællesvand"}
_COMPONENT_TYPE_VALUES = {
    "manhole": "brønd", "pumping_station": "pumpestation", "outfall": "udløbsbygværk",
    "treatment_plant": "renseanlæg", "waterworks": "vandværk", "valve": "ventil",
    "tap": "tapsted", "hydrant": "tapsted", "station": "station", "cabinet": "skab",
    "lighting_cabinet": "tændskab/gadelys", "mr_station": "MR-station", "structure": "bygværk",
    "distribution_box": "fordelerboks", "mast": "mast", "joint": "muffe",
}  # fmt: skip
_PIPES = {"Gasledning", "Vandledning", "Afloebsledning", "TermiskLedning", "Olieledning",
          "Foeringsroer"}  # fmt: skip


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _sub(parent: etree._Element, ns: str, local: str, text: object = None,
         **attrs: str) -> etree._Element:  # fmt: skip
    elem = etree.SubElement(parent, _q(ns, local), attrs)
    if text is not None:
        elem.text = text.isoformat() if isinstance(text, date | datetime) else str(text)
    return elem


def _nil(parent: etree._Element, local: str) -> None:
    _sub(parent, NS_LER, local, nilReason="unknown").set(_q(NS_XSI, "nil"), "true")


def _ler_or_nil(parent: etree._Element, local: str, value: str | None) -> None:
    if value is None:
        _nil(parent, local)
    else:
        _sub(parent, NS_LER, local, value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _number(value: float, places: int = 3) -> str:
    return f"{value:.{places}f}".rstrip("0").rstrip(".")


# -- geometry ------------------------------------------------------------------------


def _pos_list(geom: BaseGeometry) -> str:
    return " ".join(f"{_number(x)} {_number(y)}" for x, y in shapely.get_coordinates(geom))


def _ring(parent: etree._Element, local: str, ring) -> None:
    linear = _sub(_sub(parent, NS_GML, local), NS_GML, "LinearRing")
    _sub(linear, NS_GML, "posList", _pos_list(ring))


def gml_geometry(parent: etree._Element, geom: BaseGeometry, gid: str, *,
                 srs: bool = True) -> etree._Element:  # fmt: skip
    """Write ``geom`` (EPSG:25832) as a GML 3.2 geometry under ``parent``.

    Parameters
    ----------
    parent
        The property element that holds the geometry.
    geom
        Point, LineString, Polygon, their Multi kinds or a GeometryCollection.
    gid
        The ``gml:id`` of the geometry; parts get ``gid.1``, ``gid.2``...
    srs
        Name the CRS (parts of a multi-geometry inherit their parent's).

    Returns
    -------
    lxml.etree._Element
        The geometry element.
    """
    kind = geom.geom_type
    attrs = {_q(NS_GML, "id"): gid}
    if srs:
        attrs |= {"srsName": SRS_NAME, "srsDimension": "2"}
    if kind == "Point":
        elem = _sub(parent, NS_GML, "Point", **attrs)
        _sub(elem, NS_GML, "pos", _pos_list(geom))
    elif kind in ("LineString", "LinearRing"):
        elem = _sub(parent, NS_GML, "LineString", **attrs)
        _sub(elem, NS_GML, "posList", _pos_list(geom))
    elif kind == "Polygon":
        elem = _sub(parent, NS_GML, "Polygon", **attrs)
        _ring(elem, "exterior", geom.exterior)
        for hole in geom.interiors:
            _ring(elem, "interior", hole)
    else:
        outer, member = {
            "MultiPoint": ("MultiPoint", "pointMember"),
            "MultiLineString": ("MultiCurve", "curveMember"),
            "MultiPolygon": ("MultiSurface", "surfaceMember"),
        }.get(kind, ("MultiGeometry", "geometryMember"))
        elem = _sub(parent, NS_GML, outer, **attrs)
        for n, part in enumerate(geom.geoms, 1):
            gml_geometry(_sub(elem, NS_GML, member), part, f"{gid}.{n}", srs=False)
    return elem


# -- the request and the owners -----------------------------------------------------------


def _ncname(prefix: str, value: object) -> str:
    """An XML NCName (a ``gml:id``) from a prefix and any value."""
    text = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(value))
    return f"{prefix}-{text}"


def _request(root: etree._Element, answer: Answer) -> None:
    r = answer.request
    elem = _sub(_sub(root, NS_DIG, "request"), NS_DIG, "DigRequest")
    elem.set(_q(NS_GML, "id"), _ncname("request", r.id))
    for local, value in (("id", r.id), ("reference", r.reference),
                         ("organisation", r.organisation), ("kind", r.kind),
                         ("status", r.status)):  # fmt: skip
        _sub(elem, NS_DIG, local, value)
    for work in r.work_types:
        _sub(elem, NS_DIG, "workType", work)
    if r.depth_m is not None:
        _sub(elem, NS_DIG, "plannedDepth", _number(r.depth_m), uom="m")
    _sub(elem, NS_DIG, "buffer", _number(r.buffer_m), uom="m")
    if r.line_width_m is not None:
        _sub(elem, NS_DIG, "lineWidth", _number(r.line_width_m), uom="m")
    period = _sub(_sub(elem, NS_DIG, "period"), NS_GML, "TimePeriod")
    period.set(_q(NS_GML, "id"), _ncname("period", r.id))
    _sub(period, NS_GML, "beginPosition", r.start_date)
    _sub(period, NS_GML, "endPosition", r.end_date)
    for local, value in (("createdAt", r.created_at), ("validUntil", r.valid_until),
                         ("answeredAt", r.answered_at), ("cancelledAt", r.cancelled_at),
                         ("renewedFrom", r.renewed_from),
                         ("generatedAt", answer.generated_at)):  # fmt: skip
        if value is not None:
            _sub(elem, NS_DIG, local, value)
    if r.description:
        _sub(elem, NS_DIG, "description", r.description)
    contact = _sub(_sub(elem, NS_DIG, "contact"), NS_DIG, "Contact")
    for key in ("name", "phone", "email"):
        if r.contact.get(key):
            _sub(contact, NS_DIG, key, r.contact[key])
    gml_geometry(_sub(elem, NS_DIG, "digArea"), r.geometry, _ncname("dig-area", r.id))
    answer_area = r.geometry.buffer(r.buffer_m, quad_segs=16)
    gml_geometry(_sub(elem, NS_DIG, "answerArea"), answer_area, _ncname("answer-area", r.id))


def answer_type(state: OwnerState | None, asset_count: int) -> str:
    """LER's ``Graveforespoergselssvartype`` for an owner's package.

    Examples
    --------
    >>> answer_type(None, 0)
    'ingen ledninger i graveområde'
    """
    if state is not None and state.status in ("pending", "overdue"):
        return "udtaget til manuel behandling"
    if asset_count == 0:
        return "ingen ledninger i graveområde"
    if state is not None and state.marking_required:
        return "udtaget til påvisning - ledningsoplysninger udleveret"
    return "ledningsoplysninger udleveret"


def packages(answer: Answer) -> list[tuple[str, OwnerState | None, list[Conflict]]]:
    """Each owner of the answer, its state and its assets (nearest first), by owner name."""
    states = {o.owner: o for o in answer.owners}
    names = sorted(set(states) | {c.owner for c in answer.conflicts})
    return [(n, states.get(n), [c for c in answer.conflicts if c.owner == n]) for n in names]


def _owner_package(root: etree._Element, gid: str, name: str, state: OwnerState | None,
                   conflicts: list[Conflict]) -> None:  # fmt: skip
    elem = _sub(_sub(root, NS_DIG, "ownerPackage"), NS_DIG, "OwnerPackage")
    elem.set(_q(NS_GML, "id"), gid)
    _sub(elem, NS_DIG, "owner", name)
    _sub(elem, NS_DIG, "answerType", answer_type(state, len(conflicts)))
    _sub(elem, NS_DIG, "assetCount", len(conflicts))
    _sub(elem, NS_DIG, "depthUnknownCount", sum(c.depth_m is None for c in conflicts))
    _sub(elem, NS_DIG, "blockingCount", sum(c.blocks for c in conflicts))
    if state is None:
        return
    _sub(elem, NS_DIG, "mode", state.mode)
    _sub(elem, NS_DIG, "status", state.status)
    for local, value in (("dueAt", state.due_at), ("answeredAt", state.answered_at),
                         ("notifiedAt", state.notified_at),
                         ("markingBookedFor", state.marking_booked_for),
                         ("markingDoneAt", state.marking_done_at),
                         ("precautionsAgreedAt", state.precautions_agreed_at)):  # fmt: skip
        if value is not None:
            _sub(elem, NS_DIG, local, value)
    _sub(elem, NS_DIG, "markingRequired", _bool(state.marking_required))
    if state.remarks:
        _sub(elem, NS_DIG, "remarks", state.remarks)


# -- the assets ----------------------------------------------------------------------


def feature_type(conflict: Conflict) -> str:
    """The LER feature type of an asset (``Elledning``, ``Foeringsroer``, ``Vandkomponent``...)."""
    if conflict.layer != utilities.LINES.id:
        return COMPONENT_TYPES.get(conflict.utility_type, "AndenKomponent")
    if conflict.asset_kind == "duct":
        return "Foeringsroer"
    return LINE_TYPES.get(conflict.utility_type, "LedningUkendtForsyningsart")


def _common(f: etree._Element, c: Conflict, line: bool) -> None:
    """The elements every LER line and component has, in the schema's order."""
    _ler_or_nil(f, "driftsstatus", DRIFTSSTATUS.get(c.status or ""))
    if line:
        _sub(f, NS_LER, "etableringstidspunkt", indeterminatePosition="unknown")
    _ler_or_nil(f, "fareklasse", FAREKLASSE.get(c.hazard_class or ""))
    _sub(f, NS_LER, "id", c.asset_id)
    _ler_or_nil(f, "noejagtighedsklasse", NOEJAGTIGHEDSKLASSE.get(c.accuracy_class or ""))
    if c.actions:
        _sub(f, NS_LER, "sikkerhedshensyn", "; ".join(a.text for a in c.actions))
    if c.depth_m is not None:
        _sub(f, NS_LER, "vejledendeDybde", round(c.depth_m * 1000), uom="mm")
    gml_geometry(_sub(f, NS_LER, "geometri"), c.geometry, f"{f.get(_q(NS_GML, 'id'))}.g")


def _line_details(f: etree._Element, c: Conflict, ftype: str) -> None:
    """What follows the common elements of a line, in the schema's order."""
    if c.diameter_mm is not None:
        _sub(f, NS_LER, "udvendigDiameter", _number(c.diameter_mm), uom="mm")
    type_value = _LINE_TYPE_VALUES.get(ftype, {}).get(c.subtype or "")
    if ftype in ("Elledning", "Telekommunikationsledning"):
        _ler_or_nil(f, "type", type_value)
    if ftype == "Elledning" and c.voltage_kv is not None:
        _sub(f, NS_LER, "spaendingsniveau", _number(c.voltage_kv), uom="kV")
    if ftype in _PIPES:
        _nil(f, "tvaersnitsform")
    if ftype in ("Gasledning", "TermiskLedning"):
        _ler_or_nil(f, "type", type_value)
        if c.pressure_bar is not None:
            _sub(f, NS_LER, "tryk", _number(c.pressure_bar), uom="bar")
    elif ftype == "Afloebsledning" and c.subtype in _MEDIETYPE:
        _sub(f, NS_LER, "medietype", _MEDIETYPE[c.subtype])
    elif ftype == "Foeringsroer" and c.utility_type in FORSYNINGSART:
        _sub(f, NS_LER, "forsyningsart", FORSYNINGSART[c.utility_type])


def _extension(f: etree._Element, c: Conflict, package_id: str) -> None:
    """geoby's additions, after the LER elements."""
    _sub(f, NS_DIG, "ledningsejer", c.owner)
    _sub(f, NS_DIG, "ownerPackage").set(_q(NS_XLINK, "href"), f"#{package_id}")
    _sub(f, NS_DIG, "utilityType", c.utility_type)
    if c.subtype:
        _sub(f, NS_DIG, "subtype", c.subtype)
    if c.asset_kind:
        _sub(f, NS_DIG, "assetKind", c.asset_kind)
    _sub(f, NS_DIG, "distance", _number(c.distance_m), uom="m")
    least = least_distance(c.distance_m, c.accuracy_class)
    _sub(f, NS_DIG, "leastDistance", _number(least), uom="m")
    _sub(f, NS_DIG, "depthKnown", _bool(c.depth_m is not None))
    if c.depth_m is not None and c.depth_reference:
        _sub(f, NS_DIG, "depthReference", c.depth_reference)
    _sub(f, NS_DIG, "blocksReadyToDig", _bool(c.blocks))
    for a in c.actions:
        action = _sub(_sub(f, NS_DIG, "requiredAction"), NS_DIG, "RequiredAction")
        _sub(action, NS_DIG, "action", a.action)
        _sub(action, NS_DIG, "text", a.text)
        _sub(action, NS_DIG, "blocks", _bool(a.blocks))
        if a.notice_working_days is not None:
            _sub(action, NS_DIG, "noticeWorkingDays", a.notice_working_days)
        if a.rule_id is not None:
            _sub(action, NS_DIG, "ruleId", a.rule_id)


def _feature(root: etree._Element, c: Conflict, package_id: str) -> None:
    line = c.layer == utilities.LINES.id
    ftype = feature_type(c)
    member = _sub(root, NS_LER, "ledningMember" if line else "ledningskomponentMember")
    f = _sub(member, NS_LER, ftype)
    f.set(_q(NS_GML, "id"), _ncname(c.layer, c.asset_fid))
    _common(f, c, line)
    if line:
        _line_details(f, c, ftype)
    elif c.asset_kind in _COMPONENT_TYPE_VALUES:
        _sub(f, NS_LER, "type", _COMPONENT_TYPE_VALUES[c.asset_kind])
    _extension(f, c, package_id)


def _bounded_by(root: etree._Element, geoms: Iterable[BaseGeometry]) -> None:
    minx, miny, maxx, maxy = shapely.total_bounds(list(geoms))
    envelope = _sub(_sub(root, NS_GML, "boundedBy"), NS_GML, "Envelope", srsName=SRS_NAME,
                    srsDimension="2")  # fmt: skip
    _sub(envelope, NS_GML, "lowerCorner", f"{_number(minx)} {_number(miny)}")
    _sub(envelope, NS_GML, "upperCorner", f"{_number(maxx)} {_number(maxy)}")


def render_gml(answer: Answer, owner: str | None = None) -> bytes:
    """The answer as a LER-structured GML 3.2 package.

    Parameters
    ----------
    answer
        The answer (geometries in EPSG:25832).
    owner
        Only this owner's package (the request, its state and its assets);
        ``None`` for the combined package.

    Returns
    -------
    bytes
        The UTF-8 document, with its XML declaration.
    """
    if owner is not None:
        answer = answer.for_owner(owner)
    request = answer.request
    root = etree.Element(_q(NS_DIG, "AnswerPackage"), nsmap=NSMAP)
    root.set(_q(NS_GML, "id"), _ncname("answer", request.id))
    area = request.geometry.buffer(request.buffer_m, quad_segs=16)
    _bounded_by(root, [area, *(c.geometry for c in answer.conflicts)])
    _request(root, answer)
    owned = packages(answer)
    ids = [f"package-{n}" for n in range(1, len(owned) + 1)]
    for gid, (name, state, conflicts) in zip(ids, owned, strict=True):
        _owner_package(root, gid, name, state, conflicts)
    for gid, (_, _, conflicts) in zip(ids, owned, strict=True):
        for c in conflicts:
            _feature(root, c, gid)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
