"""The normalised utility asset: layers, columns, vocabularies and the hazard rule.

Every reader of the utilities family (LER, IMKL/KLIC, NVDB, GeoPackage...)
turns its records into rows of this one model, so the dig coordinator asks
one question of one set of tables whatever format an owner publishes in.

Layers (schema ``restricted``, access ``restricted``, theme ``utilities``)
---------------------------------------------------------------------------
=============================  ===============  =========================================
layer                          geometry         what
=============================  ===============  =========================================
``utilities_lines``            MultiLineString  cables, pipes, ducts, sleeves, cable beds
``utilities_points``           MultiPoint       appurtenances: cabinets, valves, joints,
                                                manholes, masts, stations, depth markers
``utilities_areas``            MultiPolygon     precaution zones (IMKL
                                                EisVoorzorgsmaatregel), extra detail
                                                areas and station outlines
``utilities_interest_areas``   MultiPolygon     owners' interest areas per utility type
``utilities_dig_areas``        MultiPolygon     dig polygons that arrive with a KLIC
                                                delivery, kept as dig requests
=============================  ===============  =========================================

Asset columns (lines, points and areas alike; natural key ``(owner, asset_id)``):

``asset_id``
    Stable id from the source: LER ``id``, GML id (IMKL, NVDB) or a column.
``owner``
    The organisation that owns the asset. From the data where it says so
    (IMKL ``Beheerder``, a table's owner column), else ``--owner``; a record
    with neither is refused, naming it.
``utility_type``
    One of :data:`UTILITY_TYPES`. Source names in English, Danish, Dutch and
    Norwegian are understood (:data:`TYPE_NAMES`); fibre and copper are
    ``telecom`` with that subtype. An unrecognised name is ``other`` and the
    source value is kept in ``attributes``.
``subtype``
    ``low_voltage`` (< 1 kV), ``medium_voltage`` (< 36 kV), ``high_voltage``,
    ``street_lighting``; ``low_pressure`` (< 7 bar), ``high_pressure``;
    ``fibre``, ``copper``; ``foul``, ``storm``, ``combined``; ``distribution``,
    ``transmission``... taken from the source where it says so, else from
    voltage or pressure, else empty.
``asset_kind``
    What the object is: ``cable``, ``pipe``, ``duct``, ``sleeve``,
    ``cable_bed``, ``valve``, ``cabinet``, ``manhole``, ``mast``, ``joint``,
    ``station``, ``depth_marker``, ``precaution_zone``...
``hazard_class``, ``hazard_source``
    ``not_dangerous``, ``dangerous`` or ``very_dangerous``. ``hazard_source``
    is ``data`` where the source gives it (LER ``fareklasse``, an IMKL network
    with a precaution requirement or with hazardous contents, a hazard
    column) and ``rule`` where :func:`derive_hazard` derived it. A hazard
    value that cannot be read refuses the file: guessing is not safe.
``depth_m``, ``depth_reference``
    Depth in metres below the reference the source names (ground level, top
    of pipe...). Unknown depth stays NULL; it is never filled in from a
    network's standard laying depth (kept in ``attributes`` instead).
    ``-99``, ``-999`` and ``-9999`` are read as unknown; another negative
    depth refuses the file.
``accuracy_class``
    Horizontal position accuracy: ``0.25``, ``0.5``, ``1``, ``2``, ``>2``
    (metres) or NULL (unknown). LER's ``<= 0.50 m`` and IMKL's ``30cm``,
    ``50cm``, ``100cm`` and ``onbekend`` are read by :func:`accuracy_class`:
    the smallest class that holds the stated value; ``> x`` reads as ``>2``.
``status``
    ``in_service``, ``planned``, ``under_construction``, ``out_of_service``
    or ``abandoned``; an unknown status is NULL with the source value kept.
``vertical_position``
    ``underground``, ``on_ground`` or ``above_ground``.
``diameter_mm``, ``material``, ``voltage_kv``, ``pressure_bar``, ``installed_year``
    As given, converted to these units; zero or negative diameters,
    voltages and pressures (placeholders in IMKL2015) are unknown.
``source_format``
    ``LER2``, ``IMKL2.0``, ``IMKL2015``, ``NVDB``, ``GPKG``, ``GeoJSON``...
``attributes``
    Every other source attribute, so nothing is lost (jsonb).

The hazard rule (:func:`derive_hazard`), where the source gives no class:
electricity ``very_dangerous`` from 30 kV or when ``high_voltage``, else
``dangerous`` (also street lighting and unknown voltage); gas
``very_dangerous`` from 7 bar or when ``high_pressure``/``transmission``,
else ``dangerous``; oil and chemicals ``very_dangerous``; district heating
``dangerous``; water, sewer and telecom ``not_dangerous``; ``other``
``dangerous`` (an asset nobody has described is treated with care).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ingest.spec import TableSpec
from layers.catalog import Layer
from layers.errors import InvalidInput

THEME = "utilities"
SCHEMA = "restricted"
UTILITY_TYPES = ("electricity", "gas", "water", "sewer", "district_heating", "telecom",
                 "oil_chemicals", "other")  # fmt: skip
HAZARD_CLASSES = ("not_dangerous", "dangerous", "very_dangerous")
ACCURACY_CLASSES = ("0.25", "0.5", "1", "2", ">2")
STATUSES = ("in_service", "planned", "under_construction", "out_of_service", "abandoned")
UNKNOWN_DEPTHS = (-99.0, -999.0, -9999.0)
HIGH_VOLTAGE_KV = 30.0
HIGH_PRESSURE_BAR = 7.0

ASSET_COLUMNS: dict[str, str] = {
    "asset_id": "text", "owner": "text", "utility_type": "text", "subtype": "text",
    "asset_kind": "text", "hazard_class": "text", "hazard_source": "text",
    "depth_m": "double precision", "depth_reference": "text", "accuracy_class": "text",
    "status": "text", "vertical_position": "text", "diameter_mm": "double precision",
    "material": "text", "voltage_kv": "double precision", "pressure_bar": "double precision",
    "installed_year": "integer", "source_format": "text", "attributes": "jsonb",
}  # fmt: skip
INTEREST_COLUMNS: dict[str, str] = {
    "area_id": "text", "owner": "text", "utility_type": "text", "origin": "text",
    "buffer_rule": "text", "asset_count": "integer", "area_m2": "double precision",
    "attributes": "jsonb",
}  # fmt: skip
DIG_COLUMNS: dict[str, str] = {
    "request_id": "text", "reference": "text", "requester": "text", "requested_at": "timestamptz",
    "description": "text", "source_format": "text", "attributes": "jsonb",
}  # fmt: skip


def key(value: object) -> str:
    """A source value as a lookup key: lower case, Danish letters spelled out, ``_`` joins."""
    text = str(value).strip().lower()
    text = text.replace("æ", "ae").replace("ø", "oe").replace("å", "aa").replace("ü", "u")
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def _names(mapping: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {key(name): target for target, names in mapping.items() for name in (target, *names)}


TYPE_NAMES = _names({
    "electricity": ("el", "elektricitet", "elforsyning", "elledning", "elkabel", "elektriciteit",
                    "elektrisitet", "power", "electric", "laagspanning", "middenspanning",
                    "hoogspanning", "landelijkhoogspanningsnet", "street_lighting", "lighting",
                    "belysning", "gadebelysning", "vejbelysning", "openbare_verlichting"),
    "gas": ("naturgas", "gasledning", "bygas", "gaslagedruk", "gashogedruk", "natural_gas"),
    "water": ("vand", "vandforsyning", "drikkevand", "vandledning", "vann", "drinkwater",
              "potable", "drinking_water"),
    "sewer": ("sewage", "sewerage", "kloak", "afloeb", "afloebsledning", "spildevand", "regnvand",
              "riool", "rioolvrijverval", "rioolonderoverofonderdruk", "stormwater",
              "storm_water", "drainage", "overvann", "spillvann", "avloep", "wastewater",
              "afvalwater", "hemelwater"),
    "district_heating": ("fjernvarme", "heat", "heating", "warmte", "termisk", "termiskledning",
                         "thermal", "district_heat", "stadsverwarming"),
    "telecom": ("tele", "telecommunications", "telecommunication", "telekommunikation",
                "telekommunikationsledning", "fibre", "fiber", "fiberkabel", "datatransport",
                "kobber", "copper", "coax", "ekom", "data"),
    "oil_chemicals": ("oil", "olie", "chemicals", "oil_gas_chemicals", "oilgaschemical",
                      "buisleidinggevaarlijkeinhoud", "petrochemie", "olieledning", "fuel"),
    "other": ("andet", "overig", "wees", "orphan", "unknown", "ukendt", "onbekend"),
})  # fmt: skip
_TELECOM_MEDIA = {"fibre": "fibre", "fiber": "fibre", "fiberkabel": "fibre", "kobber": "copper",
                  "copper": "copper", "kobberkabel": "copper", "coax": "coax"}  # fmt: skip
SUBTYPE_NAMES = _names({
    "low_voltage": ("lavspaending", "laagspanning", "lv", "lavspent", "elektrisitetlavspent"),
    "medium_voltage": ("mellemspaending", "middenspanning", "mv"),
    "high_voltage": ("hoejspaending", "hoogspanning", "hv", "landelijkhoogspanningsnet"),
    "street_lighting": ("vejbelysning", "gadebelysning", "vejbelysningskabel", "belysning",
                        "openbare_verlichting", "lighting"),
    "low_pressure": ("lavtryk", "gaslagedruk", "lage_druk"),
    "high_pressure": ("hoejtryk", "gashogedruk", "hoge_druk"),
    "fibre": ("fiber", "fiberkabel"),
    "copper": ("kobber", "kobberkabel"),
    "foul": ("spildevand", "sanitary", "vuilwater", "spillvann"),
    "storm": ("regnvand", "stormwater", "hemelwater", "overvann"),
    "combined": ("faellesvand", "faelles", "gemengd"),
})  # fmt: skip
HAZARD_NAMES = _names({
    "not_dangerous": ("ikke_farlig", "niet_gevaarlijk", "safe", "not dangerous"),
    "dangerous": ("farlig", "gevaarlijk"),
    "very_dangerous": ("meget_farlig", "zeer_gevaarlijk", "very dangerous"),
})  # fmt: skip
STATUS_NAMES = _names({
    "in_service": ("i_drift", "functional", "in_gebruik", "active", "operational", "existing",
                   "bestaand", "i_bruk", "in_use"),
    "planned": ("projected", "projekteret", "under_etablering", "planlagt", "gepland",
                "proposed", "planning"),
    "under_construction": ("underconstruction", "in_aanleg", "under_anlaeg"),
    "out_of_service": ("disused", "midlertidigt_ude_af_drift", "buiten_gebruik", "inactive",
                       "ude_af_drift"),
    "abandoned": ("decommissioned", "permanent_ude_af_drift", "opgeheven", "verlaten", "nedlagt",
                  "sloejfet"),
})  # fmt: skip
POSITION_NAMES = _names({
    "underground": ("under_terraen", "ondergronds", "under_bakken", "below_ground"),
    "on_ground": ("ongroundsurface", "i_terraen", "on_ground_surface", "maaiveld"),
    "above_ground": ("over_terraen", "suspendedorelevated", "bovengronds", "overhead",
                     "suspended_or_elevated"),
})  # fmt: skip
_UNKNOWN = {"", "onbekend", "ukendt", "unknown", "ubekendt", "ikke_oplyst", "none", "null", "nan"}


@dataclass(frozen=True)
class LayerDef:
    """One layer of the family."""

    id: str
    title: str
    description: str
    geometry_type: str
    columns: dict[str, str]
    key: tuple[str, ...]

    def spec(self, *, owner: str | None = None, licence: str | None = None,
             attribution: str | None = None) -> TableSpec:  # fmt: skip
        """The loader's target for this layer."""
        layer = Layer(
            id=self.id, title=self.title, description=self.description, theme=THEME,
            kind="vector", table_schema=SCHEMA, table_name=self.id, owner_org=owner,
            licence=licence or "unknown", attribution=attribution, access="restricted",
            keywords=["utilities", "buried infrastructure", self.id.removeprefix("utilities_")],
        )  # fmt: skip
        return TableSpec(layer=layer, columns=dict(self.columns), geometry_type=self.geometry_type,
                         key=self.key, required=self.key,
                         indexes=("utility_type",) if "utility_type" in self.columns else ())  # fmt: skip


_ASSET_NOTE = (" Every asset has owner, utility type, hazard class, depth (NULL when unknown) and "
               "position accuracy class; other source attributes are in attributes.")  # fmt: skip
LINES = LayerDef("utilities_lines", "Buried cables and pipes",
                 "Cables, pipes, ducts and cable beds of every network owner." + _ASSET_NOTE,
                 "MultiLineString", ASSET_COLUMNS, ("owner", "asset_id"))  # fmt: skip
POINTS = LayerDef("utilities_points", "Utility appurtenances",
                  "Cabinets, valves, joints, manholes, masts, stations and depth markers of "
                  "every network owner." + _ASSET_NOTE,
                  "MultiPoint", ASSET_COLUMNS, ("owner", "asset_id"))  # fmt: skip
AREAS = LayerDef("utilities_areas", "Utility areas and precaution zones",
                 "Precaution zones (IMKL EisVoorzorgsmaatregel), extra detail areas and station "
                 "outlines." + _ASSET_NOTE, "MultiPolygon", ASSET_COLUMNS, ("owner", "asset_id"))  # fmt: skip
INTEREST = LayerDef("utilities_interest_areas", "Owners' interest areas",
                    "Per owner and utility type, the area in which a dig request notifies the "
                    "owner: derived from the owner's assets (buffered by position accuracy, "
                    "dissolved) or uploaded by the owner (origin).",
                    "MultiPolygon", INTEREST_COLUMNS, ("owner", "area_id"))  # fmt: skip
DIG_AREAS = LayerDef("utilities_dig_areas", "Dig areas from KLIC deliveries",
                     "Dig polygons (KLIC Graafpolygoon) that arrived inside a delivery, kept as "
                     "dig requests with their reference and requester.",
                     "MultiPolygon", DIG_COLUMNS, ("request_id",))  # fmt: skip
ASSET_LAYERS = (LINES, POINTS, AREAS)


def missing(value: object) -> bool:
    """``None``, NaN, pandas NA or blank text."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return str(value) in ("<NA>", "NaT")


def utility_type(value: object) -> tuple[str, str | None]:
    """``(utility_type, subtype implied)`` for a source type name; unknown names are ``other``."""
    name = key(value)
    return TYPE_NAMES.get(name, "other"), _TELECOM_MEDIA.get(name)


def subtype(value: object) -> str | None:
    """A subtype as a known name (``lavspaending`` -> ``low_voltage``) or snake case."""
    if missing(value):
        return None
    name = key(value)
    return SUBTYPE_NAMES.get(name, name or None)


def hazard_class(
    value: object, *, source: str, record: str, field: str = "hazard_class"
) -> str | None:
    """A hazard class from its English, Danish or Dutch name.

    Raises
    ------
    InvalidInput
        A value that names no hazard class.
    """
    if missing(value):
        return None
    found = HAZARD_NAMES.get(key(value))
    if found is None:
        raise InvalidInput(
            f"{source}: field '{field}' value {value!r} is not a hazard class; use "
            "not_dangerous, dangerous or very_dangerous (LER 'ikke farlig', 'farlig', "
            "'meget farlig' are understood)", record=f"record {record}", field=field,
        )  # fmt: skip
    return found


_NUMBER = re.compile(r"([<>]=?|≤|≥)?\s*([0-9]+(?:[.,][0-9]+)?)\s*(mm|cm|m)?$")


def accuracy_class(value: object, *, source: str, record: str,
                   field: str = "accuracy_class") -> str | None:  # fmt: skip
    """A position accuracy class from ``<= 0.50 m``, ``30cm``, ``1``, ``>2`` or ``onbekend``.

    Raises
    ------
    InvalidInput
        A value that is neither a class, a distance nor a word for unknown.
    """
    if missing(value):
        return None
    text = str(value).strip().lower().replace(" ", "")
    if key(text) in _UNKNOWN:
        return None
    match = _NUMBER.match(text.replace("≤", "<=").replace("≥", ">="))
    if match is None:
        raise InvalidInput(
            f"{source}: field '{field}' value {value!r} is not a position accuracy; use "
            "0.25, 0.5, 1, 2 or >2 (metres), a distance such as '30cm', or leave it empty",
            record=f"record {record}", field=field,
        )  # fmt: skip
    sign, number, unit = match.groups()
    metres = float(number.replace(",", ".")) / {"mm": 1000, "cm": 100}.get(unit or "m", 1)
    if sign and sign.startswith(">"):
        return ">2"
    for bound in (0.25, 0.5, 1.0, 2.0):
        if metres <= bound:
            return ACCURACY_CLASSES[(0.25, 0.5, 1.0, 2.0).index(bound)]
    return ">2"


def status(value: object) -> str | None:
    """A status from its name (``i drift``, ``functional``...); ``None`` when unknown."""
    return None if missing(value) else STATUS_NAMES.get(key(value))


def vertical_position(value: object) -> str | None:
    """``underground``, ``on_ground`` or ``above_ground``; ``None`` when unknown."""
    return None if missing(value) else POSITION_NAMES.get(key(value))


def voltage_subtype(kv: float | None) -> str | None:
    """Low, medium or high voltage from kV."""
    if kv is None:
        return None
    return "low_voltage" if kv < 1 else "medium_voltage" if kv < 36 else "high_voltage"


def pressure_subtype(bar: float | None) -> str | None:
    """Low or high pressure from bar."""
    if bar is None:
        return None
    return "low_pressure" if bar < HIGH_PRESSURE_BAR else "high_pressure"


def derive_hazard(utility: str, sub: str | None, voltage_kv: float | None,
                  pressure_bar: float | None) -> str:  # fmt: skip
    """The documented hazard rule, for assets whose source gives no class.

    Examples
    --------
    >>> derive_hazard("electricity", None, 60.0, None)
    'very_dangerous'
    >>> derive_hazard("gas", "low_pressure", None, 4.0)
    'dangerous'
    >>> derive_hazard("telecom", "fibre", None, None)
    'not_dangerous'
    """
    if utility == "electricity":
        high = (voltage_kv or 0) >= HIGH_VOLTAGE_KV or sub == "high_voltage"
        return "very_dangerous" if high else "dangerous"
    if utility == "gas":
        high = (pressure_bar or 0) >= HIGH_PRESSURE_BAR or sub in ("high_pressure", "transmission")
        return "very_dangerous" if high else "dangerous"
    if utility == "oil_chemicals":
        return "very_dangerous"
    if utility in ("water", "sewer", "telecom"):
        return "not_dangerous"
    return "dangerous"


def positive(value: object, *, scale: float = 1.0) -> float | None:
    """A positive number times ``scale``; zero, negative, missing or unreadable is unknown."""
    if missing(value):
        return None
    try:
        number = float(str(value).replace(",", "."))
    except ValueError:
        return None
    return number * scale if number > 0 and math.isfinite(number) else None


def depth(value: object, *, source: str, record: str, field: str = "depth_m",
          scale: float = 1.0) -> float | None:  # fmt: skip
    """A depth in metres; the unknown sentinels are ``None``.

    Raises
    ------
    InvalidInput
        A depth that is not a number, or negative (other than a sentinel).
    """
    if missing(value):
        return None
    try:
        number = float(str(value).replace(",", "."))
    except ValueError:
        number = math.nan
    if number in UNKNOWN_DEPTHS:
        return None
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"{source}: field '{field}' value {value!r} is not a depth in metres "
                           "(a number >= 0; leave it empty when unknown)",
                           record=f"record {record}", field=field)  # fmt: skip
    return number * scale


def year(value: object) -> int | None:
    """The year of a date or year text; years up to 1900 are placeholders, so unknown."""
    if missing(value):
        return None
    match = re.match(r"\s*(\d{4})", str(value))
    if match is None:
        return None
    found = int(match.group(1))
    return found if found > 1900 else None


def finish(row: dict, *, source: str, record: str) -> dict:
    """Fill the derived columns of one asset row and check what must be there.

    Sets ``hazard_class``/``hazard_source`` by the rule where the row has no
    class, and the voltage or pressure subtype where the row has none.

    Raises
    ------
    InvalidInput
        No owner, or no asset id.
    """
    if missing(row.get("owner")):
        raise InvalidInput(
            f"{source}: the asset has no owner: the file does not name one for it; give the "
            "owning organisation with --owner ORG", record=f"record {record}", field="owner",
        )  # fmt: skip
    if missing(row.get("asset_id")):
        raise InvalidInput(f"{source}: the asset has no id", record=f"record {record}",
                           field="asset_id")  # fmt: skip
    row.setdefault("utility_type", "other")
    if missing(row.get("subtype")):
        if row["utility_type"] == "electricity":
            row["subtype"] = voltage_subtype(row.get("voltage_kv"))
        elif row["utility_type"] == "gas":
            row["subtype"] = pressure_subtype(row.get("pressure_bar"))
    if missing(row.get("hazard_class")):
        row["hazard_class"] = derive_hazard(row["utility_type"], row.get("subtype"),
                                            row.get("voltage_kv"), row.get("pressure_bar"))  # fmt: skip
        row["hazard_source"] = "rule"
    else:
        row.setdefault("hazard_source", "data")
    return row
