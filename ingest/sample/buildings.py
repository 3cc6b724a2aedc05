"""Buildings of the sample town: footprints along the streets plus landmarks.

Houses are laid out lot by lot along both sides of every street, rotated with
the street, in the style of the zone they fall in (old town, suburb, summer
houses, industry). Landmarks (public buildings, plants, farms, harbour sheds)
are placed next to their planned anchor at the nearest free spot. A footprint
is accepted only on buildable land, clear of every road surface and at least
one metre from every other building, so footprints never overlap.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.prepared import prep

from ingest.sample import plan
from ingest.sample.roads import Roads, bearing, merged_streets
from ingest.sample.seeding import rng_for, uuids

logger = logging.getLogger(__name__)

# lot width, length along street, depth, setback from centre line, storeys,
# year range, share of empty lots, share of L-shapes, uses with weights
_STYLES: dict[str, dict] = {
    "old_town": {
        "lot": (17.0, 30.0), "length": (14.0, 27.0), "depth": (10.0, 14.0), "setback": (4.6, 5.5),
        "storeys": (2, 5), "years": (1860, 1975), "vacant": 0.08, "ell": 0.15,
        "uses": {"residential_apartment": 0.55, "commercial": 0.35, "residential_terraced": 0.10},
    },
    "suburb": {
        "lot": (23.0, 30.0), "length": (10.0, 15.0), "depth": (8.0, 11.0), "setback": (8.0, 11.0),
        "storeys": (1, 2), "years": (1950, 2018), "vacant": 0.12, "ell": 0.35,
        "uses": {"residential_detached": 0.82, "residential_terraced": 0.1, "residential_apartment": 0.04, "commercial": 0.04},
    },
    "summer": {
        "lot": (28.0, 38.0), "length": (7.0, 11.0), "depth": (6.0, 9.0), "setback": (9.0, 14.0),
        "storeys": (1, 1), "years": (1955, 2015), "vacant": 0.15, "ell": 0.2,
        "uses": {"holiday_home": 0.9, "residential_detached": 0.1},
    },
    "industrial": {
        "lot": (55.0, 90.0), "length": (25.0, 55.0), "depth": (18.0, 35.0), "setback": (11.0, 16.0),
        "storeys": (1, 2), "years": (1965, 2021), "vacant": 0.2, "ell": 0.1,
        "uses": {"industrial": 0.75, "commercial": 0.25},
    },
}  # fmt: skip
_TERRACE = {"length": (28.0, 44.0), "depth": (8.5, 9.5)}

_HARBOUR = (
    ("Havnekontoret", "commercial", "harbour_office", 2965.0, 2008.0, 14.0, 9.0, 2),
    ("Fiskehallen", "industrial", "fish_auction", 3080.0, 2006.0, 40.0, 14.0, 1),
    ("Egevig Bådeværft", "industrial", "boatyard", 2990.0, 2254.0, 30.0, 14.0, 1),
    ("Egevig Sejlklub", "commercial", "sailing_club", 3120.0, 2254.0, 18.0, 9.0, 1),
)
_PLANTS = (
    ("Egevig Renseanlæg", "utility", "wastewater_plant", plan.WASTEWATER_PLANT, 40.0, 22.0, 1),
    ("Egevig Vandværk", "utility", "waterworks", plan.WATERWORKS, 24.0, 12.0, 1),
    ("Egevig Kraftvarmeværk", "utility", "heat_plant", plan.HEAT_PLANT, 45.0, 25.0, 2),
    ("Egevig Transformerstation", "utility", "substation", plan.MAIN_SUBSTATION, 20.0, 12.0, 1),
    ("Egevig M/R-station", "utility", "gas_mr_station", plan.GAS_MR_STATION, 8.0, 5.0, 1),
    ("Egevig Affaldsdepot", "industrial", "waste_depot", plan.WASTE_DEPOT, 40.0, 20.0, 1),
)


@dataclass
class _Site:
    """What a footprint is checked against while the town is laid out."""

    buildable: object
    road_tree: shapely.STRtree
    cells: dict[tuple[int, int], list[Polygon]] = field(default_factory=dict)

    def free(self, poly: Polygon) -> bool:
        if not self.buildable.contains(poly):
            return False
        if self.road_tree.query(poly, predicate="intersects").size:
            return False
        cx, cy = poly.centroid.x // 80.0, poly.centroid.y // 80.0
        for i in (-1, 0, 1):
            for j in (-1, 0, 1):
                for other in self.cells.get((int(cx) + i, int(cy) + j), ()):
                    if poly.distance(other) < 1.0:
                        return False
        return True

    def add(self, poly: Polygon) -> None:
        key = (int(poly.centroid.x // 80.0), int(poly.centroid.y // 80.0))
        self.cells.setdefault(key, []).append(poly)


def _footprint(
    cx: float, cy: float, angle: float, length: float, depth: float, ell: float
) -> Polygon:
    """A rectangle (or an L when ``ell`` > 0) centred on ``(cx, cy)``."""
    hl, hd = length / 2.0, depth / 2.0
    if ell > 0.0:
        wing = ell * length
        pts = [
            (-hl, -hd),
            (hl, -hd),
            (hl, hd + 0.7 * depth),
            (hl - wing, hd + 0.7 * depth),
            (hl - wing, hd),
            (-hl, hd),
        ]
    else:
        pts = [(-hl, -hd), (hl, -hd), (hl, hd), (-hl, hd)]
    c, s = math.cos(angle), math.sin(angle)
    return Polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts])


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _zone_at(zones: tuple[plan.Zone, ...], pt: Point) -> plan.Zone | None:
    for zone in zones:
        if zone.outline.contains(pt):
            return zone
    return None


def _street_lots(roads: Roads, site: _Site, rng: np.random.Generator) -> list[dict]:
    """Houses along every street, numbered odd on the left, even on the right."""
    zones = plan.zones()
    rows: list[dict] = []
    counters: dict[str, dict[int, int]] = {}
    for name, road_class, line in merged_streets(roads):
        if road_class in ("motorway", "track") or line.length < 30.0:
            continue
        numbers = counters.setdefault(name, {1: 1, -1: 2})
        for side in (1, -1):
            s = 10.0
            while s < line.length - 10.0:
                style_zone = _zone_at(zones, line.interpolate(s))
                if style_zone is None:
                    s += 25.0
                    continue
                st = _STYLES[style_zone.style]
                lot = rng.uniform(*st["lot"])
                use = _pick(rng, st["uses"])
                terrace = use == "residential_terraced"
                length = rng.uniform(*(_TERRACE if terrace else st)["length"])
                depth = rng.uniform(*(_TERRACE if terrace else st)["depth"])
                lot = max(lot, length + 2.0)
                mid = s + lot / 2.0
                if mid > line.length - 8.0 or rng.random() < st["vacant"]:
                    s += lot
                    continue
                theta = bearing(line, mid)
                setback = rng.uniform(*st["setback"]) + (
                    1.5 if road_class in ("primary", "secondary") else 0.0
                )
                off = setback + depth / 2.0
                p = line.interpolate(mid)
                cx = p.x - side * math.sin(theta) * off
                cy = p.y + side * math.cos(theta) * off
                ell = rng.uniform(0.35, 0.5) if (not terrace and rng.random() < st["ell"]) else 0.0
                angle = theta if side == 1 else theta + math.pi
                poly = _footprint(cx, cy, angle, length, depth, ell)
                if site.free(poly):
                    site.add(poly)
                    storeys = int(rng.integers(st["storeys"][0], st["storeys"][1] + 1))
                    if use == "residential_apartment":
                        storeys = max(storeys, 3)
                    rows.append(
                        {
                            "geometry": poly,
                            "use": use,
                            "use_detail": None,
                            "name": None,
                            "storeys": storeys,
                            "year_built": int(rng.integers(st["years"][0], st["years"][1] + 1)),
                            "street": name,
                            "number": numbers[side],
                            "style": style_zone.style,
                        }
                    )
                    numbers[side] += 2
                s += lot
    return rows


def _place_near(
    site: _Site, roads: Roads, anchor: tuple[float, float], length: float, depth: float
) -> Polygon | None:
    """The free footprint nearest ``anchor``, aligned with the nearest road."""
    pt = Point(anchor)
    idx = roads.segments.sindex.nearest(pt, return_all=False)[1][0]
    seg = roads.segments.geometry.iloc[idx]
    theta = bearing(seg, seg.project(pt))
    for radius in np.arange(0.0, 240.0, 6.0):
        steps = max(1, int(2 * math.pi * radius / 8.0))
        for k in range(steps):
            a = 2 * math.pi * k / steps
            poly = _footprint(
                anchor[0] + radius * math.cos(a),
                anchor[1] + radius * math.sin(a),
                theta,
                length,
                depth,
                0.0,
            )
            if site.free(poly):
                site.add(poly)
                return poly
    return None


def _nearest_street(roads: Roads, poly: Polygon) -> str:
    idx = roads.segments.sindex.nearest(poly.centroid, return_all=False)[1][0]
    return str(roads.segments["name"].iloc[idx])


def _landmarks(roads: Roads, site: _Site, rng: np.random.Generator) -> list[dict]:
    """Public buildings, plants, harbour sheds and farmsteads."""
    specs: list[
        tuple[str | None, str, str | None, tuple[float, float], float, float, int, tuple[int, int]]
    ] = []
    specs += [
        (n, "public", d, (u, v), ln, dp, st, (1900, 2010))
        for n, d, u, v, ln, dp, st in plan.PUBLIC_BUILDINGS
    ]
    specs += [
        (n, use, d, (u, v), ln, dp, st, (1950, 2015)) for n, use, d, u, v, ln, dp, st in _HARBOUR
    ]
    specs += [(n, use, d, p, ln, dp, st, (1960, 2012)) for n, use, d, p, ln, dp, st in _PLANTS]
    for farm in plan.FARMS:
        specs.append(
            (
                None,
                "residential_detached",
                "farmhouse",
                farm,
                rng.uniform(12, 16),
                rng.uniform(8, 10),
                1,
                (1880, 1990),
            )
        )
        for _ in range(int(rng.integers(2, 4))):
            specs.append(
                (
                    None,
                    "agricultural",
                    "barn",
                    farm,
                    rng.uniform(25, 50),
                    rng.uniform(14, 22),
                    1,
                    (1950, 2015),
                )
            )
    rows: list[dict] = []
    for name, use, detail, anchor, length, depth, storeys, years in specs:
        poly = _place_near(site, roads, anchor, length, depth)
        if poly is None:
            logger.warning("no room for %s near %s", detail, anchor)
            continue
        street = _nearest_street(roads, poly)
        rows.append(
            {
                "geometry": poly,
                "use": use,
                "use_detail": detail,
                "name": name,
                "storeys": storeys,
                "year_built": int(rng.integers(years[0], years[1] + 1)),
                "street": street,
                "number": None,
                "style": "landmark",
            }
        )
    return rows


def _heat(rng: np.random.Generator, rows: list[dict]) -> list[str]:
    dh, gas = prep(plan.district_heating_area()), prep(plan.gas_area())
    out = []
    for row in rows:
        c = row["geometry"].centroid
        if dh.contains(c):
            mix = plan.HEAT_MIX["district_heating_area"]
        elif gas.contains(c):
            mix = plan.HEAT_MIX["gas_area"]
        elif row["style"] == "summer":
            mix = plan.HEAT_MIX["summer"]
        else:
            mix = plan.HEAT_MIX["rural"]
        out.append(_pick(rng, mix))
    return out


def build_buildings(seed: int, roads: Roads, buildable: object) -> gpd.GeoDataFrame:
    """Lay out every building of the sample town.

    Parameters
    ----------
    seed
        The sample's seed.
    roads
        The road network; footprints keep clear of every road surface.
    buildable
        Geometry (local metres) inside which footprints must lie.

    Returns
    -------
    geopandas.GeoDataFrame
        Local-metre footprints with building_id, use, use_detail, name,
        floor_area_m2, storeys, year_built, heat_installation, address,
        postcode.
    """
    rng = rng_for(seed, "buildings")
    site = _Site(prep(buildable), shapely.STRtree(roads.clearance(1.0)))
    rows = _landmarks(roads, site, rng)
    rows += _street_lots(roads, site, rng)
    heat = _heat(rng_for(seed, "buildings.heat"), rows)
    last: dict[str, int] = {}
    for row in rows:
        if row["number"] is not None and row["number"] % 2 == 1:
            last[row["street"]] = max(last.get(row["street"], -1), row["number"])
    for row in rows:
        if row["number"] is None:
            row["number"] = last[row["street"]] = last.get(row["street"], -1) + 2
    frame = gpd.GeoDataFrame(
        {
            "building_id": uuids(rng_for(seed, "buildings.ids"), len(rows)),
            "use": [r["use"] for r in rows],
            "use_detail": [r["use_detail"] for r in rows],
            "name": [r["name"] for r in rows],
            "floor_area_m2": [round(r["geometry"].area * r["storeys"], 1) for r in rows],
            "storeys": [r["storeys"] for r in rows],
            "year_built": [r["year_built"] for r in rows],
            "heat_installation": heat,
            "address": [f"{r['street']} {r['number']}" for r in rows],
            "postcode": plan.POSTCODE,
        },
        geometry=[r["geometry"] for r in rows],
    )
    logger.info("buildings: %d", len(frame))
    return frame
