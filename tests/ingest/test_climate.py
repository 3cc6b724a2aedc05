"""The climate family on the real test database: the sample town's files and
real third-party files (rain-idf-graz, sealevel-honolulu) from ../shared/data."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from ingest.climate import KINDS, detect, rain_depth
from ingest.climate_design import interpolate_depth
from ingest.pipelines import IngestOptions, ingest
from ingest.sample.climate import write_climate
from layers import catalog
from layers.errors import InvalidInput, NotFound
from tests.db_helpers import count, drop_layers
from tests.db_helpers import rows as _rows

LAYERS = (
    "climate_rain_gauges", "climate_rain_series", "climate_rain_events", "climate_idf",
    "climate_factors", "climate_sea_level", "climate_sea_level_scenarios",
)  # fmt: skip
GRAZ_STATION = "ehyd-112086"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The sample town's climate files, written once for this module by its generator."""
    out = tmp_path_factory.mktemp("climate_sample")
    write_climate(out, seed=7)
    return out / "climate"


@pytest.fixture
def clean(owner_conn):
    """No climate tables or catalog rows before and after a test."""
    _drop(owner_conn)
    yield
    _drop(owner_conn)


def _drop(conn) -> None:
    drop_layers(conn, LAYERS)


def _count(conn, table: str) -> int | None:
    return count(conn, table)


def _load(database, *paths: Path, **extra) -> list:
    mode = extra.pop("mode", "insert")
    options = IngestOptions(mode=mode, extra=extra, show_progress=False, licence="CC-BY-4.0")
    return ingest(database, "climate", list(paths), options)


# -- the sample town ----------------------------------------------------------------


def test_sample_climate_files_ingest(database, owner_conn, clean, sample):
    files = sorted(sample.glob("*.csv"))
    kinds = {p.name: detect(p).name for p in files}
    assert kinds == {
        "climate_factors.csv": "climate_factors", "idf_table.csv": "idf",
        "rain_10min.csv": "rain_series", "rain_events.csv": "rain_events",
        "rain_gauges.csv": "rain_gauges", "sea_level_scenarios.csv": "sea_level_scenarios",
    }  # fmt: skip
    reports = _load(database, *files)
    loaded = {r.source: (r.layers, r.inserted) for r in reports}
    assert loaded["climate_factors.csv"] == (["climate_factors"], 6)
    assert loaded["idf_table.csv"] == (["climate_idf"], 48)
    assert loaded["rain_10min.csv"] == (["climate_rain_series"], 52_560)
    assert loaded["rain_gauges.csv"] == (["climate_rain_gauges"], 1)
    assert loaded["sea_level_scenarios.csv"] == (["climate_sea_level_scenarios"], 42)
    assert (
        loaded["rain_events.csv"][1]
        == len((sample / "rain_events.csv").read_text().splitlines()) - 1
    )
    idf = _rows(owner_conn, "SELECT depth_mm, intensity_mm_h, intensity_l_s_ha FROM data.climate_idf"
                " WHERE station = 'idf_table' AND duration_min = 60 AND return_period_years = 100")  # fmt: skip
    assert idf[0][0] == pytest.approx(48.0) and idf[0][1] == pytest.approx(48.0)
    assert idf[0][2] == pytest.approx(48.0 / 0.36)
    sea = _rows(owner_conn, "SELECT mean_sea_level_m, surge_100y_m, datum FROM "
                "data.climate_sea_level_scenarios WHERE scenario = 'SSP1-2.6' AND year = 2020")  # fmt: skip
    assert sea == [(0.05, 1.70, "DVR90")]
    gauge = _rows(owner_conn, "SELECT gauge_id, ST_X(geom), ST_Y(geom), ST_SRID(geom) "
                  "FROM data.climate_rain_gauges")  # fmt: skip
    assert gauge == [("EGV-RG1", 722990.0, 6171395.0, 25832)]
    raw = pd.read_csv(sample / "rain_10min.csv")
    burst = raw[raw["timestamp"] == "2023-08-14T15:30:00Z"]["rain_mm"].item()
    assert _rows(owner_conn, "SELECT depth_mm FROM data.climate_rain_series WHERE gauge_id = "
                 "'EGV-RG1' AND time = '2023-08-14 15:30:00+00'") == [(burst,)]  # fmt: skip
    assert burst > 10
    with database.connection("read") as conn:
        assert catalog.get(conn, "climate_rain_gauges").kind == "vector"
        idf_layer = catalog.get(conn, "climate_idf")
    assert (idf_layer.kind, idf_layer.theme, idf_layer.licence) == ("table", "climate", "CC-BY-4.0")


def test_rain_depth_reads_idf_and_climate_factor(database, clean, sample):
    _load(database, sample / "idf_table.csv", sample / "climate_factors.csv")
    with database.connection("read") as conn:
        assert rain_depth(conn, return_period=100, duration_min=60) == pytest.approx(48.0 * 1.4)
        # between tabulated return periods (20, 50) and durations (30, 60): log-linear
        t = (math.log(30) - math.log(20)) / (math.log(50) - math.log(20))
        d = (math.log(45) - math.log(30)) / (math.log(60) - math.log(30))
        got = rain_depth(conn, return_period=30, duration_min=45, climate_factor=1.0)
        rows = {(dur, rp): v for dur, rp, v in _idf(conn)}
        exact = rain_depth(conn, return_period=10, duration_min=60, climate_factor=1.0)
        assert exact == rows[60, 10]
        low = rows[30, 20] + t * (rows[30, 50] - rows[30, 20])
        high = rows[60, 20] + t * (rows[60, 50] - rows[60, 20])
        assert got == pytest.approx(low + d * (high - low))
        factor = 1.33 + t * (1.37 - 1.33)
        assert rain_depth(conn, return_period=30, duration_min=45) == pytest.approx(got * factor)
        with pytest.raises(InvalidInput, match="outside the tabulated 10-1440 min"):
            rain_depth(conn, return_period=10, duration_min=5)
        with pytest.raises(InvalidInput, match="outside the tabulated 2-100 years"):
            rain_depth(conn, return_period=200, duration_min=60)
        with pytest.raises(InvalidInput, match="return_period must be a positive"):
            rain_depth(conn, return_period=0, duration_min=60)


def _idf(conn) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute("SELECT duration_min, return_period_years, depth_mm FROM data.climate_idf")
        return cur.fetchall()


def test_rain_depth_without_tables_or_with_two_stations(database, clean, sample, shared_data):
    with database.connection("read") as conn, pytest.raises(NotFound, match="no IDF table"):
        rain_depth(conn, return_period=10, duration_min=60)
    _load(database, sample / "idf_table.csv")
    _load(database, shared_data / "rain-idf-graz" / "idf_table_UNIX.csv", station=GRAZ_STATION)
    with database.connection("read") as conn:
        with pytest.raises(InvalidInput, match="holds stations ehyd-112086, idf_table"):
            rain_depth(conn, return_period=10, duration_min=60, climate_factor=1.0)
        with pytest.raises(NotFound, match="no climate factors table has been ingested"):
            rain_depth(conn, return_period=10, duration_min=60, station=GRAZ_STATION)
        assert rain_depth(conn, return_period=10, duration_min=60, station=GRAZ_STATION,
                          climate_factor=1.2) == pytest.approx(52.53 * 1.2)  # fmt: skip


def test_interpolate_depth_refuses_holes():
    table = pd.DataFrame({"duration_min": [10, 10, 60], "return_period_years": [2, 10, 2],
                          "depth_mm": [7.0, 13.0, 14.0]})  # fmt: skip
    assert interpolate_depth(table, return_period=2, duration_min=60) == 14.0
    with pytest.raises(InvalidInput, match="lacks an entry"):
        interpolate_depth(table, return_period=5, duration_min=30)


# -- real data ----------------------------------------------------------------------


def test_graz_wide_idf_table_ingests(database, owner_conn, clean, shared_data):
    path = shared_data / "rain-idf-graz" / "idf_table_UNIX.csv"
    assert detect(path).name == "idf"
    (report,) = _load(database, path, station=GRAZ_STATION)
    assert (report.layers, report.inserted, report.rejected) == (["climate_idf"], 21 * 11, 0)
    values = dict(((d, t), (v, i, q)) for d, t, v, i, q in _rows(owner_conn,
                  "SELECT duration_min, return_period_years, depth_mm, intensity_mm_h, "
                  "intensity_l_s_ha FROM data.climate_idf WHERE station = %s", GRAZ_STATION))  # fmt: skip
    # spot values as the file has them: rows 5 min, 60 min and 8640 min
    assert values[5, 1][0] == 8.61 and values[5, 100][0] == 26.32
    assert values[60, 10][:2] == (52.53, pytest.approx(52.53))
    assert values[8640, 100][0] == 202.45
    assert values[5, 1][1] == pytest.approx(8.61 * 12) and values[5, 1][2] == pytest.approx(287.0)


def test_graz_events_ingest(database, owner_conn, clean, shared_data):
    path = shared_data / "rain-idf-graz" / "events.csv"
    (report,) = _load(database, path, station=GRAZ_STATION)
    assert (report.layers, report.inserted) == (["climate_rain_events"], 1356)
    first = _rows(owner_conn, "SELECT start_time, end_time, duration_min, depth_mm, "
                  "return_period_years, return_period_duration_min FROM data.climate_rain_events"
                  " ORDER BY start_time LIMIT 1")  # fmt: skip
    assert first == [(datetime(2007, 9, 18, 11, 9, tzinfo=UTC), datetime(2007, 9, 18, 21, 29, tzinfo=UTC),
                      620.0, 26.5, 0.2, 360.0)]  # fmt: skip
    last = _rows(owner_conn, "SELECT start_time, duration_min, depth_mm FROM "
                 "data.climate_rain_events ORDER BY start_time DESC LIMIT 1")  # fmt: skip
    assert last == [(datetime(2016, 12, 28, 19, 35, tzinfo=UTC), 191.0, 4.0)]


def test_honolulu_sea_level_ingests_in_station_datum(database, owner_conn, clean, shared_data):
    path = shared_data / "sealevel-honolulu" / "HNL2010.asc"
    assert detect(path).name == "sea_level"
    (report,) = _load(database, path)
    assert (report.layers, report.inserted) == (["climate_sea_level"], 8760)
    rows = _rows(owner_conn, "SELECT station, time, level_m, datum FROM data.climate_sea_level "
                 "ORDER BY time")  # fmt: skip
    assert rows[0] == ("HNL2010", datetime(2010, 1, 1, tzinfo=UTC), 1.237, "station datum")
    assert rows[1][1:3] == (datetime(2010, 1, 1, 1, tzinfo=UTC), 1.290)
    assert rows[-1][1:3] == (datetime(2010, 12, 31, 23, tzinfo=UTC), 1.411)
    assert {r[3] for r in rows} == {"station datum"}


def test_rerun_is_a_noop_and_replace_reloads(database, owner_conn, clean, shared_data):
    path = shared_data / "sealevel-honolulu" / "HNL2010.asc"
    _load(database, path)
    (again,) = _load(database, path)
    assert again.skipped and again.inserted == 0
    assert _count(owner_conn, "climate_sea_level") == 8760
    (replaced,) = _load(database, path, mode="replace")
    assert (replaced.deleted, replaced.inserted) == (8760, 8760)
    assert _count(owner_conn, "climate_sea_level") == 8760


# -- broken copies: refused, naming the row and field, nothing loaded -----------------


def _broken(src: Path, dst: Path, line: int, old: str, new: str) -> Path:
    lines = src.read_text().splitlines(keepends=True)
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    dst.write_text("".join(lines))
    return dst


def test_broken_idf_cell_is_refused(database, owner_conn, clean, shared_data, tmp_path):
    # line 10 is data row 9: duration 60 min; the 10-year column holds 52.53
    src = shared_data / "rain-idf-graz" / "idf_table_UNIX.csv"
    path = _broken(src, tmp_path / "idf.csv", 10, "52.53", "52.5x3")
    with pytest.raises(InvalidInput) as err:
        _load(database, path)
    assert (err.value.record, err.value.field) == ("record 9", "10")
    assert "idf.csv" in err.value.detail and "'52.5x3'" in err.value.detail
    path = _broken(src, tmp_path / "idf.csv", 10, "52.53", "52,53")  # one field too many
    with pytest.raises(InvalidInput) as err:
        _load(database, path)
    assert err.value.record == "record 9"
    assert _count(owner_conn, "climate_idf") is None


def test_broken_sea_level_row_is_refused(database, owner_conn, clean, shared_data, tmp_path):
    path = _broken(shared_data / "sealevel-honolulu" / "HNL2010.asc", tmp_path / "HNL2010.asc",
                   4000, "  ", "  1O")  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        _load(database, path)
    assert err.value.record == "record 4000"
    assert err.value.field == "column 2 (mm above station datum)"
    assert _count(owner_conn, "climate_sea_level") is None


def test_broken_event_is_refused_and_earlier_state_kept(
    database, owner_conn, clean, shared_data, tmp_path
):
    good = shared_data / "rain-idf-graz" / "events.csv"
    _load(database, good, station=GRAZ_STATION)
    lines = good.read_text().splitlines(keepends=True)
    lines[17] = lines[17].replace(lines[17].split(",")[3], "n/a", 1)  # row 17, rain_sum
    path = tmp_path / "events.csv"
    path.write_text("".join(lines))
    with pytest.raises(InvalidInput) as err:
        _load(database, path, station=GRAZ_STATION, mode="replace")
    assert (err.value.record, err.value.field) == ("record 17", "rain_sum")
    assert _count(owner_conn, "climate_rain_events") == 1356


def test_inconsistent_units_and_missing_horizon_are_refused(database, owner_conn, clean, tmp_path):
    idf = tmp_path / "idf_long.csv"
    idf.write_text("duration_min,return_period_years,depth_mm,intensity_mm_per_h\n"
                   "10,2,6.7,40.3\n60,2,14.0,38.9\n")  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        _load(database, idf)
    assert (err.value.record, err.value.field) == ("record 2", "depth_mm")
    factors = tmp_path / "factors.csv"
    factors.write_text("return_period_years,climate_factor\n2,1.2\n100,1.4\n")
    with pytest.raises(InvalidInput, match="horizon_years"):
        _load(database, factors)
    (report,) = _load(database, factors, horizon_years="100", scenario="RCP8.5")
    assert report.inserted == 2
    assert _rows(owner_conn, "SELECT scenario, horizon_years, climate_factor FROM "
                 "data.climate_factors ORDER BY 3") == [("RCP8.5", 100, 1.2), ("RCP8.5", 100, 1.4)]  # fmt: skip
    assert _count(owner_conn, "climate_idf") is None


def test_unrecognised_file_lists_the_kinds(tmp_path):
    path = tmp_path / "mystery.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InvalidInput) as err:
        detect(path)
    for kind in KINDS:
        assert kind in err.value.detail
    assert "duration_min" in err.value.detail and "columns: a, b, c" in err.value.detail
    with pytest.raises(InvalidInput, match="unknown climate kind 'rain'"):
        detect(path, "rain")


def test_rain_series_with_locations_in_local_time(database, owner_conn, clean, tmp_path):
    path = tmp_path / "gauges_local.csv"
    path.write_text(
        "station;lon;lat;datetime;precipitation_mm\n"
        "G1;12,5;55,7;2023-03-26 01:50;0,2\n"
        "G1;12,5;55,7;2023-03-26 02:10;1,0\n"  # does not exist in Danish time: dropped
        "G1;12,5;55,7;2023-03-26 03:00;0,4\n"
        "G2;12,6;55,8;2023-07-01 12:00;3,2\n"
    )  # fmt: skip
    assert detect(path).name == "rain_series"
    (report,) = _load(database, path, timezone="Europe/Copenhagen")
    assert report.layers == ["climate_rain_series", "climate_rain_gauges"]
    assert any("record" in w and "does not exist" in w for w in report.warnings)
    assert _rows(owner_conn, "SELECT gauge_id, time, depth_mm FROM data.climate_rain_series "
                 "ORDER BY gauge_id, time") == [
        ("G1", datetime(2023, 3, 26, 0, 50, tzinfo=UTC), 0.2),
        ("G1", datetime(2023, 3, 26, 1, 0, tzinfo=UTC), 0.4),
        ("G2", datetime(2023, 7, 1, 10, 0, tzinfo=UTC), 3.2),
    ]  # fmt: skip
    gauges = _rows(owner_conn, "SELECT gauge_id, ST_Transform(geom, 4326) FROM "
                   "data.climate_rain_gauges ORDER BY 1")  # fmt: skip
    assert [g[0] for g in gauges] == ["G1", "G2"]
    lonlat = _rows(owner_conn, "SELECT round(ST_X(ST_Transform(geom, 4326))::numeric, 6), "
                   "round(ST_Y(ST_Transform(geom, 4326))::numeric, 6) FROM "
                   "data.climate_rain_gauges WHERE gauge_id = 'G1'")  # fmt: skip
    assert [tuple(map(float, r)) for r in lonlat] == [(12.5, 55.7)]
