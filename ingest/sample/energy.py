"""Hourly energy use of every building for one year, and the temperature.

The outdoor temperature is a seeded series around Danish normals (about 1 °C
in January, 17 °C in July, a daily swing of a few degrees, weather noise with
a memory of a day or two). Heat demand per building is space heating by
degree-hours below 17 °C, sized by floor area and age (about 170 kWh/m² a
year before 1930 down to 50 after 2010), plus hot water. Electricity follows
a weekday/hour profile per use (homes peak in the morning and evening,
offices and shops in working hours, plants round the clock, holiday homes
mostly in summer and at weekends); heat pumps add heat divided by a
temperature-dependent COP and electric heating adds the heat itself. All
figures are illustrative. The table is long format, building-major, hour by
hour in UTC, and is formatted with numpy in blocks of buildings so a full
year for two thousand buildings takes seconds.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np

from ingest.sample import plan
from ingest.sample.manifest import FileEntry
from ingest.sample.seeding import rng_for
from ingest.sample.writers import gzip_writer, write_csv
from layers.progress import progress

STATION_ID = "EGV-T1"
_BLOCK = 100
# Annual electricity (kWh per m² of floor area) and hot water (kWh per m²).
_ELECTRICITY = {
    "residential_detached": 30.0, "residential_terraced": 28.0, "residential_apartment": 25.0,
    "holiday_home": 14.0, "commercial": 90.0, "industrial": 110.0, "public": 60.0,
    "agricultural": 25.0, "utility": 300.0,
}  # fmt: skip
_HOT_WATER = {
    "residential_detached": 20.0,
    "residential_terraced": 20.0,
    "residential_apartment": 22.0,
    "holiday_home": 10.0,
}


def hours() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """UTC hour starts of the year, with local (Danish) hour, weekday, month."""
    tz = zoneinfo.ZoneInfo("Europe/Copenhagen")
    start = datetime(plan.YEAR, 1, 1, tzinfo=UTC)
    n = int((datetime(plan.YEAR + 1, 1, 1, tzinfo=UTC) - start).total_seconds() // 3600)
    local = [(start + timedelta(hours=h)).astimezone(tz) for h in range(n)]
    stamps = np.array(
        [(start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in range(n)]
    )
    return (
        stamps,
        np.array([t.hour for t in local]),
        np.array([t.weekday() for t in local]),
        np.array([t.month - 1 for t in local]),
    )


def temperature(seed: int, n: int) -> np.ndarray:
    """Hourly outdoor temperature (°C) for ``n`` hours from 1 January."""
    rng = rng_for(seed, "energy.temperature")
    h = np.arange(n)
    day = h / 24.0
    season = 8.6 - 8.3 * np.cos(2.0 * np.pi * (day - 20.0) / 365.0)
    daily = -(2.0 + 1.5 * np.sin(2.0 * np.pi * (day - 80.0) / 365.0)) * np.cos(
        2.0 * np.pi * (h % 24 - 2.0) / 24.0
    )
    shocks = rng.normal(0.0, 0.45, n)
    weather = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = 0.97 * acc + shocks[i]
        weather[i] = acc
    return season + daily + weather


def _profiles(hour: np.ndarray, weekday: np.ndarray, month: np.ndarray) -> dict[str, np.ndarray]:
    """Relative electricity profile per use (mean 1 over the year)."""
    weekend = weekday >= 5
    home = (
        0.55 + 0.5 * np.exp(-((hour - 7.5) ** 2) / 2.0) + 0.9 * np.exp(-((hour - 19.0) ** 2) / 6.0)
    )
    home = np.where(
        weekend,
        0.6
        + 0.45 * np.exp(-((hour - 10.0) ** 2) / 6.0)
        + 0.85 * np.exp(-((hour - 19.0) ** 2) / 6.0),
        home,
    )
    work = np.where(~weekend & (hour >= 7) & (hour < 17), 1.8, 0.35)
    shop = np.where((hour >= 9) & (hour < 19), np.where(weekday == 6, 0.9, 1.6), 0.3)
    plant = np.where(~weekend & (hour >= 6) & (hour < 22), 1.4, 0.7)
    farm = np.where((hour >= 5) & (hour < 20), 1.3, 0.6)
    holiday = np.where(np.isin(month, [5, 6, 7]), 2.5, 0.5) * np.where(weekend, 1.6, 0.8) * home
    winter = 1.0 + 0.12 * np.cos(2.0 * np.pi * np.arange(len(hour)) / len(hour))
    out = {
        "home": home, "work": work, "shop": shop, "plant": plant, "farm": farm,
        "holiday": holiday, "flat": np.ones(len(hour)),
    }  # fmt: skip
    return {k: v * winter / (v * winter).mean() for k, v in out.items()}


_PROFILE_OF = {
    "residential_detached": "home", "residential_terraced": "home", "residential_apartment": "home",
    "holiday_home": "holiday", "commercial": "shop", "industrial": "plant", "public": "work",
    "agricultural": "farm", "utility": "flat",
}  # fmt: skip


def _space_heat_per_m2(use: str, year: int) -> float:
    if use == "agricultural":
        return 15.0
    if use in ("industrial", "utility"):
        return 60.0
    if use == "holiday_home":
        return 55.0
    for limit, value in ((1930, 170.0), (1960, 150.0), (1980, 130.0), (2000, 100.0), (2010, 75.0)):
        if year < limit:
            return value
    return 50.0


def _format(milli: np.ndarray) -> np.ndarray:
    """Non-negative thousandths as ASCII ``I.FFF`` in 10 bytes, 0-padded left."""
    n = milli.shape[0]
    out = np.zeros((n, 10), np.uint8)
    ip, fp = milli // 1000, milli % 1000
    for k in range(6):
        digit = (ip // 10 ** (5 - k)) % 10
        keep = (ip >= 10 ** (5 - k)) | (k == 5)
        out[:, k] = np.where(keep, digit + 48, 0)
    out[:, 6] = 46
    out[:, 7], out[:, 8], out[:, 9] = fp // 100 + 48, fp // 10 % 10 + 48, fp % 10 + 48
    return out


def _block_bytes(ids: np.ndarray, stamps: np.ndarray, elec: np.ndarray, heat: np.ndarray) -> bytes:
    """CSV rows ``id,timestamp,electricity,heat`` for a block of buildings."""
    nb, nh = elec.shape
    wid, wts = ids.shape[1], stamps.shape[1]
    width = wid + 1 + wts + 1 + 10 + 1 + 10 + 1
    buf = np.zeros((nb * nh, width), np.uint8)
    buf[:, :wid] = np.repeat(ids, nh, axis=0)
    buf[:, wid] = 44
    buf[:, wid + 1 : wid + 1 + wts] = np.tile(stamps, (nb, 1))
    c = wid + 1 + wts
    buf[:, c] = 44
    buf[:, c + 1 : c + 11] = _format(np.rint(elec.ravel() * 1000.0).astype(np.int64))
    buf[:, c + 11] = 44
    buf[:, c + 12 : c + 22] = _format(np.rint(heat.ravel() * 1000.0).astype(np.int64))
    buf[:, c + 22] = 10
    return buf[buf != 0].tobytes()


def write_energy(
    out: Path, seed: int, buildings: gpd.GeoDataFrame, enabled: bool | None
) -> list[FileEntry]:
    """Write the temperature series and hourly consumption per building.

    Parameters
    ----------
    out
        The sample's root directory.
    seed
        The sample's seed.
    buildings
        The buildings (building_id, use, floor_area_m2, year_built,
        heat_installation).
    enabled
        Progress bar switch, passed to :func:`layers.progress.progress`.

    Returns
    -------
    list of FileEntry
        The temperature CSV and the gzip consumption CSV.
    """
    d = out / "energy"
    d.mkdir(parents=True, exist_ok=True)
    stamps, hour, weekday, month = hours()
    nh = len(stamps)
    temp = temperature(seed, nh)
    rows = ((STATION_ID, s, f"{t:.1f}") for s, t in zip(stamps, temp, strict=True))
    n_t = write_csv(
        d / "temperature_hourly.csv", ["station_id", "timestamp", "temperature_c"], rows
    )
    profiles = _profiles(hour, weekday, month)
    deficit = np.maximum(17.0 - temp, 0.0)
    deficit /= deficit.sum()
    hot_water = np.where((hour >= 6) & (hour < 9) | (hour >= 17) & (hour < 22), 1.8, 0.6)
    hot_water /= hot_water.sum()
    cop = np.clip(2.2 + 0.09 * (temp + 5.0), 2.0, 4.5)
    rng = rng_for(seed, "energy.consumption")
    ids = (
        np.array(buildings["building_id"].tolist(), dtype="S36")
        .view(np.uint8)
        .reshape(len(buildings), 36)
    )
    stamp_bytes = stamps.astype("S20").view(np.uint8).reshape(nh, 20)
    frame = buildings[["use", "floor_area_m2", "year_built", "heat_installation"]].to_numpy()
    path = d / "consumption_hourly.csv.gz"
    starts = range(0, len(buildings), _BLOCK)
    with gzip_writer(path) as gz:
        gz.write(b"building_id,timestamp,electricity_kwh,heat_kwh\n")
        for b0 in progress(starts, total=len(starts), desc="energy", unit="block", enabled=enabled):
            block = frame[b0 : b0 + _BLOCK]
            elec = np.empty((len(block), nh))
            heat = np.empty((len(block), nh))
            for j, (use, area, year, system) in enumerate(block):
                space = _space_heat_per_m2(use, int(year)) * area * rng.uniform(0.8, 1.2)
                water = _HOT_WATER.get(use, 3.0) * area
                heat[j] = (space * deficit + water * hot_water) * rng.lognormal(0.0, 0.15, nh)
                elec[j] = (
                    _ELECTRICITY[use]
                    * area
                    * rng.uniform(0.8, 1.2)
                    / nh
                    * profiles[_PROFILE_OF[use]]
                )
                elec[j] *= rng.lognormal(0.0, 0.25, nh)
                if system == "heat_pump":
                    elec[j] += heat[j] / cop
                elif system == "electric":
                    elec[j] += heat[j]
            gz.write(_block_bytes(ids[b0 : b0 + _BLOCK], stamp_bytes, elec, heat))
    entries = [
        FileEntry(
            "energy/temperature_hourly.csv",
            "energy",
            "csv",
            "hourly outdoor temperature, UTC",
            rows=n_t,
        ),
        FileEntry(
            "energy/consumption_hourly.csv.gz",
            "energy",
            "csv.gz",
            "hourly electricity and heat per building, UTC",
            rows=len(buildings) * nh,
        ),
    ]
    return entries
