"""Buried utility networks of the sample town, one set per owner.

Seven fictional owners run electricity (0.4, 10 and 60 kV plus the
municipality's street lighting), gas (4 and 19 bar), water, sewers, district
heating, fibre and copper telecom. Lines follow the roads at a fixed offset
from the centre line per network (so networks lie side by side under the
verge, pavement and carriageway); trunk lines (60 kV, 19 bar gas, water and
heat transmission, fibre backbone) follow the shortest road route between
their plant and the town. Points are plants, substations, cabinets, valves,
hydrants and the sewer manholes.

Attributes that are often unknown in real registers are unknown here too:
``depth_m`` is null for a share of every network (more for old copper and
lighting cables, fewer for recent gas and sewers with surveyed inverts), and
``accuracy_class`` is null for a few. Hazard classes follow the type:
60 kV and 19 bar gas are ``very_dangerous``; 10 kV, 0.4 kV, street lighting,
4 bar gas and district heating are ``dangerous``; water, sewer, fibre and
copper are ``not_dangerous`` (illustrative; the owner decides in LER).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, Point

from ingest.sample import plan
from ingest.sample.roads import Roads
from ingest.sample.routes import UtilityRoutes
from ingest.sample.seeding import rng_for, uuids
from ingest.sample.sewers import Sewers

logger = logging.getLogger(__name__)

HAZARD_CLASSES = ("not_dangerous", "dangerous", "very_dangerous")
ACCURACY_CLASSES = ("0.25", "0.5", "1", "2", ">2")


@dataclass(frozen=True)
class Owner:
    """A network owner and where excavators send dig notifications."""

    slug: str
    name: str
    email: str
    phone: str


OWNERS = (
    Owner(
        "egevig-forsyning",
        "Egevig Forsyning A/S",
        "ler@egevig-forsyning.example",
        "+45 70 11 22 33",
    ),
    Owner(
        "kystnet-el", "Kystnet El A/S", "graveforespoergsel@kystnet-el.example", "+45 70 44 55 66"
    ),
    Owner(
        "ostkyst-gas", "Østkyst Gasdistribution A/S", "ler@ostkyst-gas.example", "+45 70 77 88 99"
    ),
    Owner(
        "egevig-fjernvarme",
        "Egevig Fjernvarme A.m.b.A.",
        "drift@egevig-fjernvarme.example",
        "+45 56 12 34 56",
    ),
    Owner("nordfiber", "NordFiber ApS", "ler@nordfiber.example", "+45 70 20 30 40"),
    Owner(
        "telekabel-ost", "Telekabel Øst A/S", "kabelvagt@telekabel-ost.example", "+45 70 21 31 41"
    ),
    Owner(
        "egevig-kommune",
        "Egevig Kommune, Vej og Park",
        "vejogpark@egevig-kommune.example",
        "+45 56 00 00 00",
    ),
)


@dataclass(frozen=True)
class _Spec:
    """One line network: who owns it, where it runs and what it is made of."""

    owner: str
    utility_type: str
    subtype: str
    route: str
    hazard: str
    offset: float
    diameters: tuple[int, ...]
    materials: tuple[str, ...]
    years: tuple[int, int]
    depth: tuple[float, float]
    unknown_depth: float
    voltage_kv: float | None = None
    pressure_bar: float | None = None
    abandoned: float = 0.03


_SPECS = (
    _Spec("egevig-forsyning", "water", "distribution", "town", "not_dangerous", 2.5, (110, 160, 200), ("PE", "PVC", "cast_iron"), (1955, 2022), (1.2, 1.6), 0.35),
    _Spec("egevig-forsyning", "water", "transmission", "path:waterworks", "not_dangerous", 2.5, (315, 400), ("ductile_iron", "PE"), (1968, 2005), (1.4, 1.9), 0.15),
    _Spec("kystnet-el", "electricity", "low_voltage", "town+farms", "dangerous", 3.5, (42, 55, 63), ("PEX/Al", "PVC/Cu"), (1960, 2023), (0.5, 0.8), 0.3, voltage_kv=0.4),
    _Spec("kystnet-el", "electricity", "medium_voltage", "path:substations", "dangerous", -3.5, (63, 75), ("PEX/Al",), (1970, 2022), (0.7, 1.0), 0.25, voltage_kv=10.0),
    _Spec("kystnet-el", "electricity", "high_voltage", "path:hv", "very_dangerous", 4.2, (110,), ("PEX/Al",), (1985, 2015), (1.0, 1.4), 0.05, voltage_kv=60.0, abandoned=0.0),
    _Spec("egevig-kommune", "electricity", "street_lighting", "lighting", "dangerous", -4.6, (25, 32), ("PVC/Cu", "PEX/Cu"), (1965, 2022), (0.3, 0.6), 0.6, voltage_kv=0.4),
    _Spec("ostkyst-gas", "gas", "low_pressure", "gas", "dangerous", -2.5, (63, 90, 110), ("PE",), (1985, 2012), (0.6, 1.0), 0.2, pressure_bar=4.0),
    _Spec("ostkyst-gas", "gas", "high_pressure", "path:gas", "very_dangerous", -2.5, (168, 219), ("steel",), (1982, 1995), (1.0, 1.5), 0.0, pressure_bar=19.0, abandoned=0.0),
    _Spec("egevig-fjernvarme", "district_heating", "distribution", "dh", "dangerous", 1.2, (125, 160, 225), ("steel_preinsulated",), (1970, 2022), (0.6, 1.0), 0.2),
    _Spec("egevig-fjernvarme", "district_heating", "transmission", "path:heat", "dangerous", 1.2, (400, 500), ("steel_preinsulated",), (1980, 2000), (0.8, 1.2), 0.08, abandoned=0.0),
    _Spec("nordfiber", "fibre", "distribution", "town+farms", "not_dangerous", -3.0, (32, 40, 50), ("PE_duct",), (2008, 2024), (0.3, 0.6), 0.4),
    _Spec("nordfiber", "fibre", "backbone", "path:backbone", "not_dangerous", -3.0, (50,), ("PE_duct",), (2006, 2012), (0.6, 0.9), 0.2, abandoned=0.0),
    _Spec("telekabel-ost", "telecom", "copper", "copper", "not_dangerous", 3.0, (20, 30, 50), ("PE/Cu", "lead/Cu"), (1950, 1998), (0.4, 0.7), 0.6, abandoned=0.15),
)  # fmt: skip


def _offset(line: LineString, d: float) -> list[LineString]:
    shifted = shapely.offset_curve(line, d, join_style="mitre", mitre_limit=2.0)
    return [g for g in getattr(shifted, "geoms", [shifted]) if g.length > 1.0]


def _accuracy(rng: np.random.Generator, year: int) -> str | None:
    if rng.random() < 0.08:
        return None
    p = [0.45, 0.35, 0.15, 0.04, 0.01] if year >= 2000 else [0.1, 0.3, 0.35, 0.17, 0.08]
    return ACCURACY_CLASSES[int(rng.choice(5, p=p))]


def _status(rng: np.random.Generator, spec: _Spec) -> tuple[str, int]:
    year = int(rng.integers(spec.years[0], spec.years[1] + 1))
    r = rng.random()
    if r < spec.abandoned:
        return "abandoned", year
    if r < spec.abandoned + 0.03:
        return "planned", int(rng.integers(2025, 2027))
    return "in_service", year


def _line_rows(spec: _Spec, routes: UtilityRoutes, rng: np.random.Generator) -> list[dict]:
    rows = []
    for line in routes.lines(spec.route):
        for geom in _offset(line, spec.offset):
            status, year = _status(rng, spec)
            depth = (
                None
                if rng.random() < spec.unknown_depth
                else round(float(rng.uniform(*spec.depth)), 2)
            )
            rows.append(
                {
                    "utility_type": spec.utility_type,
                    "subtype": spec.subtype,
                    "voltage_kv": spec.voltage_kv,
                    "pressure_bar": spec.pressure_bar,
                    "hazard_class": spec.hazard,
                    "depth_m": depth,
                    "accuracy_class": _accuracy(rng, year),
                    "diameter_mm": int(rng.choice(spec.diameters)),
                    "material": str(rng.choice(spec.materials)),
                    "installed_year": year,
                    "status": status,
                    "level": "underground",
                    "geometry": geom,
                }
            )
    return rows


def _sewer_rows(sewers: Sewers, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    lines, points = [], []
    rims = dict(zip(sewers.manholes["manhole_id"], sewers.manholes["rim_level_m"], strict=True))
    for p in sewers.pipes.itertuples():
        # The register lacks depths for part of the network, the old combined
        # sewers most; the hydraulic model in water.gpkg has all inverts.
        unknown = rng.random() < (0.3 if p.system == "combined" else 0.1)
        up = rims[p.upstream_manhole_id] - p.upstream_invert_m
        down = rims[p.downstream_manhole_id] - p.downstream_invert_m
        cover = (up + down) / 2.0 - p.diameter_mm / 1000.0
        lines.append(
            {
                "asset_id": p.pipe_id,
                "utility_type": "sewer",
                "subtype": p.system,
                "voltage_kv": None,
                "pressure_bar": None,
                "hazard_class": "not_dangerous",
                "depth_m": None if unknown else round(cover, 2),
                "accuracy_class": _accuracy(rng, p.installed_year),
                "diameter_mm": p.diameter_mm,
                "material": p.material,
                "installed_year": p.installed_year,
                "status": "in_service",
                "level": "underground",
                "geometry": p.geometry,
            }
        )
    for m in sewers.manholes.itertuples():
        year = 1900 + int(rng.integers(60, 120))
        points.append(
            _point(
                rng,
                m.geometry,
                year,
                asset_id=m.manhole_id,
                utility_type="sewer",
                subtype=m.kind,
                hazard_class="not_dangerous",
                depth_m=round(m.depth_m, 2),
                material="concrete",
                level="underground",
            )
        )
    return lines, points


def _point(rng: np.random.Generator, geom: Point, year: int, **fields: object) -> dict:
    """A point asset in service; ``fields`` give type, subtype, hazard, material."""
    row = {"asset_id": None, "depth_m": None, "level": "above_ground", **fields}
    row.update(
        accuracy_class=_accuracy(rng, year),
        installed_year=min(year, 2024),
        status="in_service",
        geometry=geom,
    )
    return row


_POINTS_ON_LINES = {
    ("water", "distribution"): ("valve", 0.4, "cast_iron"),
    ("electricity", "low_voltage"): ("cable_cabinet", 0.35, "steel"),
    ("electricity", "street_lighting"): ("lighting_cabinet", 0.12, "steel"),
    ("gas", "low_pressure"): ("valve", 0.3, "steel"),
    ("district_heating", "distribution"): ("valve", 0.35, "steel"),
    ("fibre", "distribution"): ("fibre_cabinet", 0.2, "steel"),
    ("telecom", "copper"): ("distribution_box", 0.25, "steel"),
}


def _points_on_lines(lines: list[dict], rng: np.random.Generator) -> list[dict]:
    """Valves, cabinets and boxes at the start of some lines; hydrants along water mains."""
    out = []
    for row in lines:
        key = (row["utility_type"], row["subtype"])
        if key not in _POINTS_ON_LINES:
            continue
        kind, share, material = _POINTS_ON_LINES[key]
        year, geom = row["installed_year"], row["geometry"]
        if rng.random() < share:
            under = kind == "valve"
            fields = {
                "utility_type": row["utility_type"],
                "subtype": kind,
                "hazard_class": row["hazard_class"],
                "material": material,
            }
            if under:
                fields.update(depth_m=row["depth_m"], level="underground")
            out.append(_point(rng, shapely.get_point(geom, 0), year, **fields))
        if key == ("water", "distribution"):
            hydrant = {
                "utility_type": "water",
                "subtype": "hydrant",
                "hazard_class": "not_dangerous",
                "material": "cast_iron",
            }
            out += [
                _point(rng, geom.interpolate(s), year, **hydrant)
                for s in np.arange(60.0, geom.length, 150.0)
            ]
    return out


_PLANTS = (
    ("egevig-forsyning", "water", "waterworks", "not_dangerous", "concrete", 1972, plan.WATERWORKS),
    (
        "kystnet-el",
        "electricity",
        "main_substation",
        "very_dangerous",
        "concrete",
        1988,
        plan.MAIN_SUBSTATION,
    ),
    ("ostkyst-gas", "gas", "mr_station", "very_dangerous", "steel", 1990, plan.GAS_MR_STATION),
    (
        "egevig-fjernvarme",
        "district_heating",
        "heat_plant",
        "dangerous",
        "concrete",
        1981,
        plan.HEAT_PLANT,
    ),
)


def _plant_points(routes: UtilityRoutes, rng: np.random.Generator) -> dict[str, list[dict]]:
    """Plants, stations and substations, each owned by its network's owner."""
    out: dict[str, list[dict]] = {o.slug: [] for o in OWNERS}
    for slug, utype, subtype, hazard, material, year, xy in _PLANTS:
        fields = {
            "utility_type": utype,
            "subtype": subtype,
            "hazard_class": hazard,
            "material": material,
        }
        out[slug].append(_point(rng, Point(xy), year, **fields))
    substation = {
        "utility_type": "electricity",
        "subtype": "substation",
        "hazard_class": "dangerous",
        "material": "concrete",
    }
    for n in routes.substations:
        x, y = routes.roads.graph.nodes[n]
        out["kystnet-el"].append(
            _point(rng, Point(x + 4.0, y + 4.0), int(rng.integers(1965, 2020)), **substation)
        )
    return out


@dataclass
class UtilityNetworks:
    """Line and point assets per owner slug, local metres."""

    lines: dict[str, gpd.GeoDataFrame]
    points: dict[str, gpd.GeoDataFrame]


def build_utilities(
    seed: int, roads: Roads, buildings: gpd.GeoDataFrame, sewers: Sewers
) -> UtilityNetworks:
    """Lay every owner's networks along the roads.

    Parameters
    ----------
    seed
        The sample's seed.
    roads
        The road network the lines follow.
    buildings
        Building footprints; substations are placed among them.
    sewers
        The sewer network, registered as the water utility's assets.

    Returns
    -------
    UtilityNetworks
        Per owner: lines and points with asset_id, owner, utility_type,
        subtype, hazard_class, depth_m, accuracy_class, material,
        installed_year, status and level (lines also voltage_kv,
        pressure_bar and diameter_mm).
    """
    rng = rng_for(seed, "utilities")
    routes = UtilityRoutes(roads, buildings, rng_for(seed, "utilities.routes"))
    lines: dict[str, list[dict]] = {o.slug: [] for o in OWNERS}
    points = _plant_points(routes, rng)
    for spec in _SPECS:
        rows = _line_rows(spec, routes, rng)
        for row in rows:
            row["asset_id"] = None
        lines[spec.owner] += rows
        points[spec.owner] += _points_on_lines(rows, rng)
    sewer_lines, sewer_points = _sewer_rows(sewers, rng)
    lines["egevig-forsyning"] += sewer_lines
    points["egevig-forsyning"] += sewer_points
    out_lines, out_points = {}, {}
    for owner in OWNERS:
        ids = iter(
            uuids(
                rng_for(seed, f"utilities.ids.{owner.slug}"),
                len(lines[owner.slug]) + len(points[owner.slug]),
            )
        )
        for kind, rows, store in (("lines", lines, out_lines), ("points", points, out_points)):
            frame = gpd.GeoDataFrame(rows[owner.slug], geometry="geometry")
            frame["asset_id"] = [a if isinstance(a, str) else next(ids) for a in frame["asset_id"]]
            frame.insert(1, "owner", owner.name)
            front = ["asset_id", "owner", "utility_type", "subtype"]
            store[owner.slug] = frame[front + [c for c in frame.columns if c not in front]]
            logger.debug("%s %s: %d", owner.slug, kind, len(frame))
    return UtilityNetworks(out_lines, out_points)
