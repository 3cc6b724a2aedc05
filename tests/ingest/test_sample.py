"""Tests of the sample-municipality generator, on real generated files."""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely

from ingest.sample import SampleExistsError, SampleSizeError, generate
from ingest.sample.dem import tile_heights, tiles
from ingest.sample.terrain import TerrainModel

SEED = 42


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample") / "egevig"
    manifest = generate(out, size="small", seed=SEED, progress=False)
    return out, manifest


@pytest.fixture(scope="session")
def mosaic(sample: tuple[Path, dict]) -> tuple[np.ndarray, rasterio.Affine]:
    """The 16 DEM tiles as one 4 m grid (north row first)."""
    out, manifest = sample
    n = manifest["dem"]["cells_per_side"]
    grid = np.full((4 * n, 4 * n), np.nan, dtype=np.float32)
    e0, n_top = manifest["extent"]["minx"], manifest["extent"]["maxy"]
    for path in sorted((out / "terrain").glob("DTM_1km_*.tif")):
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 25832
            assert src.nodata == -9999
            assert src.block_shapes[0] == (256, 256)
            col = int(round((src.transform.c - e0) / src.res[0]))
            row = int(round((n_top - src.transform.f) / src.res[1]))
            grid[row : row + n, col : col + n] = src.read(1)
    assert not np.isnan(grid).any()
    return grid, rasterio.transform.from_origin(e0, n_top, 4.0, 4.0)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _at(mosaic: tuple[np.ndarray, rasterio.Affine], e: float, n: float) -> float:
    grid, transform = mosaic
    row, col = rasterio.transform.rowcol(transform, e, n)
    return float(grid[row, col])


def _priority_flood(dem: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Lowest water level at which each cell is reached from ``seeds`` (8-neighbour)."""
    rows, cols = dem.shape
    level = np.where(seeds, dem, np.inf)
    closed = seeds.copy()
    heap = [(float(dem[r, c]), int(r), int(c)) for r, c in zip(*np.nonzero(seeds), strict=True)]
    heapq.heapify(heap)
    steps = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    while heap:
        z, r, c = heapq.heappop(heap)
        for dr, dc in steps:
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols and not closed[rr, cc]:
                closed[rr, cc] = True
                v = max(float(dem[rr, cc]), z)
                level[rr, cc] = v
                heapq.heappush(heap, (v, rr, cc))
    return level


def _components(mask: np.ndarray) -> list[int]:
    """Sizes of the 8-connected components of ``mask``."""
    seen = np.zeros_like(mask)
    sizes = []
    for r, c in zip(*np.nonzero(mask), strict=True):
        if seen[r, c]:
            continue
        stack, size = [(r, c)], 0
        seen[r, c] = True
        while stack:
            y, x = stack.pop()
            size += 1
            for yy in (y - 1, y, y + 1):
                for xx in (x - 1, x, x + 1):
                    if (
                        0 <= yy < mask.shape[0]
                        and 0 <= xx < mask.shape[1]
                        and mask[yy, xx]
                        and not seen[yy, xx]
                    ):
                        seen[yy, xx] = True
                        stack.append((yy, xx))
        sizes.append(size)
    return sizes


# -- manifest and determinism -------------------------------------------------


def test_manifest_lists_every_file_with_its_checksum(sample):
    out, manifest = sample
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        "manifest.json"
    }
    listed = {f["path"] for f in manifest["files"]}
    assert listed == on_disk
    for rec in manifest["files"]:
        assert rec["sha256"] == _sha(out / rec["path"]), rec["path"]
        assert rec["bytes"] == (out / rec["path"]).stat().st_size
        assert rec["family"] in {
            "terrain",
            "climate",
            "water",
            "energy",
            "waste",
            "utilities",
            "base",
        }
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert manifest["crs"] == "EPSG:25832" and manifest["vertical_datum"] == "DVR90"
    assert manifest["extent"] == {"minx": 720000, "miny": 6170000, "maxx": 724000, "maxy": 6174000}
    assert (
        manifest["seed"] == SEED and manifest["size"] == "small" and manifest["resolution_m"] == 4.0
    )
    families = {f["family"] for f in manifest["files"]}
    assert families == {"terrain", "climate", "water", "energy", "waste", "utilities", "base"}
    assert sum(f["path"].endswith(".tif") for f in manifest["files"]) == 16


def test_same_seed_gives_identical_bytes(sample, tmp_path):
    out, manifest = sample
    again = generate(tmp_path / "again", size="small", seed=SEED, progress=False)
    first = {f["path"]: f["sha256"] for f in manifest["files"]}
    second = {f["path"]: f["sha256"] for f in again["files"]}
    differing = sorted(p for p in first if first[p] != second.get(p))
    assert not differing
    assert (out / "manifest.json").read_bytes() == (
        tmp_path / "again" / "manifest.json"
    ).read_bytes()


def test_other_seed_gives_other_terrain(mosaic):
    e_km, n_km = tiles()[5]
    other = tile_heights(TerrainModel.build(SEED + 1), e_km, n_km, 4.0)
    same = tile_heights(TerrainModel.build(SEED), e_km, n_km, 4.0)
    grid, _ = mosaic
    assert np.array_equal(same, grid[500:750, 250:500])
    assert np.abs(other - same).max() > 1.0


def test_bad_size_and_occupied_target_are_refused(sample, tmp_path):
    with pytest.raises(ValueError, match="huge"):
        generate(tmp_path / "x", size="huge")
    with pytest.raises(SampleSizeError):
        generate(tmp_path / "x", size="")
    out, _ = sample
    before = _sha(out / "manifest.json")
    with pytest.raises(SampleExistsError, match="overwrite"):
        generate(out, size="small", seed=SEED + 1)
    with pytest.raises(FileExistsError):
        generate(out, size="small")
    assert _sha(out / "manifest.json") == before


# -- terrain ------------------------------------------------------------------


def test_dem_tiles_mosaic_without_seams(mosaic):
    grid, _ = mosaic
    n = 250
    for k in (1, 2, 3):
        seam_cols = np.abs(grid[:, k * n] - grid[:, k * n - 1])
        next_cols = np.abs(grid[:, k * n + 1] - grid[:, k * n])
        prev_cols = np.abs(grid[:, k * n - 1] - grid[:, k * n - 2])
        assert np.median(seam_cols) <= 2.0 * max(np.median(next_cols), np.median(prev_cols)) + 1e-3
        assert (
            np.percentile(seam_cols, 99)
            <= 2.0 * max(np.percentile(next_cols, 99), np.percentile(prev_cols, 99)) + 0.01
        )
        seam_rows = np.abs(grid[k * n, :] - grid[k * n - 1, :])
        next_rows = np.abs(grid[k * n + 1, :] - grid[k * n, :])
        assert np.percentile(seam_rows, 99) <= 2.0 * np.percentile(next_rows, 99) + 0.01


def test_dem_has_sea_coast_harbour_and_hills(sample, mosaic):
    _, manifest = sample
    grid, _ = mosaic
    assert (grid[:, -1] < 0).all(), "sea along the east side"
    assert grid.min() < -5.0
    assert (grid[:, : grid.shape[1] // 2] > 0).all(), "land in the west"
    assert 20.0 <= grid.max() <= 45.0
    land = grid > 0
    low = (grid >= 0.5) & (grid <= 2.5)
    assert low.sum() / land.sum() > 0.05, "a low coastal zone that +1..+3 m floods"
    basin = manifest["design"]["harbour"]["basin"]
    assert _at(mosaic, basin[0] + 50.0, (basin[1] + basin[3]) / 2.0) == pytest.approx(
        -4.0, abs=0.01
    )
    assert _at(mosaic, basin[0] + 50.0, basin[1] - 30.0) == pytest.approx(2.0, abs=0.01)


def test_dem_has_closed_depressions_and_a_diked_low_area(sample, mosaic):
    _, manifest = sample
    grid, _ = mosaic
    coarse = grid.reshape(500, 2, 500, 2).mean(axis=(1, 3))
    border = np.zeros(coarse.shape, dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    depth = _priority_flood(coarse, border) - coarse
    sizes = [s for s in _components(depth > 0.05) if s >= 4]
    assert len(sizes) >= 5
    for bowl in manifest["design"]["bluespots"]:
        assert _at(mosaic, bowl["easting"], bowl["northing"]) < bowl["rim_level_m"] - 0.2, bowl[
            "group"
        ]
        row, col = rasterio.transform.rowcol(mosaic[1], bowl["easting"], bowl["northing"])
        assert depth[row // 2, col // 2] > 0.1, bowl["group"]
    sea = np.zeros(coarse.shape, dtype=bool)
    sea[:, -1] = True
    # Max-pooling keeps the 6 m wide dike crest that averaging would shave off.
    flood_level = _priority_flood(grid.reshape(500, 2, 500, 2).max(axis=(1, 3)), sea)
    polder = manifest["design"]["polder"]
    row, col = rasterio.transform.rowcol(mosaic[1], polder["easting"], polder["northing"])
    assert coarse[row // 2, col // 2] < 1.0, "the polder lies low"
    assert flood_level[row // 2, col // 2] > 3.5, "but the sea reaches it only over the dike"
    flooded_at_2m = (coarse > 0) & (flood_level <= 2.0)
    assert flooded_at_2m.sum() > 1000, "+2 m floods part of the coastal zone"


def test_ascii_grid_and_xyz_are_readable(sample, mosaic):
    out, _ = sample
    asc = next((out / "terrain").glob("*.asc"))
    with rasterio.open(asc) as src:
        assert src.crs.to_epsg() == 25832
        assert src.res == (10.0, 10.0) and src.width == 100
        z = src.read(1)
        centre = src.xy(50, 50)
    assert _at(mosaic, *centre) == pytest.approx(float(z[50, 50]), abs=0.5)
    xyz = np.loadtxt(next((out / "terrain").glob("*.xyz")))
    assert xyz.shape == (10_000, 3)
    assert np.all(np.diff(xyz[:100, 0]) == 10.0)


# -- base: roads and buildings ------------------------------------------------


def test_roads_are_noded_and_connected(sample):
    out, _ = sample
    roads = pyogrio.read_dataframe(out / "roads.gpkg", layer="roads")
    assert roads.crs.to_epsg() == 25832
    assert set(roads.geom_type) == {"LineString"}
    assert roads["road_id"].is_unique
    assert set(roads["road_class"]) <= {
        "motorway",
        "primary",
        "secondary",
        "residential",
        "service",
        "track",
    }
    assert {"motorway", "primary", "residential", "track"} <= set(roads["road_class"])
    assert roads["oneway"].dtype == bool and roads["oneway"].any()
    ends = shapely.get_coordinates(shapely.boundary(roads.geometry.to_numpy()))
    index: dict[tuple[float, float], int] = {}
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in ends.reshape(-1, 2, 2):
        ia = index.setdefault(tuple(a), len(index))
        ib = index.setdefault(tuple(b), len(index))
        parent.extend(range(len(parent), len(index)))
        parent[find(ia)] = find(ib)
    assert len({find(i) for i in range(len(index))}) == 1
    left, right = roads.sindex.query(roads.geometry, predicate="crosses")
    assert left.size == 0, "segments meet only at shared end points"


def test_buildings_are_plausible_and_disjoint(sample, mosaic):
    out, manifest = sample
    b = pyogrio.read_dataframe(out / "buildings.gpkg", layer="buildings")
    roads = pyogrio.read_dataframe(out / "roads.gpkg", layer="roads")
    assert 800 <= len(b) <= 2000
    assert b["building_id"].is_unique and b["address"].is_unique
    assert set(b["use"]) >= {
        "residential_detached",
        "residential_terraced",
        "residential_apartment",
        "commercial",
        "industrial",
        "public",
        "agricultural",
    }
    assert set(b["heat_installation"]) == {
        "district_heating",
        "natural_gas",
        "heat_pump",
        "oil",
        "electric",
        "biomass",
    }
    assert (b["floor_area_m2"] > 0).all() and (b["storeys"] >= 1).all()
    assert b["year_built"].between(1800, 2025).all()
    assert (b["postcode"] == "4699").all()
    left, right = b.sindex.query(b.geometry, predicate="intersects")
    assert (left == right).all(), "no two footprints touch"
    hit, _ = roads.sindex.query(b.geometry, predicate="intersects")
    assert hit.size == 0, "no footprint on a road"
    centres = b.geometry.centroid
    in_bowls = np.zeros(len(b), dtype=bool)
    for bowl in manifest["design"]["bluespots"]:
        in_bowls |= (
            centres.distance(shapely.Point(bowl["easting"], bowl["northing"])).to_numpy()
            < bowl["radius_m"]
        )
    assert in_bowls.sum() >= 20, "buildings in and beside the bluespots"
    ground = np.array([_at(mosaic, p.x, p.y) for p in centres])
    assert ((ground > 0) & (ground < 2.5)).sum() >= 100, "buildings in the low coastal zone"


# -- water ----------------------------------------------------------------------


def test_streams_run_down_their_valleys_to_the_sea(sample, mosaic):
    out, _ = sample
    streams = pyogrio.read_dataframe(out / "water.gpkg", layer="streams")
    assert len(streams) == 2
    for line in streams.geometry:
        s = np.arange(0.0, line.length, 100.0)
        z = np.array([_at(mosaic, p.x, p.y) for p in shapely.line_interpolate_point(line, s)])
        assert z[0] > 10.0 and z[-1] < 1.5
        assert (np.diff(z) < 0.3).all(), "downhill all the way"
    assert len(pyogrio.read_dataframe(out / "water.gpkg", layer="lakes")) == 2
    assert pyogrio.read_dataframe(out / "water.gpkg", layer="coastline").length.sum() > 4000.0


def test_sewers_fall_to_an_outlet(sample):
    out, _ = sample
    pipes = pyogrio.read_dataframe(out / "water.gpkg", layer="sewer_pipes")
    mh = pyogrio.read_dataframe(out / "water.gpkg", layer="manholes")
    assert set(pipes["system"]) == {"combined", "foul", "storm"}
    assert (pipes["upstream_invert_m"] > pipes["downstream_invert_m"]).all()
    assert (mh["invert_level_m"] < mh["rim_level_m"] - 1.0).all(), "inverts below ground"
    ids = set(mh["manhole_id"])
    assert set(pipes["upstream_manhole_id"]) <= ids and set(pipes["downstream_manhole_id"]) <= ids
    assert pipes["upstream_manhole_id"].is_unique, "one outgoing pipe per manhole"
    down = dict(zip(pipes["upstream_manhole_id"], pipes["downstream_manhole_id"], strict=True))
    kind = dict(zip(mh["manhole_id"], mh["kind"], strict=True))
    for start in down:
        node, hops = start, 0
        while node in down:
            node, hops = down[node], hops + 1
            assert hops < len(pipes), "no loops"
        assert kind[node] in {"treatment_plant_inlet", "outfall"}
    assert (mh["kind"] == "treatment_plant_inlet").sum() == 1


# -- utilities ------------------------------------------------------------------


def _utility_frames(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    lines, points, owners = [], [], []
    for path in sorted((out / "utilities").glob("*.gpkg")):
        lines.append(pyogrio.read_dataframe(path, layer="lines"))
        points.append(pyogrio.read_dataframe(path, layer="points"))
        owners.append(pyogrio.read_dataframe(path, layer="owner", read_geometry=False))
    return pd.concat(lines), pd.concat(points), pd.concat(owners)


def test_utilities_have_owners_hazards_and_unknown_depths(sample):
    out, _ = sample
    lines, points, owners = _utility_frames(out)
    assert owners["name"].nunique() >= 5 and owners["email"].str.contains("@").all()
    assert set(lines["owner"]) == set(owners["name"])
    assert set(lines["utility_type"]) == {
        "electricity",
        "gas",
        "water",
        "sewer",
        "district_heating",
        "fibre",
        "telecom",
    }
    assert set(lines["hazard_class"]) == {"not_dangerous", "dangerous", "very_dangerous"}
    hv = lines[lines["subtype"].isin(["high_voltage", "high_pressure"])]
    assert len(hv) and (hv["hazard_class"] == "very_dangerous").all()
    safe = lines[lines["utility_type"].isin(["fibre", "telecom", "water", "sewer"])]
    assert (safe["hazard_class"] == "not_dangerous").all()
    dh = lines[
        lines["utility_type"].isin(["district_heating"]) | lines["subtype"].eq("medium_voltage")
    ]
    assert (dh["hazard_class"] == "dangerous").all()
    assert 0.15 <= lines["depth_m"].isna().mean() <= 0.35
    assert (lines["depth_m"].dropna() > 0).all()
    assert set(lines["accuracy_class"].dropna()) == {"0.25", "0.5", "1", "2", ">2"}
    assert lines["accuracy_class"].isna().any()
    assert set(lines["status"]) == {"in_service", "planned", "abandoned"}
    assert (lines["status"] == "in_service").mean() > 0.85
    assert pd.concat([lines["asset_id"], points["asset_id"]]).is_unique
    assert {"substation", "valve", "hydrant", "manhole", "cable_cabinet"} <= set(points["subtype"])


def test_ler_gml_is_readable_by_gdal(sample, tmp_path):
    out, _ = sample
    lines, points, _ = _utility_frames(out)
    ns = "{http://data.gov.dk/schemas/LER/2/gml}"
    read_ids: list[str] = []
    for gml in sorted((out / "utilities").glob("*.gml")):
        copy = tmp_path / gml.name  # GDAL writes a .gfs beside what it reads
        shutil.copy(gml, copy)
        root = ET.parse(copy).getroot()
        assert root.tag == f"{ns}Graveforespoergselssvar"
        for layer in pyogrio.list_layers(copy)[:, 0]:
            df = pyogrio.read_dataframe(copy, layer=layer)
            assert df.crs.to_epsg() == 25832, (gml.name, layer)
            assert df.geometry.notna().all() and not df.geometry.is_empty.any()
            assert set(df["fareklasse"]) <= {"ikke farlig", "farlig", "meget farlig"}
            assert df["mailadresse"].str.endswith(".example").all() and df["navn"].notna().all()
            read_ids += list(df["id"])
        assert layer.endswith(("ledning", "komponent", "Ledning", "Komponent"))
    assert sorted(read_ids) == sorted(list(lines["asset_id"]) + list(points["asset_id"]))
    el = pyogrio.read_dataframe(tmp_path / "kystnet-el.gml", layer="Elledning")
    assert {
        "id",
        "fareklasse",
        "vejledendeDybde",
        "noejagtighedsklasse",
        "spaendingsniveau",
        "telefonnummer",
    } <= set(el.columns)
    assert el["vejledendeDybde"].isna().any() and el["vejledendeDybde"].notna().any()
    assert "meget farlig" in set(el["fareklasse"])


# -- climate and energy -----------------------------------------------------------


def test_climate_tables_are_danish_in_magnitude(sample):
    out, _ = sample
    idf = pd.read_csv(out / "climate" / "idf_table.csv")
    depth = idf.set_index(["duration_min", "return_period_years"])["depth_mm"]
    assert 25.0 <= depth[(60, 10)] <= 30.0 and 45.0 <= depth[(60, 100)] <= 60.0
    table = depth.unstack()
    assert (np.diff(table.to_numpy(), axis=0) > 0).all() and (
        np.diff(table.to_numpy(), axis=1) > 0
    ).all()
    factors = pd.read_csv(out / "climate" / "climate_factors.csv")
    assert factors["climate_factor"].between(1.2, 1.4).all()
    sea = pd.read_csv(out / "climate" / "sea_level_scenarios.csv")
    assert set(sea["scenario"]) == {"SSP1-2.6", "SSP2-4.5", "SSP5-8.5"}
    for _, s in sea.groupby("scenario"):
        assert s["year"].min() == 2020 and s["year"].max() == 2150
        assert (np.diff(s["mean_sea_level_m_dvr90"]) >= 0).all()
        assert (s["surge_100y_m_dvr90"] > s["surge_20y_m_dvr90"]).all()
    rain = pd.read_csv(out / "climate" / "rain_10min.csv")
    assert len(rain) == 52_560 and rain["timestamp"].str.endswith("Z").all()
    assert 500.0 <= rain["rain_mm"].sum() <= 1000.0
    events = pd.read_csv(out / "climate" / "rain_events.csv")
    assert events["depth_mm"].sum() == pytest.approx(rain["rain_mm"].sum(), abs=0.5)
    assert events["return_period_years_est"].max() > 20.0, "the designed cloudburst"


def test_energy_series_cover_every_building_hour(sample):
    out, _ = sample
    buildings = pyogrio.read_dataframe(
        out / "buildings.gpkg", layer="buildings", read_geometry=False
    )
    temp = pd.read_csv(out / "energy" / "temperature_hourly.csv")
    assert len(temp) == 8760 and temp["temperature_c"].between(-20.0, 35.0).all()
    path = out / "energy" / "consumption_hourly.csv.gz"
    assert path.read_bytes()[4:8] == b"\0\0\0\0", "no timestamp in the gzip header"
    lines = 0
    with gzip.open(path, "rb") as f:
        header = f.readline()
        for block in iter(lambda: f.read(1 << 24), b""):
            lines += block.count(b"\n")
    assert header == b"building_id,timestamp,electricity_kwh,heat_kwh\n"
    assert lines == len(buildings) * 8760
    head = pd.read_csv(path, nrows=3 * 8760)
    assert set(head["building_id"]) <= set(buildings["building_id"])
    assert (
        head["timestamp"].iloc[0] == "2023-01-01T00:00:00Z"
        and head["timestamp"].iloc[8759] == "2023-12-31T23:00:00Z"
    )
    assert (head[["electricity_kwh", "heat_kwh"]] >= 0).all().all()
    first = head[head["building_id"] == head["building_id"].iloc[0]]
    winter, summer = first["heat_kwh"].iloc[:744].mean(), first["heat_kwh"].iloc[4344:5088].mean()
    assert winter > 2.0 * summer


# -- waste ------------------------------------------------------------------------


def test_waste_layout(sample):
    out, _ = sample
    bins = pyogrio.read_dataframe(out / "waste" / "bins.gpkg", layer="bins")
    stations = pyogrio.read_dataframe(out / "waste" / "bins.gpkg", layer="recycling_stations")
    facilities = pyogrio.read_dataframe(out / "waste" / "bins.gpkg", layer="facilities")
    fleet = pd.read_csv(out / "waste" / "fleet.csv")
    assert 150 <= len(bins) <= 400 and bins["bin_id"].is_unique
    assert set(bins["fraction"]) == {
        "residual",
        "paper",
        "plastic",
        "glass",
        "metal",
        "organic",
        "textile",
    }
    assert set(bins["bin_type"]) == {"underground", "surface", "street_litter"}
    per_station = (
        bins[bins["site_id"].str.startswith("RS")].groupby("site_id")["fraction"].nunique()
    )
    assert len(stations) >= 10 and (per_station >= 3).all()
    assert set(facilities["kind"]) == {"depot", "disposal_site"}
    assert set(bins["fraction"]) <= set(fleet["fraction"])
    b = pyogrio.read_dataframe(out / "buildings.gpkg", layer="buildings")
    assert b.sindex.query(bins.geometry, predicate="intersects")[0].size == 0, (
        "no bin inside a building"
    )


def test_sensor_readings_and_collections_agree(sample):
    out, manifest = sample
    defects = manifest["waste_defects"]
    r = pd.read_csv(out / "waste" / "sensor_readings.csv")
    c = pd.read_csv(out / "waste" / "collections.csv")
    bins = pyogrio.read_dataframe(out / "waste" / "bins.gpkg", layer="bins", read_geometry=False)
    fleet = pd.read_csv(out / "waste" / "fleet.csv")
    bad = r[~r["fill_level"].between(0.0, 1.0)]
    expected = {(d["bin_id"], d["time"]) for d in defects["out_of_range"]}
    assert set(zip(bad["bin_id"], bad["time"], strict=True)) == expected
    dups = r[r.duplicated(keep="first")]
    assert sorted(zip(dups["bin_id"], dups["time"], strict=True)) == sorted(
        (d["bin_id"], d["time"]) for d in defects["duplicates"]
    )
    dead = defects["dead_sensor"]
    assert (r.loc[r["bin_id"] == dead["bin_id"], "time"] <= dead["last_reading"]).all()
    assert (c.loc[c["bin_id"] == dead["bin_id"], "time"] > dead["last_reading"]).any(), (
        "the bin is still emptied"
    )
    assert r.loc[r["fire_flag"] == 1, "temperature_c"].min() > 50.0
    assert len(r) > 90 * 12 * len(bins) * 0.95
    assert c["fill_before"].between(0.0, 1.0).all() and (c["weight_kg"] > 0).all()
    truck_fraction = dict(zip(fleet["truck_id"], fleet["fraction"], strict=True))
    bin_fraction = dict(zip(bins["bin_id"], bins["fraction"], strict=True))
    assert all(
        truck_fraction[t] == bin_fraction[b]
        for b, t in zip(c["bin_id"], c["truck_id"], strict=True)
    )
    clean = r.drop_duplicates()
    clean = clean[clean["fill_level"].between(0.0, 1.0)].assign(
        t=lambda f: pd.to_datetime(f["time"])
    )
    by_bin = {b: g.sort_values("t") for b, g in clean.groupby("bin_id")}
    window = pd.Timedelta(hours=2)
    checked = 0
    for row in c.assign(t=pd.to_datetime(c["time"])).itertuples():
        g = by_bin[row.bin_id]
        before = g[(g["t"] <= row.t) & (g["t"] > row.t - window)]
        after = g[(g["t"] > row.t) & (g["t"] <= row.t + window)]
        if len(before):
            assert before["fill_level"].iloc[-1] <= row.fill_before + 0.06, row
            checked += 1
        if len(after) and row.fill_before >= 0.3:
            assert after["fill_level"].iloc[0] < row.fill_before, row
    assert checked > 0.9 * len(c)


# -- the large sample -----------------------------------------------------------------


@pytest.mark.slow
def test_large_sample_stays_under_4_gib(tmp_path):
    script = textwrap.dedent(
        f"""
        import resource, sys
        from ingest.sample import generate
        generate(sys.argv[1], size="large", seed={SEED}, progress=False)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "large")],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    assert peak_kib < 4 * 1024 * 1024
    with rasterio.open(next((tmp_path / "large" / "terrain").glob("DTM_1km_*.tif"))) as src:
        assert src.width * src.height * 16 >= 50_000_000
