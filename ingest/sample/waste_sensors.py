"""Ninety days of fill-level sensor readings and collections for every bin.

Each bin fills at its own seeded rate (days to full by fraction and type),
mostly between 07 and 22 local time, faster at weekends at recycling stations
and street litter bins. Trucks work weekdays: a bin is emptied at its route
time when it is at least about 70 % full or has waited too long (street
litter bins every Monday and Thursday). The state is simulated every 10
minutes; each sensor reports every 2 hours (bins staggered by 10 minutes)
with the fill level plus a little noise, the bin temperature and the battery
voltage. A collection's ``fill_before`` is the simulated fill at the moment
of emptying, so readings and collections agree.

Documented defects, listed in the manifest under ``waste_defects``:

* one dead sensor: its battery runs down and it stops reporting on day 37
  (the bin is still emptied);
* three readings sent twice (exact duplicate rows);
* two out-of-range fill levels (one above 1, one below 0);
* one fire (bin temperature above 50 °C, ``fire_flag`` 1) in a litter bin;
* a few tilted bins (``tilt_flag`` 1).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np

from ingest.sample.energy import temperature
from ingest.sample.seeding import rng_for

START = datetime(2023, 9, 1, tzinfo=UTC)
DAYS = 90
STEP_MIN = 10
READ_EVERY = 12
_DAYS_TO_FULL = {
    "street_litter": (2.0, 6.0), "residual": (5.0, 11.0), "organic": (4.0, 8.0), "paper": (10.0, 25.0),
    "plastic": (8.0, 20.0), "glass": (15.0, 40.0), "metal": (20.0, 50.0), "textile": (15.0, 35.0),
}  # fmt: skip
_DENSITY = {
    "residual": 0.1,
    "organic": 0.35,
    "paper": 0.08,
    "plastic": 0.03,
    "glass": 0.3,
    "metal": 0.06,
    "textile": 0.12,
}
_WEEKDAY = {
    "street_litter": (0.9, 0.9, 0.9, 1.0, 1.1, 1.4, 1.5),
    "station": (1.2, 0.9, 0.9, 0.9, 1.0, 1.4, 1.3),
    "other": (1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1),
}
_TRUCK = {
    "paper": "T04",
    "plastic": "T05",
    "glass": "T06",
    "metal": "T07",
    "textile": "T08",
    "organic": "T03",
}


def _truck(fraction: str, bin_type: str) -> str:
    if bin_type == "street_litter":
        return "T09"
    if fraction == "residual":
        return "T02" if bin_type == "underground" else "T01"
    return _TRUCK[fraction]


def _clock(n: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """ISO stamps, local minute of day, local weekday and hour of year per step."""
    tz = zoneinfo.ZoneInfo("Europe/Copenhagen")
    utc = [START + timedelta(minutes=STEP_MIN * i) for i in range(n)]
    local = [t.astimezone(tz) for t in utc]
    stamps = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in utc]
    minute = np.array([t.hour * 60 + t.minute for t in local])
    weekday = np.array([t.weekday() for t in local])
    year_start = datetime(START.year, 1, 1, tzinfo=UTC)
    hour = np.array([int((t - year_start).total_seconds() // 3600) for t in utc])
    return stamps, minute, weekday, hour


def simulate(
    seed: int, bins: gpd.GeoDataFrame
) -> tuple[list[list[object]], list[list[object]], dict]:
    """Simulate the sensors and the collections.

    Parameters
    ----------
    seed
        The sample's seed.
    bins
        The bins (bin_id, fraction, capacity_l, bin_type, site_id).

    Returns
    -------
    readings, collections, defects
        Reading rows (bin_id, time, fill_level, temperature_c, battery_v,
        fire_flag, tilt_flag) in time order, collection rows (collection_id,
        bin_id, time, fill_before, weight_kg, truck_id) and the defects.
    """
    rng = rng_for(seed, "waste.sensors")
    n = DAYS * 24 * 60 // STEP_MIN
    stamps, minute, weekday, hour = _clock(n)
    ambient = temperature(seed, 8760)[hour]
    b = len(bins)
    ids = bins["bin_id"].tolist()
    capacity = bins["capacity_l"].to_numpy(dtype=float)
    fraction = bins["fraction"].to_numpy()
    kind = bins["bin_type"].to_numpy()
    station = bins["site_id"].str.startswith("RS").to_numpy()
    key = np.where(kind == "street_litter", "street_litter", fraction)
    lo = np.array([_DAYS_TO_FULL[k][0] for k in key])
    hi = np.array([_DAYS_TO_FULL[k][1] for k in key])
    rate = 1.0 / rng.uniform(lo, hi) * rng.lognormal(0.0, 0.15, b)
    profile = np.array(
        [
            _WEEKDAY["street_litter" if k == "street_litter" else ("station" if s else "other")]
            for k, s in zip(kind, station, strict=True)
        ]
    )
    profile /= profile.mean(axis=1, keepdims=True)
    active = ((minute >= 7 * 60) & (minute < 22 * 60)).astype(float) + 0.05
    active /= active[:144].sum()
    threshold = rng.uniform(0.65, 0.78, b)
    max_wait = np.where(np.isin(fraction, ["residual", "organic"]), 14 * 144, 28 * 144)
    check = rng.integers(36, 84, b) * 10
    phase = np.arange(b) % READ_EVERY
    battery0 = rng.normal(3.6, 0.03, b)
    dead = int(rng.integers(b))
    fill = rng.uniform(0.05, 0.5, b)
    last = np.zeros(b, dtype=np.int64)
    readings: list[list[object]] = []
    collections: list[list[object]] = []
    for t in range(n):
        fill = np.minimum(
            fill + rate * profile[:, weekday[t]] * active[t] * rng.lognormal(0.0, 0.5, b), 1.0
        )
        due = np.flatnonzero((t - phase) % READ_EVERY == 0)
        if due.size:
            level = np.clip(fill[due] + rng.normal(0.0, 0.012, due.size), 0.0, 1.0)
            day = t / 144.0
            batt = (
                battery0[due]
                - np.where(due == dead, 0.017, 0.0025) * day
                + rng.normal(0.0, 0.008, due.size)
            )
            warm = np.where(
                kind[due] == "underground", 11.0 + 0.35 * (ambient[t] - 11.0), ambient[t] + 1.5
            )
            temp_c = warm + rng.normal(0.0, 0.4, due.size)
            for j, i in enumerate(due):
                if i == dead and day >= 37.0:
                    continue
                readings.append(
                    [ids[i], stamps[t], float(level[j]), float(temp_c[j]), float(batt[j]), 0, 0]
                )
        if weekday[t] < 5:
            litter_day = weekday[t] in (0, 3)
            for i in np.flatnonzero(check == minute[t]):
                litter = kind[i] == "street_litter"
                if (litter and litter_day and fill[i] > 0.02) or (
                    not litter and (fill[i] >= threshold[i] or t - last[i] >= max_wait[i])
                ):
                    weight = fill[i] * capacity[i] * _DENSITY[fraction[i]] * rng.lognormal(0.0, 0.1)
                    collections.append(
                        [
                            f"C{len(collections) + 1:05d}",
                            ids[i],
                            stamps[t],
                            float(fill[i]),
                            float(weight),
                            _truck(fraction[i], kind[i]),
                        ]
                    )
                    fill[i] = rng.uniform(0.0, 0.03)
                    last[i] = t
    defects = _defects(rng, bins, readings, dead)
    return readings, collections, defects


def _defects(
    rng: np.random.Generator, bins: gpd.GeoDataFrame, readings: list[list[object]], dead: int
) -> dict:
    """Inject the documented defects into ``readings`` (in place)."""
    dead_id = bins["bin_id"].iat[dead]
    last_dead = max(r[1] for r in readings if r[0] == dead_id)
    surface = set(bins.loc[bins["bin_type"] != "underground", "bin_id"])
    litter = sorted(set(bins.loc[bins["bin_type"] == "street_litter", "bin_id"]))
    n = len(readings)
    out: dict = {"dead_sensor": {"bin_id": dead_id, "last_reading": last_dead}}
    fire_bin = litter[int(rng.integers(len(litter)))]
    fire_rows = [k for k, r in enumerate(readings) if r[0] == fire_bin]
    k0 = fire_rows[len(fire_rows) // 2]
    for step, k in enumerate(fire_rows[fire_rows.index(k0) : fire_rows.index(k0) + 3]):
        readings[k][3] = (68.4, 57.1, readings[k][3] + 12.0)[step]
        readings[k][5] = 1 if step < 2 else 0
    out["fire"] = [{"bin_id": fire_bin, "time": readings[k0][1]}]
    tilts = []
    for k in rng.choice(n, size=400, replace=False):
        if readings[int(k)][0] in surface and len(tilts) < 4 and readings[int(k)][0] != fire_bin:
            readings[int(k)][6] = 1
            tilts.append({"bin_id": readings[int(k)][0], "time": readings[int(k)][1]})
    out["tilt"] = tilts
    bad = []
    for k, value in zip(rng.choice(n, size=2, replace=False), (1.27, -0.05), strict=True):
        readings[int(k)][2] = value
        bad.append(
            {"bin_id": readings[int(k)][0], "time": readings[int(k)][1], "fill_level": value}
        )
    out["out_of_range"] = bad
    dups = sorted(int(k) for k in rng.choice(n, size=3, replace=False))
    out["duplicates"] = [{"bin_id": readings[k][0], "time": readings[k][1]} for k in dups]
    for k in reversed(dups):
        readings.insert(k + 1, list(readings[k]))
    return out
