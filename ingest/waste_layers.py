"""The layers of the waste family: columns, keys, and the fraction vocabulary.

Six open layers in schema ``data``: bins (points), recycling stations
(points), facilities (depots and disposal sites, points), the fleet, sensor
readings and collections (tables). Columns list the source names they accept
(see :mod:`ingest.field_map`); fill levels are fractions 0-1.

Fractions are normalised to :data:`FRACTIONS`; publishers' words in English,
Danish and the FIWARE ``storedWasteKind`` enumeration are understood
(:data:`FRACTION_WORDS`). ``mixed`` alone means unsorted general waste
(``residual``); ``mixed recycling`` means commingled recyclables.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.field_map import Field, columns_of, name_tokens
from ingest.spec import TableSpec
from layers.catalog import Layer

THEME = "waste"
FRACTIONS: tuple[str, ...] = (
    "residual", "paper", "cardboard", "plastic", "glass", "metal", "organic", "textile",
    "hazardous", "electronics", "mixed_recycling", "litter", "other",
)  # fmt: skip
FRACTION_WORDS: dict[str, str] = {
    **{f: f for f in FRACTIONS},
    **dict.fromkeys(("rest", "restaffald", "dagrenovation", "general", "general_waste",
                     "household", "household_waste", "mixed", "mixed_waste", "inorganic",
                     "refuse", "black_bag", "municipal", "unsorted"), "residual"),
    **dict.fromkeys(("papir", "newspaper", "newspapers", "papir_og_pap"), "paper"),
    **dict.fromkeys(("pap", "karton", "carton", "cartons"), "cardboard"),
    **dict.fromkeys(("plast", "plastik", "plastics", "packaging"), "plastic"),
    **dict.fromkeys(("glas", "bottles", "bottle"), "glass"),
    **dict.fromkeys(("metals", "cans", "tins", "tin", "metal_cans"), "metal"),
    **dict.fromkeys(("bio", "biowaste", "bio_waste", "food", "food_waste", "madaffald", "mad",
                     "compost", "kitchen", "garden", "garden_waste", "haveaffald"), "organic"),
    **dict.fromkeys(("textiles", "tekstil", "tekstiler", "clothes", "clothing"), "textile"),
    **dict.fromkeys(("farligt_affald", "oil", "batteries", "battery", "chemicals",
                     "hazardous_waste"), "hazardous"),
    **dict.fromkeys(("weee", "elektronik", "electronic", "e_waste", "ewaste"), "electronics"),
    **dict.fromkeys(("recycling", "recyclables", "dry_recycling", "commingled", "comingled",
                     "mixed_recyclables", "plast_og_metal", "plastic_metal"), "mixed_recycling"),
    **dict.fromkeys(("street_litter", "litter_bin", "litter_bins", "street"), "litter"),
}  # fmt: skip


def normal_fraction(value: object) -> str | None:
    """A fraction in the vocabulary, or ``None`` where ``value`` names none."""
    key = "_".join(name_tokens(str(value)))
    return FRACTION_WORDS.get(key)


def normal_fractions(value: object) -> str | None:
    """A comma list of fractions normalised (``glass,paper`` stays, ``glas;papir`` too)."""
    parts = [p for p in str(value).replace(";", ",").split(",") if p.strip()]
    found = [normal_fraction(p) for p in parts]
    return None if not found or None in found else ",".join(dict.fromkeys(found))


def fraction_in_name(name: str) -> str | None:
    """A fraction named by a file name (``edinburgh_litter-bins`` -> ``litter``)."""
    for token in name_tokens(name):
        if token in FRACTION_WORDS and token not in ("street", "mixed", "general"):
            return FRACTION_WORDS[token]
    return None


def _f(name: str, pg_type: str, *aliases: str) -> Field:
    return Field(name, pg_type, aliases)


TEXT, REAL, INT, BOOL, TIME = "text", "double precision", "integer", "boolean", "timestamptz"
BIN_ID = ("bin", "binid", "container_id", "containerid", "sensor_bin_id", "site", "site_id")
BINS = (
    _f("bin_id", TEXT, "id", "binid", "container_id", "containerid", "asset_id", "bin_no"),
    _f("fraction", TEXT, "waste_type", "waste_kind", "storedwastekind", "stored_waste_kind",
       "content_type_name", "content_type", "fraktion", "affaldstype"),
    _f("capacity_l", REAL, "capacity", "bincapacity", "bin_capacity", "volume_l", "volume",
       "size_l"),
    _f("bin_type", TEXT, "container_type", "category", "bin_kind", "kind"),
    _f("model", TEXT, "type", "bin_model", "product"),
    _f("site_id", TEXT, "site", "station_id", "isleid", "isle_id"),
    _f("name", TEXT, "navn", "title"),
    _f("address", TEXT, "adresse", "street_address", "streetaddress"),
    _f("description", TEXT, "location", "placement", "location_description", "note"),
)  # fmt: skip
STATIONS = (
    _f("site_id", TEXT, "id", "station_id", "station"),
    _f("name", TEXT, "navn", "title"),
    _f("address", TEXT, "adresse", "street_address"),
    _f("fractions", TEXT, "fraction", "waste_types", "fraktioner"),
    _f("n_containers", INT, "containers", "container_count", "count"),
)  # fmt: skip
FACILITIES = (
    _f("facility_id", TEXT, "id", "site_id"),
    _f("kind", TEXT, "type", "facility_type", "category"),
    _f("name", TEXT, "navn", "title"),
    _f("accepts", TEXT, "fractions", "accepted", "waste_types"),
)  # fmt: skip
FLEET = (
    _f("truck_id", TEXT, "id", "vehicle_id", "vehicle", "truck"),
    _f("fraction", TEXT, "waste_type", "fraktion"),
    _f("capacity_kg", REAL, "payload_kg", "max_load_kg", "capacity"),
    _f("capacity_m3", REAL, "volume_m3", "body_volume_m3"),
    _f("body_type", TEXT, "body", "type"),
    _f("depot_id", TEXT, "depot"),
)  # fmt: skip
READINGS = (
    _f("bin_id", TEXT, *BIN_ID),
    _f("time", TIME, "timestamp", "observed_at", "observedat", "dateobserved", "date_observed",
       "datetime", "date_time", "measured_at", "reading_time"),
    _f("fill_level", REAL, "fillinglevel", "filling_level", "fill", "level", "fill_pct",
       "fill_percent", "fill_level_pct", "fill_level_percent", "fullness"),
    _f("fill_level_reported", REAL),
    _f("temperature_c", REAL, "temperature", "temp", "temp_c", "temperature_degc"),
    _f("battery_v", REAL, "battery", "battery_voltage", "batt_v", "voltage"),
    _f("fire_flag", BOOL, "fire", "fire_alarm", "fire_alert"),
    _f("tilt_flag", BOOL, "tilt", "tilted", "tilt_alarm"),
    _f("quality", TEXT),
)  # fmt: skip
COLLECTIONS = (
    _f("bin_id", TEXT, *BIN_ID),
    _f("time", TIME, "timestamp", "collected_at", "collection_time", "date_time_of_bin_collection",
       "date_time_of_collection", "datetime", "date_time", "emptied_at"),
    _f("collection_id", TEXT, "id", "event_id", "collection"),
    _f("fill_before", REAL, "fill_level_before_collection", "fill_level_before", "fill_pct_before",
       "fill_before_pct"),
    _f("fill_after", REAL, "fill_level_after", "fill_level_after_collection"),
    _f("volume_l", REAL, "volume", "volume_litres", "volume_liters", "volume_litres3"),
    _f("weight_kg", REAL, "weight", "net_weight_kg", "load_kg"),
    _f("truck_id", TEXT, "truck", "vehicle_id", "vehicle"),
    _f("fraction", TEXT, "waste_type", "content_type_name", "content_type", "fraktion"),
)  # fmt: skip


@dataclass(frozen=True)
class WasteKind:
    """One layer of the waste family."""

    name: str
    title: str
    description: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    geometry_type: str | None = None
    properties: bool = True

    @property
    def layer_id(self) -> str:
        return f"waste_{self.name}"

    def spec(self, options) -> TableSpec:
        """The target table, described for the catalog from the load's options."""
        layer = Layer(
            id=self.layer_id, title=self.title, description=self.description, theme=THEME,
            kind="vector" if self.geometry_type else "table", table_schema="data",
            table_name=self.layer_id, owner_org=options.owner,
            licence=options.licence or options.extra.get("licence") or "unknown",
            attribution=options.extra.get("attribution"), access="open",
            keywords=["waste", self.name.replace("_", " ")],
        )  # fmt: skip
        return TableSpec(
            layer=layer, columns=columns_of(self.fields, properties=self.properties),
            geometry_type=self.geometry_type, key=self.key, required=self.key,
            indexes=("time",) if "time" in self.key else (),
        )  # fmt: skip


KINDS: dict[str, WasteKind] = {
    k.name: k
    for k in (
        WasteKind(
            "bins",
            "Waste bins and containers",
            "Bins, underground containers and street litter bins with their fraction "
            f"({', '.join(FRACTIONS)}), capacity (litres) and type.",
            BINS,
            ("bin_id",),
            "MultiPoint",
        ),
        WasteKind(
            "recycling_stations",
            "Recycling stations",
            "Drop-off points with containers for several fractions.",
            STATIONS,
            ("site_id",),
            "MultiPoint",
        ),
        WasteKind(
            "facilities",
            "Waste facilities",
            "Depots and disposal sites: the start, end and unloading points of collection routes.",
            FACILITIES,
            ("facility_id",),
            "MultiPoint",
        ),
        WasteKind(
            "fleet",
            "Collection fleet",
            "Collection trucks with fraction, capacity (kg and m3), body and depot.",
            FLEET,
            ("truck_id",),
        ),
        WasteKind(
            "readings",
            "Bin sensor readings",
            "Fill-level sensor readings: fill level 0-1 (clamped; as reported in "
            "fill_level_reported), temperature, battery and fire/tilt flags, UTC.",
            READINGS,
            ("bin_id", "time"),
            properties=False,
        ),
        WasteKind(
            "collections",
            "Bin collections",
            "Emptyings of bins: fill level before and after (0-1), volume (litres), "
            "weight (kg) and truck, UTC.",
            COLLECTIONS,
            ("bin_id", "time"),
        ),
    )
}
