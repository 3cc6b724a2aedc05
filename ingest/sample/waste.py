"""Waste service of the sample town: bins, recycling stations, facilities, fleet.

Bins stand where a Danish town has them: underground containers for glass,
paper, plastic, metal (and textile banks) together at recycling stations
("genbrugsøer") near street junctions; underground residual and organic
containers at apartment blocks; wheeled surface bins at public buildings and
shops; street litter bins along the main streets and the harbour. Every bin
stands beside a street, off the carriageway and outside every building. The
depot and the disposal sites (incineration, recycling centre, biogas) are the
end points of collection routes; the fleet has one truck type per fraction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point
from shapely.prepared import prep

from ingest.sample import plan
from ingest.sample.manifest import FileEntry
from ingest.sample.roads import CLASS_WIDTH_M, Roads, bearing
from ingest.sample.seeding import rng_for
from ingest.sample.waste_sensors import simulate
from ingest.sample.writers import to_world, write_csv, write_gpkg

FRACTIONS = ("residual", "paper", "plastic", "glass", "metal", "organic", "textile")
BIN_TYPES = ("underground", "surface", "street_litter")
_STATION_CAPACITY = {"glass": 3000, "paper": 4000, "plastic": 5000, "metal": 3000, "textile": 2500}
FLEET = (
    ("T01", "residual", 9000, 22.0, "rear_loader"),
    ("T02", "residual", 10000, 20.0, "crane"),
    ("T03", "organic", 8000, 15.0, "rear_loader"),
    ("T04", "paper", 7000, 30.0, "crane"),
    ("T05", "plastic", 5000, 35.0, "crane"),
    ("T06", "glass", 12000, 18.0, "crane"),
    ("T07", "metal", 6000, 25.0, "crane"),
    ("T08", "textile", 1500, 12.0, "van"),
    ("T09", "residual", 2500, 8.0, "street_tipper"),
)


@dataclass
class WasteLayout:
    """Bins, recycling stations and facilities in local metres."""

    bins: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame


class _Spot:
    """Finds a free spot beside a street: off the road, outside buildings."""

    def __init__(self, roads: Roads, buildings: gpd.GeoDataFrame) -> None:
        self.road_tree = shapely.STRtree(roads.clearance(0.5))
        self.building_tree = shapely.STRtree(list(buildings.geometry.buffer(1.5)))
        self.taken: list[Point] = []

    def free(self, p: Point) -> bool:
        if self.road_tree.query(p, predicate="intersects").size:
            return False
        if self.building_tree.query(p, predicate="intersects").size:
            return False
        return all(p.distance(q) > 1.2 for q in self.taken[-200:])

    def beside(self, line: shapely.LineString, s: float, off: float) -> Point | None:
        theta = bearing(line, s)
        base = line.interpolate(s)
        for side in (1.0, -1.0):
            for extra in (0.0, 1.5, 3.0):
                d = side * (off + extra)
                p = Point(base.x - math.sin(theta) * d, base.y + math.cos(theta) * d)
                if self.free(p):
                    self.taken.append(p)
                    return p
        return None


def _address(buildings: gpd.GeoDataFrame, p: Point) -> str:
    idx = buildings.sindex.nearest(p, return_all=False)[1][0]
    return str(buildings["address"].iloc[idx])


def _row_of_bins(
    spot: _Spot, line: shapely.LineString, s: float, off: float, n: int
) -> list[Point]:
    """``n`` container positions 2.5 m apart along the street."""
    out = []
    for k in range(n):
        p = spot.beside(line, min(max(s + 2.5 * k, 0.0), line.length), off)
        if p is not None:
            out.append(p)
    return out


def build_waste(seed: int, roads: Roads, buildings: gpd.GeoDataFrame) -> WasteLayout:
    """Place the bins, recycling stations and facilities of the sample town.

    Parameters
    ----------
    seed
        The sample's seed.
    roads
        The road network; bins stand beside it.
    buildings
        Buildings (for apartment sites, public sites and addresses).

    Returns
    -------
    WasteLayout
        Bins (bin_id, fraction, capacity_l, bin_type, site_id, address),
        recycling stations and facilities, local metres.
    """
    rng = rng_for(seed, "waste.layout")
    spot = _Spot(roads, buildings)
    seg = roads.segments
    town = prep(shapely.union_all([z.outline for z in plan.zones()]))
    urban = seg[seg["road_class"].isin(["primary", "secondary", "residential", "service"])]
    urban = urban[[town.contains(g.interpolate(0.5, normalized=True)) for g in urban.geometry]]
    rows: list[dict] = []
    stations: list[dict] = []

    def add(
        points: list[Point], fractions: list[str], caps: list[int], kind: str, site: str
    ) -> None:
        for p, f, c in zip(points, fractions, caps, strict=False):
            rows.append(
                {"fraction": f, "capacity_l": c, "bin_type": kind, "site_id": site, "geometry": p}
            )

    # Recycling stations: at least 280 m apart, beside a town street.
    order = rng.permutation(len(urban))
    chosen: list[Point] = []
    for i in order:
        line = urban.geometry.iloc[int(i)]
        mid = line.interpolate(0.5, normalized=True)
        if line.length < 40.0 or any(mid.distance(c) < 280.0 for c in chosen):
            continue
        fractions = ["glass", "paper", "plastic", "metal"] + (
            ["textile"] if rng.random() < 0.4 else []
        )
        off = CLASS_WIDTH_M[urban["road_class"].iloc[int(i)]] / 2.0 + 2.0
        pts = _row_of_bins(spot, line, line.length / 2.0 - 5.0, off, len(fractions))
        if len(pts) < 3:
            continue
        chosen.append(mid)
        site = f"RS-{len(stations) + 1:02d}"
        kinds = ["surface" if f == "textile" else "underground" for f in fractions]
        for p, f, k in zip(pts, fractions, kinds, strict=False):
            rows.append(
                {
                    "fraction": f,
                    "capacity_l": _STATION_CAPACITY[f],
                    "bin_type": k,
                    "site_id": site,
                    "geometry": p,
                }
            )
        street = urban["name"].iloc[int(i)]
        stations.append(
            {
                "site_id": site,
                "name": f"Genbrugsø {street}",
                "address": _address(buildings, pts[0]),
                "fractions": ",".join(fractions[: len(pts)]),
                "n_containers": len(pts),
                "geometry": shapely.centroid(shapely.MultiPoint(pts)),
            }
        )
        if len(stations) >= 20:
            break
    _building_sites(add, spot, roads, buildings, rng)
    _street_litter(add, spot, urban, rng)
    bins = gpd.GeoDataFrame(rows, geometry="geometry")
    bins.insert(0, "bin_id", [f"EGV-B{k + 1:04d}" for k in range(len(bins))])
    bins["address"] = [_address(buildings, p) for p in bins.geometry]
    facilities = [
        {
            "facility_id": "D1",
            "kind": "depot",
            "name": "Egevig Affaldsdepot",
            "accepts": "",
            "geometry": Point(plan.WASTE_DEPOT),
        }
    ]
    for k, (name, accepts, u, v) in enumerate(plan.DISPOSAL_SITES):
        facilities.append(
            {
                "facility_id": f"F{k + 1}",
                "kind": "disposal_site",
                "name": name,
                "accepts": ",".join(accepts),
                "geometry": Point(u, v),
            }
        )
    return WasteLayout(
        bins,
        gpd.GeoDataFrame(stations, geometry="geometry"),
        gpd.GeoDataFrame(facilities, geometry="geometry"),
    )


_Add = Callable[[list[Point], list[str], list[int], str, str], None]


def _building_sites(
    add: _Add, spot: _Spot, roads: Roads, buildings: gpd.GeoDataFrame, rng: np.random.Generator
) -> None:
    """Underground containers at apartment blocks, wheeled bins at public buildings and shops."""
    seg = roads.segments
    apartments = buildings[buildings["use"] == "residential_apartment"]
    picks = apartments.iloc[rng.permutation(len(apartments))[:26]]
    publics = buildings[buildings["use"].isin(["public", "commercial"])]
    publics = publics.iloc[rng.permutation(len(publics))[:34]]
    for prefix, frame in (("AP", picks), ("PB", publics)):
        for k, row in enumerate(frame.itertuples()):
            c = row.geometry.centroid
            idx = seg.sindex.nearest(c, return_all=False)[1][0]
            line = seg.geometry.iloc[idx]
            off = CLASS_WIDTH_M[seg["road_class"].iloc[idx]] / 2.0 + 1.5
            if prefix == "AP":
                fractions = ["residual", "organic"] + (["paper"] if rng.random() < 0.6 else [])
                caps = [5000, 3000, 4000]
                kind = "underground"
            else:
                fractions = ["residual", "paper"] + (
                    ["organic", "plastic"] if row.use == "public" else []
                )
                caps = [660, 660, 240, 660]
                kind = "surface"
            pts = _row_of_bins(spot, line, line.project(c) - 2.5, off, len(fractions))
            add(pts, fractions, caps, kind, f"{prefix}-{k + 1:02d}")


def _street_litter(
    add: _Add, spot: _Spot, urban: gpd.GeoDataFrame, rng: np.random.Generator
) -> None:
    """Litter bins every 90-130 m along main streets, the old town and the harbour."""
    main = urban[
        urban["road_class"].isin(["primary", "secondary", "service"])
        | urban["surface"].eq("paving_stones")
    ]
    n = 0
    for row in main.sort_values("road_id").itertuples():
        s = rng.uniform(10.0, 60.0)
        while s < row.geometry.length and n < 110:
            p = spot.beside(row.geometry, s, CLASS_WIDTH_M[row.road_class] / 2.0 + 1.2)
            if p is not None:
                n += 1
                add(
                    [p],
                    ["residual"],
                    [int(rng.choice([80, 110, 150]))],
                    "street_litter",
                    f"SL-{n:03d}",
                )
            s += rng.uniform(90.0, 130.0)


def write_waste(out: Path, seed: int, layout: WasteLayout) -> tuple[list[FileEntry], dict]:
    """Write bins.gpkg, fleet.csv, sensor_readings.csv and collections.csv.

    Parameters
    ----------
    out
        The sample's root directory.
    seed
        The sample's seed.
    layout
        The placed bins, stations and facilities (local metres).

    Returns
    -------
    entries, defects
        Manifest entries and the documented sensor defects.
    """
    d = out / "waste"
    d.mkdir(parents=True, exist_ok=True)
    layers = [
        ("bins", to_world(layout.bins)),
        ("recycling_stations", to_world(layout.stations)),
        ("facilities", to_world(layout.facilities)),
    ]
    counts = write_gpkg(d / "bins.gpkg", layers)
    fleet = [[t, f, kg, m3, body, "D1"] for t, f, kg, m3, body in FLEET]
    n_fleet = write_csv(
        d / "fleet.csv",
        ["truck_id", "fraction", "capacity_kg", "capacity_m3", "body_type", "depot_id"],
        fleet,
    )
    readings, collections, defects = simulate(seed, layout.bins)
    rows = (
        [b, t, f"{f:.3f}", f"{c:.1f}", f"{v:.2f}", fire, tilt]
        for b, t, f, c, v, fire, tilt in readings
    )
    header = [
        "bin_id",
        "time",
        "fill_level",
        "temperature_c",
        "battery_v",
        "fire_flag",
        "tilt_flag",
    ]
    n_read = write_csv(d / "sensor_readings.csv", header, rows)
    rows = ([c, b, t, f"{f:.3f}", f"{w:.1f}", truck] for c, b, t, f, w, truck in collections)
    header = ["collection_id", "bin_id", "time", "fill_before", "weight_kg", "truck_id"]
    n_coll = write_csv(d / "collections.csv", header, rows)
    entries = [
        FileEntry(
            "waste/bins.gpkg",
            "waste",
            "GPKG",
            "bins, recycling stations, depot and disposal sites",
            layers=counts,
        ),
        FileEntry("waste/fleet.csv", "waste", "csv", "collection trucks", rows=n_fleet),
        FileEntry(
            "waste/sensor_readings.csv",
            "waste",
            "csv",
            "fill-level sensor readings, UTC",
            rows=n_read,
        ),
        FileEntry("waste/collections.csv", "waste", "csv", "bin collections, UTC", rows=n_coll),
    ]
    return entries, defects
