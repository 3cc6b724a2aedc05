"""The fixed plan of the fictional town of Egevig.

Everything here is in *local* metres ``(u, v)`` east and north of the sample's
south-west corner (``ORIGIN_E``, ``ORIGIN_N`` in EPSG:25832). The plan is the
same for every seed and every size: the seed varies the details (random
terrain, meanders, attributes), never where the harbour or the town is, so
every sample has the features that flood, dig and waste analytics look for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

TOWN_NAME = "Egevig"
MUNICIPALITY = "Egevig Kommune"
POSTCODE = "4699"
CRS = "EPSG:25832"
VERTICAL_DATUM = "DVR90"
ORIGIN_E = 720_000
ORIGIN_N = 6_170_000
EXTENT_M = 4_000
TILE_M = 1_000
YEAR = 2023  # the calendar year of every time series

RESOLUTIONS = {"small": 4.0, "medium": 1.6, "large": 0.5}

BEACH_WIDTH_M = 45.0
LOW_ZONE_WIDTH_M = 650.0
SEA_FLOOR_M = -6.2
HARBOUR_FLOOR_M = -4.0
QUAY_LEVEL_M = 2.0
DIKE_CREST_M = 3.8


def coast_u(v: np.ndarray | float) -> np.ndarray:
    """Local easting of the shoreline (height 0 m) at local northing ``v``."""
    v = np.asarray(v, dtype=np.float64)
    return (
        3230.0
        + 60.0 * np.sin(2.0 * np.pi * v / 3100.0 + 0.6)
        + 22.0 * np.sin(2.0 * np.pi * v / 1150.0 + 2.1)
    )


@dataclass(frozen=True)
class Bowl:
    """A designed closed depression (bluespot): centre, radius, extra depth."""

    u: float
    v: float
    radius: float
    depth: float


@dataclass(frozen=True)
class BowlGroup:
    """Bowls levelled to one common rim so that nested ones merge as they fill."""

    name: str
    u: float
    v: float
    level_radius: float
    bowls: tuple[Bowl, ...]


BOWL_GROUPS: tuple[BowlGroup, ...] = (
    BowlGroup(
        "old_town",
        2600.0,
        2330.0,
        210.0,
        (
            Bowl(2600.0, 2330.0, 140.0, 0.45),
            Bowl(2555.0, 2305.0, 35.0, 0.9),
            Bowl(2660.0, 2360.0, 30.0, 0.7),
        ),
    ),
    BowlGroup(
        "vestbyen",
        1860.0,
        2000.0,
        150.0,
        (Bowl(1805.0, 2000.0, 70.0, 1.2), Bowl(1915.0, 2010.0, 60.0, 0.9)),
    ),
    BowlGroup("lergraven", 2100.0, 2640.0, 150.0, (Bowl(2100.0, 2640.0, 90.0, 1.8),)),
    BowlGroup("industri", 2330.0, 1700.0, 110.0, (Bowl(2330.0, 1700.0, 50.0, 0.5),)),
    BowlGroup("skolen", 1650.0, 2480.0, 80.0, (Bowl(1650.0, 2480.0, 28.0, 0.35),)),
    BowlGroup("strandparken", 2930.0, 3330.0, 140.0, (Bowl(2930.0, 3330.0, 80.0, 0.6),)),
)


@dataclass(frozen=True)
class Lake:
    """An elliptic lake; its surface is flat in the DEM, as in the Danish DHM."""

    name: str
    u: float
    v: float
    a: float
    b: float


LAKES = (
    Lake("Egesø", 640.0, 3330.0, 150.0, 95.0),
    Lake("Mosegårds Sø", 1320.0, 560.0, 85.0, 60.0),
)


@dataclass(frozen=True)
class StreamPlan:
    """Control points of a stream from source (first) to the sea (last)."""

    name: str
    points: tuple[tuple[float, float], ...]
    lake: str | None = None


STREAMS = (
    StreamPlan(
        "Egeåen",
        (
            (790.0, 3320.0),
            (1100.0, 3250.0),
            (1500.0, 3130.0),
            (1900.0, 3090.0),
            (2300.0, 3010.0),
            (2700.0, 2975.0),
            (3050.0, 2955.0),
            (3600.0, 2950.0),
        ),
        lake="Egesø",
    ),
    StreamPlan(
        "Ravnsbæk",
        (
            (450.0, 880.0),
            (900.0, 1020.0),
            (1450.0, 1140.0),
            (2000.0, 1240.0),
            (2450.0, 1300.0),
            (2850.0, 1320.0),
            (3700.0, 1330.0),
        ),
    ),
)

# The polder: a reclaimed coastal meadow behind a ring dike. It lies lower than
# the low coastal zone around it, so a bathtub model floods it at +1 m while the
# connected model keeps it dry until the sea tops the dike.
POLDER_CENTRE = (2940.0, 700.0)
POLDER_AXES = (250.0, 360.0)
POLDER_LEVEL_M = 0.55

# Harbour basin and quays (rectangles, local metres).
HARBOUR_BASIN = (2980.0, 2060.0, 3450.0, 2200.0)
HARBOUR_QUAY = (2895.0, 1990.0, 3215.0, 2275.0)
HARBOUR_MOLE = (3190.0, 2245.0, 3370.0, 2262.0)


@dataclass(frozen=True)
class Zone:
    """A built-up zone: its outline, street grid and building style."""

    name: str
    outline: Polygon
    angle_deg: float
    spacing: tuple[float, float]
    style: str


def _coastal_box(u0: float, v0: float, v1: float, margin: float) -> Polygon:
    vs = np.linspace(v0, v1, 40)
    east = coast_u(vs) - margin
    return Polygon([(u0, v0), *zip(east, vs, strict=True), (u0, v1)])


def zones() -> tuple[Zone, ...]:
    """The built-up zones of Egevig, each with its grid and building style."""
    quay = box(*HARBOUR_QUAY).buffer(15.0)
    return (
        Zone(
            "gamle_by",
            box(2380.0, 1960.0, 2960.0, 2640.0).difference(quay),
            8.0,
            (85.0, 135.0),
            "old_town",
        ),
        Zone(
            "vestbyen",
            box(1500.0, 1560.0, 2380.0, 2930.0),
            20.0,
            (88.0, 180.0),
            "suburb",
        ),
        Zone(
            "strandparken",
            _coastal_box(2560.0, 3070.0, 3800.0, 60.0),
            0.0,
            (72.0, 210.0),
            "summer",
        ),
        Zone(
            "kystvejen",
            _coastal_box(2450.0, 2660.0, 2880.0, 60.0),
            0.0,
            (72.0, 210.0),
            "summer",
        ),
        Zone(
            "erhvervsparken",
            box(2400.0, 1470.0, 3060.0, 1930.0),
            0.0,
            (150.0, 240.0),
            "industrial",
        ),
    )


# Heating: district heating pipes run in the DH area, gas mains in the gas
# area; buildings elsewhere heat themselves. Shares are illustrative.
HEAT_MIX = {
    "district_heating_area": {"district_heating": 0.88, "heat_pump": 0.07, "electric": 0.05},
    "gas_area": {
        "natural_gas": 0.7,
        "heat_pump": 0.18,
        "oil": 0.06,
        "biomass": 0.03,
        "electric": 0.03,
    },
    "summer": {"electric": 0.55, "heat_pump": 0.4, "oil": 0.05},
    "rural": {"oil": 0.3, "heat_pump": 0.4, "biomass": 0.25, "electric": 0.05},
}


def district_heating_area() -> Polygon:
    """Where the district-heating company has distribution pipes."""
    by_name = {z.name: z.outline for z in zones()}
    return unary_union(
        [by_name["gamle_by"], by_name["erhvervsparken"], box(1900.0, 1560.0, 2380.0, 2930.0)]
    ).buffer(20.0)


def gas_area() -> Polygon:
    """Where the gas distributor has low-pressure mains."""
    return box(1500.0, 1560.0, 1900.0, 2930.0).buffer(20.0)


# Arterial roads: (name, class, polyline). The motorway is drawn as two
# one-way carriageways; its junction with the primary road is at grade.
ARTERIALS: tuple[tuple[str, str, tuple[tuple[float, float], ...]], ...] = (
    ("Kystmotorvejen", "motorway", ((238.0, 0.0), (246.0, 2000.0), (262.0, 4000.0))),
    ("Kystmotorvejen", "motorway", ((292.0, 4000.0), (276.0, 2000.0), (268.0, 0.0))),
    (
        "Egevigvej",
        "primary",
        ((0.0, 2140.0), (600.0, 2160.0), (1000.0, 2180.0), (1500.0, 2195.0), (2380.0, 2205.0)),
    ),
    (
        "Strandvejen",
        "primary",
        (
            (2450.0, 0.0),
            (2470.0, 700.0),
            (2475.0, 1440.0),
            (2420.0, 1960.0),
            (2440.0, 2640.0),
            (2600.0, 3200.0),
            (2690.0, 4000.0),
        ),
    ),
    (
        "Nordre Landevej",
        "secondary",
        ((2380.0, 2205.0), (1800.0, 3100.0), (1200.0, 3700.0), (950.0, 4000.0)),
    ),
    (
        "Søndre Landevej",
        "secondary",
        ((1500.0, 2195.0), (1200.0, 1500.0), (900.0, 700.0), (700.0, 0.0)),
    ),
    (
        "Mosevej",
        "secondary",
        ((1000.0, 2180.0), (1080.0, 2800.0), (1300.0, 3600.0), (1340.0, 4000.0)),
    ),
    ("Havnevej", "secondary", ((2380.0, 2205.0), (2895.0, 2140.0))),
)

# Farmsteads in the open land and one inside the polder.
FARMS: tuple[tuple[float, float], ...] = (
    (520.0, 450.0),
    (640.0, 1600.0),
    (1100.0, 260.0),
    (1750.0, 620.0),
    (1650.0, 1300.0),
    (2150.0, 420.0),
    (560.0, 2600.0),
    (620.0, 3750.0),
    (1500.0, 3800.0),
    (1900.0, 3560.0),
    (2200.0, 3850.0),
    (780.0, 2950.0),
    (1300.0, 1850.0),
    (2000.0, 900.0),
    POLDER_CENTRE,
)

# Public buildings: (name, use detail, anchor u, anchor v, length, depth, storeys)
PUBLIC_BUILDINGS = (
    ("Egevig Rådhus", "town_hall", 2700.0, 2200.0, 42.0, 16.0, 3),
    ("Egevig Skole", "school", 1700.0, 2420.0, 70.0, 22.0, 2),
    ("Vestbyens Børnehus", "kindergarten", 2050.0, 1750.0, 30.0, 14.0, 1),
    ("Egevig Kirke", "church", 2520.0, 2520.0, 34.0, 12.0, 1),
    ("Egevig Bibliotek", "library", 2470.0, 2060.0, 28.0, 18.0, 2),
    ("Egevig Hallen", "sports_hall", 1950.0, 2550.0, 48.0, 30.0, 1),
    ("Plejecenter Egely", "nursing_home", 2250.0, 2350.0, 55.0, 14.0, 2),
    ("Egevig Brandstation", "fire_station", 2600.0, 1560.0, 30.0, 18.0, 1),
)

# Point facilities of the utilities and the waste service (local metres).
WASTEWATER_PLANT = (2990.0, 1395.0)
WATERWORKS = (1150.0, 2620.0)
HEAT_PLANT = (2870.0, 1880.0)
MAIN_SUBSTATION = (2560.0, 1500.0)
GAS_MR_STATION = (1520.0, 1600.0)
WASTE_DEPOT = (2740.0, 1560.0)
DISPOSAL_SITES = (
    ("Kystens Forbrændingsanlæg", ("residual", "street_litter"), 420.0, 1180.0),
    ("Egevig Genbrugscenter", ("paper", "plastic", "glass", "metal", "textile"), 2900.0, 1700.0),
    ("Biogas Egevig", ("organic",), 700.0, 2950.0),
)


def land_outline(margin: float = 0.0) -> Polygon:
    """Land inside the extent west of the shoreline minus ``margin`` metres."""
    vs = np.linspace(0.0, EXTENT_M, 201)
    east = coast_u(vs) - margin
    return Polygon([(0.0, 0.0), *zip(east, vs, strict=True), (0.0, float(EXTENT_M))])


def polder_outline(extra: float = 0.0, n: int = 96) -> Polygon:
    """The polder ellipse, grown by ``extra`` metres along each radius."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    a, b = POLDER_AXES
    cu, cv = POLDER_CENTRE
    r = 1.0 / np.sqrt((np.cos(t) / a) ** 2 + (np.sin(t) / b) ** 2) + extra
    return Polygon(np.column_stack([cu + r * np.cos(t), cv + r * np.sin(t)]))


def lake_outline(lake: Lake, n: int = 72) -> Polygon:
    """The shoreline of ``lake`` as a polygon."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return Polygon(np.column_stack([lake.u + lake.a * np.cos(t), lake.v + lake.b * np.sin(t)]))
