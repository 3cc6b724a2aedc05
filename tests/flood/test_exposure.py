"""flood.exposure on the real test database: a pond over known buildings, roads and assets.

The module fixture creates the five source layers (with the columns the real
pipelines give them) as the ingest role, so privileges are those of real loads. The
depths per object are checked against known values and against a brute force
with shapely over every cell.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from psycopg2 import sql
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, box

from flood.exposure import assets_layer_id, exposure, store_exposure
from layers import catalog
from layers.errors import CRSMismatch, DatabaseError, InvalidInput
from tests.db_helpers import drop_layers

X0, Y0 = 700000.0, 6100000.0
TRANSFORM = Affine(1.0, 0.0, X0, 0.0, -1.0, Y0)
SHAPE = (100, 100)
THRESHOLD = 0.05
STORED = "flood_exposure_pond"


def depth_raster() -> np.ndarray:
    """A 1 m pond (rows and columns 20-59) with a 1.5 m core, a 3 cm rim and a nodata block."""
    depth = np.zeros(SHAPE)
    depth[20:60, 20:60] = 1.0
    depth[40:50, 30:40] = 1.5
    depth[60:65, 20:60] = 0.03  # wet, below the threshold
    depth[80:100, 0:30] = np.nan  # no data
    return depth


def xy(col: float, row: float) -> tuple[float, float]:
    """Coordinates of a position given in cells (col, row from the north-west corner)."""
    return X0 + col, Y0 - row


def cells_box(c0: float, r0: float, c1: float, r1: float):
    (xa, ya), (xb, yb) = xy(c0, r0), xy(c1, r1)
    return box(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))


BUILDINGS = {
    "B1": (cells_box(25.3, 45.3, 35.3, 55.3), "residential", 2),  # 100 centres, 25 in the core
    "B2": (cells_box(55.3, 30.3, 65.3, 34.3), "office", 4),  # half in the pond
    "B3": (cells_box(30.3, 61.3, 34.3, 63.3), "garage", 1),  # in the rim only
    "B4": (cells_box(80.3, 10.3, 85.3, 15.3), "school", 2),  # dry
    "B5": (cells_box(40.05, 39.05, 40.45, 39.45), "shed", 1),  # no cell centre inside
    "B6": (cells_box(59.8, 49.6, 60.2, 49.9), "shed", 1),  # small, on the pond's edge
    "B7": (cells_box(150, 150, 160, 160), "farm", 1),  # outside the raster
    # one part in the pond, one dry; no use or storeys
    "B8": (MultiPolygon([cells_box(21.3, 21.3, 23.3, 23.3), cells_box(70.3, 70.3, 72.3, 72.3)]),
           None, None),
}  # fmt: skip
ROADS = {
    "R1": (LineString([xy(0.5, 45.5), xy(99.5, 45.5)]), "Strandvejen", "primary"),  # the core
    "R2": (MultiLineString([[xy(10.2, 10.7), xy(45.6, 38.1)], [xy(70.3, 70.1), xy(90.4, 95.2)]]),
           "Skovvej", "residential"),
    "R3": (LineString([xy(5.5, 5.5), xy(15.5, 8.5)]), "Markvej", "track"),  # dry
    "R4": (LineString([xy(25.5, 95.5), xy(25.5, 40.5)]), "Mosevej", "service"),  # from nodata
}  # fmt: skip
LINES = {
    # 3D, as LER delivers them (z: height DVR90)
    "L1": (LineString([(*xy(25.5, 10.5), 2.0), (*xy(25.5, 70.5), 2.5)]), "Egevig El",
           "electricity", "dangerous"),
    "L2": (LineString([(*xy(70.5, 5.5), 1.0), (*xy(95.5, 30.5), 1.0)]), "Egevig Gas", "gas",
           "very_dangerous"),
    "L3": (LineString([(*xy(45.2, 15.3), 1.0), (*xy(45.2, 62.4), 1.2)]), "Egevig Fiber",
           "telecom", None),
}  # fmt: skip
POINTS = {
    "P1": (MultiPoint([xy(33.5, 44.5)]), "Egevig El", "electricity", "dangerous"),
    "P2": (MultiPoint([xy(40.5, 62.5)]), "Egevig Vand", "water", "not_dangerous"),
    "P3": (MultiPoint([xy(90.5, 5.5)]), "Egevig Vand", "water", "not_dangerous"),
}
AREAS = {
    "A1": (cells_box(50.3, 10.3, 70.3, 30.3), "Egevig Gas", "gas", "very_dangerous"),
}


def _layers():
    common = {"kind": "vector", "licence": "CC0-1.0"}
    return [
        (catalog.Layer(id="energy_buildings", title="Buildings", theme="energy",
                       table_schema="data", table_name="energy_buildings", **common),
         {"building_id": "text", "use": "text", "storeys": "bigint"}, "MultiPolygon",
         [(k, (u, s), g) for k, (g, u, s) in BUILDINGS.items()]),
        (catalog.Layer(id="water_roads", title="Roads", theme="water", table_schema="data",
                       table_name="water_roads", **common),
         {"road_id": "text", "name": "text", "road_class": "text"}, "MultiLineString",
         [(k, (n, c), g) for k, (g, n, c) in ROADS.items()]),
        *[(catalog.Layer(id=layer_id, title=layer_id, theme="utilities",
                         table_schema="restricted", table_name=layer_id, access="restricted",
                         **common),
           {"asset_id": "text", "owner": "text", "utility_type": "text", "hazard_class": "text",
            "depth_m": "double precision"}, geometry,
           [(k, (o, t, h, None), g) for k, (g, o, t, h) in objects.items()])
          for layer_id, geometry, objects in (
              ("utilities_lines", "MultiLineStringZ", LINES),
              ("utilities_points", "MultiPoint", POINTS),
              ("utilities_areas", "MultiPolygon", AREAS))],
    ]  # fmt: skip


def _drop(conn) -> None:
    drop_layers(conn, ["energy_buildings", "water_roads"])
    drop_layers(conn, ["utilities_lines", "utilities_points", "utilities_areas",
                       STORED, assets_layer_id(STORED)], schema="restricted")  # fmt: skip
    drop_layers(conn, [STORED])


@pytest.fixture(scope="module")
def town(database):
    """The five source layers, created and registered as the ingest role."""
    with database.connection("ingest") as conn:
        _drop(conn)
        for layer, columns, geometry, rows in _layers():
            table = layer.qualified_table
            defs = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items()
            )
            with conn.cursor() as cur:
                cur.execute(sql.SQL(
                    "CREATE TABLE {} (fid bigserial PRIMARY KEY, {}, geom geometry({}, 25832),"
                    " _source text NOT NULL DEFAULT 'test', _record text NOT NULL DEFAULT '1')"
                ).format(table, defs, sql.SQL(geometry)))  # fmt: skip
                insert = sql.SQL(
                    "INSERT INTO {} ({}, geom) VALUES ({}, ST_Multi(ST_GeomFromText(%s, 25832)))"
                ).format(table, sql.SQL(", ").join(map(sql.Identifier, columns)),
                         sql.SQL(", ").join(sql.Placeholder() * len(columns)))  # fmt: skip
                for key, values, geom in rows:
                    cur.execute(insert, (key, *values, geom.wkt))
            catalog.register(conn, layer)
    yield database
    with database.connection("ingest") as conn:
        _drop(conn)


@pytest.fixture(scope="module")
def result(town):
    return exposure(town, depth_raster(), TRANSFORM, threshold_m=THRESHOLD)


# -- brute force --------------------------------------------------------------------


def _cells():
    rows, cols = np.indices(SHAPE)
    boxes = shapely.box(X0 + cols, Y0 - rows - 1, X0 + cols + 1, Y0 - rows)
    return rows.ravel(), cols.ravel(), boxes.ravel()


ROWS, COLS, BOXES = _cells()
DEPTH = depth_raster().ravel()


def brute_polygon(geom) -> dict:
    centres = shapely.contains_xy(geom, X0 + COLS + 0.5, Y0 - ROWS - 0.5)
    small = not centres.any()
    covered = shapely.area(shapely.intersection(BOXES, geom)) > 0 if small else centres
    depth = DEPTH[covered]
    known = ~np.isnan(depth)
    wet = covered & (DEPTH >= THRESHOLD)
    area = (shapely.area(shapely.intersection(BOXES[wet], geom)).sum() if small
            else wet.sum() * 1.0)  # fmt: skip
    return {"max": depth[known].max(), "mean": depth[known].mean(), "area": area}


def brute_line(geom) -> dict:
    lengths = shapely.length(shapely.intersection(BOXES, shapely.force_2d(geom)))
    on = (lengths > 1e-9) & ~np.isnan(DEPTH)
    wet = on & (DEPTH >= THRESHOLD)
    return {"max": DEPTH[on].max(), "mean": (DEPTH[on] * lengths[on]).sum() / lengths[on].sum(),
            "length": lengths[wet].sum()}  # fmt: skip


def brute_point(geom) -> float:
    x, y = geom.geoms[0].x, geom.geoms[0].y
    return DEPTH[int(Y0 - y) * SHAPE[1] + int(x - X0)]


def _by_id(frame) -> dict:
    return {row["id"]: row for _, row in frame.iterrows()}


# -- tests --------------------------------------------------------------------------


def test_buildings_known_depths(result):
    got = _by_id(result.buildings)
    assert set(got) == {"B1", "B2", "B3", "B5", "B6", "B8"}  # B4 dry, B7 outside
    b1 = got["B1"]
    assert (b1["max_depth_m"], b1["mean_depth_m"]) == (1.5, pytest.approx(1.125))
    assert b1["flooded_area_m2"] == 100.0 and b1["flooded"]
    assert (b1["layer"], b1["use"], b1["storeys"]) == ("energy_buildings", "residential", 2)
    assert got["B2"]["mean_depth_m"] == pytest.approx(0.5) and got["B2"]["flooded_area_m2"] == 20
    assert got["B3"]["max_depth_m"] == pytest.approx(0.03) and not got["B3"]["flooded"]
    assert got["B3"]["flooded_area_m2"] == 0
    # a shed smaller than a cell: the cell it touches, its own area
    assert got["B5"]["max_depth_m"] == 1.0 and got["B5"]["flooded_area_m2"] == pytest.approx(0.16)
    assert got["B6"]["mean_depth_m"] == pytest.approx(0.5)
    assert got["B6"]["flooded_area_m2"] == pytest.approx(0.2 * 0.3)
    assert pd.isna(got["B8"]["use"]) and got["B8"]["flooded_area_m2"] == 4.0
    assert result.buildings.crs.to_epsg() == 25832


@pytest.mark.parametrize("key", [k for k in BUILDINGS if k not in ("B4", "B7")])
def test_buildings_match_brute_force(result, key):
    row, expected = _by_id(result.buildings)[key], brute_polygon(BUILDINGS[key][0])
    assert row["max_depth_m"] == pytest.approx(expected["max"])
    assert row["mean_depth_m"] == pytest.approx(expected["mean"])
    assert row["flooded_area_m2"] == pytest.approx(expected["area"])
    assert row["flooded"] == (expected["max"] >= THRESHOLD)


def test_roads_known_depths(result):
    got = _by_id(result.roads)
    assert set(got) == {"R1", "R2", "R4"}  # R3 dry
    r1 = got["R1"]
    assert (r1["name"], r1["road_class"], r1["layer"]) == ("Strandvejen", "primary", "water_roads")
    assert r1["flooded_length_m"] == 40.0 and r1["max_depth_m"] == 1.5
    # R4 starts in the nodata block: only its 39.5 m from row 80 to row 40.5 count
    r4 = got["R4"]
    assert r4["max_depth_m"] == 1.0 and r4["flooded_length_m"] == pytest.approx(19.5, abs=0.3)
    assert r4["mean_depth_m"] == pytest.approx((19.5 * 1.0 + 5 * 0.03) / 39.5, abs=0.01)


@pytest.mark.parametrize("key", [k for k in ROADS if k != "R3"])
def test_roads_match_brute_force(result, key):
    geom = ROADS[key][0]
    row, expected = _by_id(result.roads)[key], brute_line(geom)
    assert row["max_depth_m"] == pytest.approx(expected["max"])
    assert row["mean_depth_m"] == pytest.approx(expected["mean"], abs=0.02)
    # sampling every half cell: within a quarter cell per wet/dry change (at most 4 here)
    assert row["flooded_length_m"] == pytest.approx(expected["length"], abs=1.0)


def test_buried_assets(result):
    got = _by_id(result.assets)
    assert set(got) == {"L1", "L3", "P1", "P2", "A1"}  # L2 and P3 dry
    for key in ("L1", "L3"):
        expected = brute_line(LINES[key][0])
        assert got[key]["max_depth_m"] == pytest.approx(expected["max"])
        assert got[key]["flooded_length_m"] == pytest.approx(expected["length"], abs=0.5)
        assert math.isnan(got[key]["flooded_area_m2"])
    assert got["L1"]["flooded_length_m"] == pytest.approx(40.0, abs=0.25)
    assert got["L3"]["utility_type"] == "telecom" and pd.isna(got["L3"]["hazard_class"])
    assert got["P1"]["max_depth_m"] == brute_point(POINTS["P1"][0]) == 1.5
    assert got["P2"]["max_depth_m"] == pytest.approx(0.03) and not got["P2"]["flooded"]
    assert math.isnan(got["P1"]["flooded_length_m"]) and math.isnan(got["P1"]["flooded_area_m2"])
    a1 = brute_polygon(AREAS["A1"][0])
    assert got["A1"]["flooded_area_m2"] == a1["area"] == 10 * 10
    assert (got["A1"]["owner"], got["A1"]["layer"]) == ("Egevig Gas", "utilities_areas")


def test_totals(result):
    totals = result.totals
    flooded = result.buildings[result.buildings["flooded"]]
    assert totals["buildings"]["count"] == 5 and totals["buildings"]["wet"] == 6
    assert totals["buildings"]["flooded_area_m2"] == pytest.approx(flooded["flooded_area_m2"].sum())
    assert totals["buildings"]["max_depth_m"] == 1.5
    roads = result.roads
    assert totals["roads"]["count"] == 3
    assert totals["roads"]["flooded_length_m"] == pytest.approx(roads["flooded_length_m"].sum())
    assets = totals["assets"]
    assert assets["count"] == 4 and assets["wet"] == 5
    assert set(assets["by_utility_type"]) == {"electricity", "telecom", "gas"}
    assert assets["by_utility_type"]["electricity"]["count"] == 2  # L1 and P1
    assert assets["by_utility_type"]["gas"]["flooded_area_m2"] == 100.0
    assert assets["by_hazard_class"]["unknown"]["count"] == 1  # L3
    assert assets["by_hazard_class"]["dangerous"]["flooded_length_m"] == pytest.approx(
        _by_id(result.assets)["L1"]["flooded_length_m"])  # fmt: skip


def test_threshold_is_a_setting(town):
    deeper = exposure(town, depth_raster(), TRANSFORM, threshold_m=1.2, classes=("buildings",))
    flooded = set(deeper.buildings.loc[deeper.buildings["flooded"], "id"])
    assert flooded == {"B1"}  # the only one over the 1.5 m core
    assert deeper.totals["buildings"]["flooded_area_m2"] == 25.0
    assert len(deeper.roads) == 0 and len(deeper.assets) == 0  # not asked for


def test_a_dry_raster_reads_nothing_and_bad_input_is_refused(town):
    dry = exposure(town, np.zeros(SHAPE), TRANSFORM)
    assert (len(dry.buildings), len(dry.roads), len(dry.assets)) == (0, 0, 0)
    assert dry.totals["assets"]["count"] == 0 and dry.totals["assets"]["by_utility_type"] == {}
    with pytest.raises(CRSMismatch, match="EPSG:25832"):
        exposure(town, depth_raster(), TRANSFORM, crs=25833)
    with pytest.raises(InvalidInput, match="threshold_m"):
        exposure(town, depth_raster(), TRANSFORM, threshold_m=0)
    with pytest.raises(InvalidInput, match="north-up"):
        exposure(town, depth_raster(), Affine(1, 0.1, X0, 0, -1, Y0))
    with pytest.raises(InvalidInput, match="unknown exposure class"):
        exposure(town, depth_raster(), TRANSFORM, classes=("bins",))


def test_nodata_mask_counts_like_nan(town):
    depth = np.nan_to_num(depth_raster(), nan=5.0)  # 5 m of "water" where there is no data
    masked = exposure(town, depth, TRANSFORM, nodata=np.isnan(depth_raster()),
                      classes=("roads",))  # fmt: skip
    assert _by_id(masked.roads)["R4"]["max_depth_m"] == 1.0


def test_stored_layers_open_and_restricted(town, result):
    open_layer, assets = store_exposure(town, result, STORED, "Pond exposure",
                                        properties={"scenario": "pond"})  # fmt: skip
    assert assets.id == "flood_exposure_assets_pond"
    assert (open_layer.theme, open_layer.access, open_layer.table_schema) == (
        "analysis", "open", "data")  # fmt: skip
    assert (assets.theme, assets.access, assets.table_schema) == (
        "analysis", "restricted", "restricted")  # fmt: skip
    assert open_layer.row_count == len(result.buildings) + len(result.roads) == 9
    assert assets.row_count == len(result.assets) == 5
    assert open_layer.properties["scenario"] == "pond"
    assert open_layer.properties["totals"]["buildings"]["count"] == 5
    assert open_layer.extent is not None
    with town.connection("read") as conn:
        listed = {layer.id for layer in catalog.list_layers(conn, theme="analysis", access="open")}
        assert STORED in listed and assets.id not in listed
        with conn.cursor() as cur:
            cur.execute(sql.SQL(
                "SELECT object_class, object_id, max_depth_m, flooded, flooded_area_m2,"
                " flooded_length_m, ST_SRID(geom) FROM {} ORDER BY object_id"
            ).format(open_layer.qualified_table))  # fmt: skip
            rows = cur.fetchall()
    assert [r[1] for r in rows] == ["B1", "B2", "B3", "B5", "B6", "B8", "R1", "R2", "R4"]
    assert rows[0][:5] == ("building", "B1", 1.5, True, 100.0) and rows[0][6] == 25832
    assert rows[6][0] == "road" and rows[6][5] == 40.0 and rows[6][4] is None
    with pytest.raises(DatabaseError), town.connection("read") as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(assets.qualified_table))
    with town.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT object_id, owner, utility_type, max_depth_m FROM {}"
                            " ORDER BY object_id").format(assets.qualified_table))  # fmt: skip
        stored = cur.fetchall()
    assert [r[0] for r in stored] == ["A1", "L1", "L3", "P1", "P2"]
    assert stored[3] == ("P1", "Egevig El", "electricity", 1.5)
    again, _ = store_exposure(town, result, STORED, "Pond exposure")  # a rerun replaces
    assert again.row_count == 9 and "scenario" not in again.properties


def test_bad_layer_ids_are_refused(town, result):
    with pytest.raises(InvalidInput, match="not a valid layer id"):
        store_exposure(town, result, "Flood-Exposure", "x")
    with pytest.raises(InvalidInput, match="not a valid layer id"):
        store_exposure(town, result, "flood_exposure_" + "x" * 45, "x")  # assets id too long
