"""The energy family on the real test database: the sample town's buildings,
consumption and weather, and real third-party files (energy-dk) from ../shared/data."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from ingest.energy import KINDS, detect
from ingest.pipelines import IngestOptions, ingest
from ingest.sample import generate
from layers import catalog
from layers.errors import InvalidInput
from tests.db_helpers import count, drop_layers
from tests.db_helpers import rows as _rows

LAYERS = ("energy_series", "energy_weather", "energy_buildings", "energy_consumption_hourly",
          "energy_heat_density")  # fmt: skip
HOURS = 8760
SLICE_BUILDINGS = 4


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The sample town, generated once for this module."""
    out = tmp_path_factory.mktemp("energy_sample")
    generate(out, size="small", seed=11, progress=False)
    return out


@pytest.fixture(scope="module")
def consumption(sample, tmp_path_factory) -> Path:
    """The first buildings' full year of the sample's consumption file (gzip, as written)."""
    path = tmp_path_factory.mktemp("energy_slice") / "consumption_hourly.csv.gz"
    with gzip.open(sample / "energy" / "consumption_hourly.csv.gz", "rt") as src:
        lines = list(itertools.islice(src, 1 + SLICE_BUILDINGS * HOURS))
    with gzip.open(path, "wt") as dst:
        dst.writelines(lines)
    return path


@pytest.fixture
def clean(owner_conn):
    """No energy tables or catalog rows before and after a test."""
    _drop(owner_conn)
    yield
    _drop(owner_conn)


def _drop(conn) -> None:
    drop_layers(conn, LAYERS)


def _count(conn, table: str) -> int | None:
    return count(conn, table)


def _load(database, *paths: Path, skip_invalid: bool = False, **extra) -> list:
    mode = extra.pop("mode", "insert")
    options = IngestOptions(mode=mode, extra=extra, show_progress=False, skip_invalid=skip_invalid,
                            licence="CC-BY-4.0")  # fmt: skip
    return ingest(database, "energy", list(paths), options)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- the sample town ----------------------------------------------------------------


def test_sample_buildings_consumption_weather_and_heat_density(
    database, owner_conn, clean, sample, consumption
):
    weather = sample / "energy" / "temperature_hourly.csv"
    buildings = sample / "buildings.gpkg"
    assert [detect(p).name for p in (consumption, weather, buildings)] == [
        "consumption", "weather", "buildings"]  # fmt: skip
    reports = _load(database, consumption, weather, buildings)  # buildings go first
    assert [(r.source, r.layers) for r in reports] == [
        ("buildings.gpkg", ["energy_buildings"]),
        ("consumption_hourly.csv.gz", ["energy_consumption_hourly"]),
        ("temperature_hourly.csv", ["energy_weather"]),
    ]
    frame = gpd.read_file(buildings)
    assert reports[0].inserted == len(frame)
    assert reports[1].inserted == SLICE_BUILDINGS * HOURS and reports[2].inserted == HOURS
    raw = pd.read_csv(consumption)
    first = raw.iloc[0]
    assert _rows(owner_conn, "SELECT electricity_kwh, heat_kwh FROM data.energy_consumption_hourly"
                 " WHERE building_id = %s AND time = %s", first["building_id"],
                 _utc(2023, 1, 1)) == [(first["electricity_kwh"], first["heat_kwh"])]  # fmt: skip
    annual = raw.groupby("building_id")[["electricity_kwh", "heat_kwh"]].sum()
    stored = _rows(owner_conn, "SELECT building_id, annual_electricity_kwh, annual_heat_kwh, "
                   "consumption_hours, heat_installation FROM data.energy_buildings "
                   "WHERE annual_heat_kwh IS NOT NULL")  # fmt: skip
    assert len(stored) == SLICE_BUILDINGS
    for building_id, electricity, heat, hours, _ in stored:
        assert electricity == pytest.approx(annual.loc[building_id, "electricity_kwh"])
        assert heat == pytest.approx(annual.loc[building_id, "heat_kwh"])
        assert hours == HOURS
    _check_density(owner_conn, frame, annual)
    with database.connection("read") as conn:
        layer = catalog.get(conn, "energy_heat_density")
    assert (layer.theme, layer.kind, layer.properties["cell_size_m"]) == ("energy", "vector", 100)
    assert layer.row_count == _count(owner_conn, "energy_heat_density")


def _check_density(conn, frame: gpd.GeoDataFrame, annual: pd.DataFrame) -> None:
    """The grid as pandas computes it from the file and the consumption slice."""
    points = shapely.point_on_surface(frame.geometry.to_numpy())
    b = pd.DataFrame({
        "cell": [f"100m_{int(y // 100)}_{int(x // 100)}"
                 for x, y in zip(shapely.get_x(points), shapely.get_y(points), strict=True)],
        "inst": frame["heat_installation"],
        "heat": frame["building_id"].map(annual["heat_kwh"]),
    })  # fmt: skip
    heat = b.groupby("cell")["heat"].sum(min_count=1)
    known = b[b["inst"].notna()]
    not_dh = known[known["inst"] != "district_heating"].groupby("cell")["heat"].sum()
    share = not_dh.reindex(heat.index, fill_value=0.0) / known.groupby("cell")["heat"].sum(
        min_count=1
    )
    kinds = known.groupby(["cell", "inst"]).agg(h=("heat", lambda v: v.sum(min_count=1)),
                                                n=("heat", "size")).reset_index()  # fmt: skip
    kinds = kinds.sort_values(["cell", "h", "n", "inst"], ascending=[True, False, False, True],
                              na_position="last")  # fmt: skip
    dominant = kinds.drop_duplicates("cell").set_index("cell")["inst"]
    cells = {c[0]: c[1:] for c in _rows(conn, "SELECT cell_id, heat_demand_mwh, "
             "heat_density_mwh_ha, building_count, buildings_without_data, "
             "dominant_heat_installation, share_not_district_heating FROM data.energy_heat_density")}  # fmt: skip
    assert set(cells) == set(b["cell"])
    counts = b.groupby("cell").size()
    for cell, (mwh, density, n, nodata, inst, frac) in cells.items():
        expected = heat.get(cell)
        assert n == counts[cell] and nodata == b[b["cell"] == cell]["heat"].isna().sum()
        if pd.isna(expected):
            assert mwh is None and density is None and frac is None
        else:
            assert mwh == pytest.approx(expected / 1000) and density == pytest.approx(mwh)
            assert frac == pytest.approx(share[cell])
        assert inst == dominant[cell]
    assert sum(1 for c in cells.values() if c[0] is not None) >= 1


def test_consumption_of_unknown_building_is_refused_or_skipped(
    database, owner_conn, clean, sample, consumption, tmp_path
):
    _load(database, sample / "buildings.gpkg")
    with gzip.open(consumption, "rt") as fh:
        lines = list(itertools.islice(fh, 1 + HOURS + 10))
    stranger = "00000000-0000-4000-8000-000000000000"
    lines[HOURS + 3] = stranger + lines[HOURS + 3][36:]  # data row HOURS + 3
    path = tmp_path / "consumption.csv"
    path.write_text("".join(lines))
    with pytest.raises(InvalidInput) as err:
        _load(database, path)
    assert (err.value.record, err.value.field) == (f"record {HOURS + 3}", "building_id")
    assert stranger in err.value.detail
    assert _count(owner_conn, "energy_consumption_hourly") is None
    (report,) = _load(database, path, skip_invalid=True)
    assert report.inserted == HOURS + 9
    assert any("1 rows of buildings not in energy_buildings" in w for w in report.warnings)


def test_broken_consumption_value_is_refused(
    database, owner_conn, clean, sample, consumption, tmp_path
):
    _load(database, sample / "buildings.gpkg")
    with gzip.open(consumption, "rt") as fh:
        lines = list(itertools.islice(fh, 1 + 50))
    cells = lines[7].rstrip("\n").split(",")
    lines[7] = ",".join([*cells[:3], "4.2.1"]) + "\n"  # data row 7, heat_kwh
    path = tmp_path / "consumption.csv"
    path.write_text("".join(lines))
    with pytest.raises(InvalidInput) as err:
        _load(database, path)
    assert (err.value.record, err.value.field) == ("record 7", "heat_kwh")
    assert _count(owner_conn, "energy_consumption_hourly") is None


def test_naive_consumption_times_are_danish_per_building(
    database, owner_conn, clean, sample, consumption, tmp_path
):
    _load(database, sample / "buildings.gpkg")
    ids = pd.read_csv(consumption, nrows=HOURS + 1)["building_id"].unique()[:2].tolist()
    local = ["2023-10-29 01:00", "2023-10-29 02:00", "2023-10-29 02:00", "2023-10-29 03:00"]
    lines = ["building_id,timestamp,electricity_kwh,heat_kwh"]
    lines += [f"{b},{t},{k}.0,1.5" for b in ids for k, t in enumerate(local)]
    path = tmp_path / "local.csv"
    path.write_text("\n".join(lines) + "\n")
    (report,) = _load(database, path)
    assert report.inserted == 8
    rows = _rows(owner_conn, "SELECT building_id, time, electricity_kwh FROM "
                 "data.energy_consumption_hourly ORDER BY building_id, time")  # fmt: skip
    hours = [_utc(2023, 10, 28, 23), _utc(2023, 10, 29, 0), _utc(2023, 10, 29, 1),
             _utc(2023, 10, 29, 2)]  # fmt: skip
    assert sorted(rows) == sorted((b, t, float(k)) for b in ids for k, t in enumerate(hours))


# -- real data: energy-dk -------------------------------------------------------------


def test_energy_dk_consumption_and_weather(database, owner_conn, clean, shared_data):
    path = shared_data / "energy-dk" / "output_file.csv"
    assert detect(path).name == "series"
    (report,) = _load(database, path)
    hours = 26_304 - 3  # three March hours that do not exist in Danish time are dropped
    assert report.layers == ["energy_series", "energy_weather"]
    assert report.inserted == 5 * hours + hours
    assert any("records 2115, 10851, 19587" in w for w in report.warnings)
    assert any("records 7155, 16059, 24795" in w and "only once" in w for w in report.warnings)
    counts = dict(_rows(owner_conn, "SELECT quantity, count(*) FROM data.energy_series GROUP BY 1"))
    assert counts == {q: hours for q in ("gross_consumption_mwh", "is_holiday", "electric_cars",
                                         "plug_in_hybrid_cars", "el_price")}  # fmt: skip
    # row 1: 2020-01-01 00:00 Danish time is 2019-12-31 23:00 UTC
    first = dict((q, (v, u)) for q, v, u in _rows(owner_conn, "SELECT quantity, value, unit FROM "
                 "data.energy_series WHERE area = 'DK' AND time = %s", _utc(2019, 12, 31, 23)))  # fmt: skip
    assert first["gross_consumption_mwh"] == (3331.3472899999997, "MWh")
    assert first["el_price"] == (0.24965, "DKK/kWh")
    assert _rows(owner_conn, "SELECT station, temperature_c, humidity_pct, wind_speed_m_s FROM "
                 "data.energy_weather WHERE time = %s", _utc(2019, 12, 31, 23)) == [
        ("DK", 0.1875, 83.9166666666667, 4.91666666666667)]  # fmt: skip
    # the October hour the file gives once (5930 MWh, both hours summed) is summer time
    october = _rows(owner_conn, "SELECT time, value FROM data.energy_series WHERE quantity = "
                    "'gross_consumption_mwh' AND time BETWEEN %s AND %s ORDER BY time",
                    _utc(2020, 10, 24, 23), _utc(2020, 10, 25, 2))  # fmt: skip
    assert october == [(_utc(2020, 10, 24, 23), 3016.7333989999997),
                       (_utc(2020, 10, 25, 0), 5930.4812010000005),
                       (_utc(2020, 10, 25, 2), 2933.743286)]  # fmt: skip
    # summer: 2022-07-01 12:00 Danish time is 10:00 UTC
    raw = pd.read_csv(path).set_index("HourDK")
    assert _rows(owner_conn, "SELECT value FROM data.energy_series WHERE quantity = "
                 "'gross_consumption_mwh' AND time = %s", _utc(2022, 7, 1, 10)) == [
        (raw.loc["2022-07-01 12:00:00", "GrossConsumptionMWh"],)]  # fmt: skip


def test_energy_dk_prices_per_area(database, owner_conn, clean, shared_data):
    path = shared_data / "energy-dk" / "EL_price_interpolated.csv"
    (report,) = _load(database, path)
    assert report.inserted == 2 * (54_054 - 6)  # six spring hours that do not exist dropped
    assert dict(_rows(owner_conn, "SELECT area, count(*) FROM data.energy_series GROUP BY 1")) == {
        "DK1": 54_048, "DK2": 54_048}  # fmt: skip
    assert _rows(owner_conn, "SELECT area, value, unit FROM data.energy_series WHERE time = %s "
                 "ORDER BY area", _utc(2017, 12, 31, 23)) == [
        ("DK1", 0.16228, "DKK/kWh"), ("DK2", 0.196, "DKK/kWh")]  # fmt: skip
    # the repeated October hour is in the file twice: 00:00 and 01:00 UTC
    assert _rows(owner_conn, "SELECT time FROM data.energy_series WHERE area = 'DK1' AND time "
                 "BETWEEN %s AND %s ORDER BY time", _utc(2020, 10, 24, 23),
                 _utc(2020, 10, 25, 2)) == [(_utc(2020, 10, 24, 23),), (_utc(2020, 10, 25, 0),),
                                            (_utc(2020, 10, 25, 1),), (_utc(2020, 10, 25, 2),)]  # fmt: skip


def test_rerun_is_a_noop_and_replace_reloads(database, owner_conn, clean, shared_data):
    path = shared_data / "energy-dk" / "EL_price_interpolated.csv"
    _load(database, path)
    (again,) = _load(database, path)
    assert again.skipped and again.inserted == 0
    (replaced,) = _load(database, path, mode="replace")
    assert replaced.deleted == replaced.inserted == 2 * 54_048
    assert _count(owner_conn, "energy_series") == 2 * 54_048


def test_broken_energy_dk_row_is_refused(database, owner_conn, clean, shared_data, tmp_path):
    lines = (shared_data / "energy-dk" / "output_file.csv").read_text().splitlines(keepends=True)
    cells = lines[17].split(",")
    lines[17] = ",".join([cells[0], "3x17", *cells[2:]])  # data row 17, GrossConsumptionMWh
    path = tmp_path / "output_file.csv"
    path.write_text("".join(lines))
    with pytest.raises(InvalidInput) as err:
        _load(database, path)
    assert (err.value.record, err.value.field) == ("record 17", "GrossConsumptionMWh")
    assert "output_file.csv" in err.value.detail and "'3x17'" in err.value.detail
    assert _count(owner_conn, "energy_series") is None
    assert _count(owner_conn, "energy_weather") is None


def test_energi_data_service_json(database, owner_conn, clean, tmp_path):
    records = [
        {"HourUTC": "2023-01-01T00:00:00", "HourDK": "2023-01-01T01:00:00", "PriceArea": "DK1",
         "SpotPriceDKK": 1234.5, "SpotPriceEUR": 166.0},
        {"HourUTC": "2023-01-01T00:00:00", "HourDK": "2023-01-01T01:00:00", "PriceArea": "DK2",
         "SpotPriceDKK": 1300.25, "SpotPriceEUR": None},
    ]  # fmt: skip
    path = tmp_path / "elspotprices.json"
    path.write_text(json.dumps({"total": 2, "dataset": "Elspotprices", "records": records}))
    assert detect(path).name == "series"
    (report,) = _load(database, path)
    assert report.inserted == 3
    assert _rows(owner_conn, "SELECT area, time, quantity, value, unit FROM data.energy_series "
                 "ORDER BY area, quantity") == [
        ("DK1", _utc(2023, 1, 1), "spot_price_dkk", 1234.5, "DKK/MWh"),
        ("DK1", _utc(2023, 1, 1), "spot_price_eur", 166.0, "EUR/MWh"),
        ("DK2", _utc(2023, 1, 1), "spot_price_dkk", 1300.25, "DKK/MWh"),
    ]  # fmt: skip


def test_text_columns_fold_into_the_quantity(database, owner_conn, clean, tmp_path):
    path = tmp_path / "production.csv"
    path.write_text("HourUTC;PriceArea;ProductionType;ProductionMWh\n"
                    "2023-01-01 00:00;DK1;Wind;1200,5\n2023-01-01 00:00;DK1;Solar;0\n")  # fmt: skip
    (report,) = _load(database, path)
    assert report.inserted == 2
    assert _rows(owner_conn, "SELECT area, quantity, value, unit FROM data.energy_series "
                 "ORDER BY quantity") == [("DK1", "production_mwh:Solar", 0.0, "MWh"),
                                          ("DK1", "production_mwh:Wind", 1200.5, "MWh")]  # fmt: skip


def test_unrecognised_file_lists_the_kinds(tmp_path):
    path = tmp_path / "mystery.csv"
    path.write_text("a,b\nx,y\n")
    with pytest.raises(InvalidInput) as err:
        detect(path)
    for kind in KINDS:
        assert kind in err.value.detail
    assert "electricity_kwh" in err.value.detail and "fields: a, b" in err.value.detail
