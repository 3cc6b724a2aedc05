"""The layers of the water family: their columns, keys and how to recognise them.

Each :class:`WaterKind` is one layer in schema ``data`` (open): its id, title,
description, geometry, the columns analyses rely on (with the source names
each accepts, see :mod:`ingest.field_map`), the natural key, and the words of
a layer or file name that identify it. Levels (inverts, rims, bed and water
levels) are metres DVR90.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.field_map import Field, columns_of, name_tokens
from ingest.spec import TableSpec
from layers.catalog import Layer

THEME = "water"
VERTICAL_DATUM = "DVR90"
#: Sewer systems and the names publishers use for them (Danish and English).
SYSTEMS: dict[str, str] = {
    **dict.fromkeys(("combined", "faelles", "faellessystem", "faelleskloak", "mixed", "fk"),
                    "combined"),
    **dict.fromkeys(("storm", "stormwater", "storm_water", "surface_water", "rain", "rainwater",
                     "regn", "regnvand", "rv", "drain"), "storm"),
    **dict.fromkeys(("foul", "sanitary", "sewage", "wastewater", "waste_water", "spildevand",
                     "sv", "separate_foul"), "foul"),
}  # fmt: skip


@dataclass(frozen=True)
class WaterKind:
    """One layer of the water family."""

    name: str
    title: str
    description: str
    geometry_type: str
    fields: tuple[Field, ...]
    keywords: tuple[str, ...]
    signature: tuple[str, ...] = ()

    @property
    def layer_id(self) -> str:
        return f"water_{self.name}"

    @property
    def key(self) -> str:
        return self.fields[0].name

    @property
    def shape(self) -> str:
        """``line``, ``polygon`` or ``point``."""
        base = self.geometry_type.removeprefix("Multi")
        return {"LineString": "line", "Polygon": "polygon", "Point": "point"}[base]

    def spec(self, *, owner: str | None, licence: str | None, attribution: str | None) -> TableSpec:
        """The target table of this kind."""
        layer = Layer(
            id=self.layer_id, title=self.title, description=self.description, theme=THEME,
            kind="vector", table_schema="data", table_name=self.layer_id,
            vertical_datum=VERTICAL_DATUM if self.name != "roads" else None,
            owner_org=owner, licence=licence or "unknown", attribution=attribution,
            keywords=["water", self.name.replace("_", " ")],
        )  # fmt: skip
        return TableSpec(layer=layer, columns=columns_of(self.fields),
                         geometry_type=self.geometry_type, key=(self.key,),
                         required=(self.key,))  # fmt: skip


def _f(name: str, pg_type: str, *aliases: str) -> Field:
    return Field(name, pg_type, aliases)


TEXT, REAL, INT = "text", "double precision", "integer"
KINDS: dict[str, WaterKind] = {
    k.name: k
    for k in (
        WaterKind(
            "streams",
            "Streams",
            "Stream and river centre lines in flow direction, with bed levels (m DVR90) "
            "where known.",
            "MultiLineString",
            (
                _f("stream_id", TEXT, "id", "vandloeb_id", "watercourse_id", "objectid"),
                _f("name", TEXT, "navn", "stream_name", "river_name"),
                _f("flows_to", TEXT, "outlet", "recipient"),
                _f("length_m", REAL, "length", "laengde"),
                _f("source_bed_level_m", REAL, "upstream_bed_level_m", "source_level_m"),
                _f("mouth_bed_level_m", REAL, "downstream_bed_level_m", "mouth_level_m"),
            ),
            (
                "stream",
                "streams",
                "river",
                "rivers",
                "watercourse",
                "watercourses",
                "waterway",
                "waterways",
                "vandloeb",
                "creek",
                "brook",
            ),
            ("source_bed_level_m", "mouth_bed_level_m"),
        ),
        WaterKind(
            "lakes",
            "Lakes",
            "Lake and pond outlines with their water level (m DVR90) where known.",
            "MultiPolygon",
            (
                _f("lake_id", TEXT, "id", "soe_id", "objectid"),
                _f("name", TEXT, "navn", "lake_name"),
                _f("water_level_m", REAL, "water_level", "level_m", "vandspejl"),
                _f("area_m2", REAL, "area"),
            ),
            (
                "lake",
                "lakes",
                "pond",
                "ponds",
                "soe",
                "soeer",
                "waterbody",
                "waterbodies",
                "vandflade",
            ),
            ("water_level_m",),
        ),
        WaterKind(
            "coastline",
            "Coastline",
            "The shoreline (0 m DVR90 where the source says so).",
            "MultiLineString",
            (
                _f("coastline_id", TEXT, "id", "objectid"),
                _f("level_m", REAL, "height_m"),
                _f("length_m", REAL, "length"),
            ),
            ("coast", "coastline", "coastlines", "shore", "shoreline", "kyst", "kystlinje"),
        ),
        WaterKind(
            "sewer_pipes",
            "Sewer pipes",
            "Gravity sewer pipes in flow direction: system (combined, storm or foul), "
            "diameter (mm), material, the manholes at either end and the invert levels "
            "(m DVR90) upstream and downstream.",
            "MultiLineString",
            (
                _f("pipe_id", TEXT, "id", "ledning_id", "ledningid", "conduit_id", "objectid"),
                _f("system", TEXT, "sewer_system", "system_type", "kloaktype"),
                _f("diameter_mm", REAL, "diameter", "dn", "dimension_mm", "dimension"),
                _f("material", TEXT, "materiale"),
                _f(
                    "upstream_manhole_id",
                    TEXT,
                    "from_manhole",
                    "from_node",
                    "us_node",
                    "fra_knude",
                    "upstream_node",
                ),
                _f(
                    "downstream_manhole_id",
                    TEXT,
                    "to_manhole",
                    "to_node",
                    "ds_node",
                    "til_knude",
                    "downstream_node",
                ),
                _f(
                    "upstream_invert_m",
                    REAL,
                    "upstream_invert",
                    "us_invert",
                    "invert_up",
                    "fra_bundkote",
                    "start_invert",
                ),
                _f(
                    "downstream_invert_m",
                    REAL,
                    "downstream_invert",
                    "ds_invert",
                    "invert_down",
                    "til_bundkote",
                    "end_invert",
                ),
                _f("length_m", REAL, "length", "laengde"),
                _f("installed_year", INT, "year", "anlaegsaar", "construction_year"),
            ),
            (
                "sewer",
                "sewers",
                "sewerage",
                "pipe",
                "pipes",
                "kloak",
                "kloakledning",
                "kloakledninger",
                "ledning",
                "ledninger",
                "conduit",
                "conduits",
            ),
            ("upstream_invert_m", "downstream_invert_m", "diameter_mm"),
        ),
        WaterKind(
            "manholes",
            "Manholes",
            "Sewer manholes, outfalls and pumping stations with rim and invert levels (m DVR90).",
            "MultiPoint",
            (
                _f("manhole_id", TEXT, "id", "broend_id", "node_id", "objectid"),
                _f("system", TEXT, "sewer_system", "system_type", "kloaktype"),
                _f("kind", TEXT, "type", "manhole_type", "node_type"),
                _f(
                    "rim_level_m",
                    REAL,
                    "rim_level",
                    "rim",
                    "cover_level",
                    "terraenkote",
                    "daekselkote",
                ),
                _f("invert_level_m", REAL, "invert_level", "invert", "bundkote"),
                _f("depth_m", REAL, "depth"),
            ),
            ("manhole", "manholes", "broend", "broende", "node", "nodes", "knude", "knuder"),
            ("rim_level_m",),
        ),
        WaterKind(
            "roads",
            "Road network",
            "Street centre lines. Roads belong to the water family because the street "
            "network carries surface runoff in a cloudburst, and it is the graph waste "
            "collection routes are planned on.",
            "MultiLineString",
            (
                _f("road_id", TEXT, "id", "vej_id", "objectid"),
                _f("name", TEXT, "navn", "street_name", "vejnavn"),
                _f("road_class", TEXT, "class", "highway", "vejklasse", "category"),
                _f("speed_kmh", REAL, "speed", "maxspeed", "max_speed"),
                _f("oneway", "boolean", "one_way", "ensrettet"),
                _f("surface", TEXT, "belaegning"),
            ),
            ("road", "roads", "street", "streets", "vej", "veje", "highway", "highways", "roadway"),
            ("road_class", "speed_kmh"),
        ),
    )
}
#: Words that mark another family's data, and the family to use instead.
OTHER_FAMILIES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("build", "building", "buildings", "bygning", "bygninger", "house",
                     "houses"), ("buildings", "energy")),
    **dict.fromkeys(("bin", "bins", "container", "containers", "litter"), ("bins", "waste")),
    **dict.fromkeys(("cable", "cables", "utility", "utilities", "ler", "imkl"),
                    ("utility networks", "utilities")),
}  # fmt: skip


def kind_by_name(name: str, shape: str | None) -> str | None:
    """The kind a layer or file name names, or ``None``.

    A name naming two kinds names none. The weak word ``water`` names lakes
    only for polygons (``dhmqc_water_1km`` is a lake layer).
    """
    tokens = set(name_tokens(name))
    found = {k.name for k in KINDS.values() if tokens & set(k.keywords)}
    if len(found) == 1:
        return found.pop()
    if not found and shape == "polygon" and tokens & {"water", "vand"}:
        return "lakes"
    return None


def other_family(name: str) -> tuple[str, str] | None:
    """``(what, family)`` where a name marks another family's data."""
    for token in name_tokens(name):
        for word, hit in OTHER_FAMILIES.items():
            if token == word or (len(word) > 4 and token.startswith(word)):
                return hit
    return None


def normal_system(value: object) -> str | None:
    """A sewer system as ``combined``, ``storm`` or ``foul``; ``None`` where not one."""
    key = "_".join(name_tokens(str(value)))
    return SYSTEMS.get(key)
