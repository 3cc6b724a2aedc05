"""Climate inputs of the sample town: IDF table, climate factors, sea level
scenarios and one year of 10-minute rain at one gauge.

Values are illustrative but of Danish magnitude. The IDF table follows
``d60(T) = 7.98 + 8.69 ln T`` mm for one hour (about 14 mm at 2 years, 28 mm
at 10 years, 48 mm at 100 years) scaled to other durations by
``(D / 60) ** 0.41`` below and ``** 0.25`` above one hour. Climate factors
(1.2 at 2 years to 1.4 at 100 years, 100-year horizon) are in the range the
Danish Spildevandskomiteen recommends for design rain, not its exact table.
Sea levels are mean levels in m DVR90 per SSP scenario with 20- and 100-year
storm-surge levels 1.35 m and 1.65 m above mean, of the size seen in Køge
Bugt. The rain series is a seeded event model (about 130 events, 650-750 mm a
year, 0.2 mm tipping-bucket resolution) with one designed cloudburst of
52 mm in 90 minutes on 14 August.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.sample import plan
from ingest.sample.manifest import FileEntry
from ingest.sample.seeding import rng_for
from ingest.sample.writers import write_csv

IDF_A, IDF_B = 7.98, 8.69
DURATIONS_MIN = (10, 20, 30, 60, 180, 360, 720, 1440)
RETURN_PERIODS = (2, 5, 10, 20, 50, 100)
CLIMATE_FACTORS = {2: 1.2, 5: 1.25, 10: 1.3, 20: 1.33, 50: 1.37, 100: 1.4}
SEA_RISE_2100 = {"SSP1-2.6": (0.35, 1.1), "SSP2-4.5": (0.55, 1.3), "SSP5-8.5": (0.8, 1.5)}
MSL_2020_M = 0.05
SURGE_20Y_M, SURGE_100Y_M = 1.35, 1.65
GAUGE_ID = "EGV-RG1"
CLOUDBURST_START = np.datetime64("2023-08-14T15:00")
CLOUDBURST_MM = (2.0, 4.0, 8.0, 14.0, 10.0, 6.0, 4.0, 2.0, 2.0)
_EVENTS_PER_DAY = (0.42, 0.36, 0.33, 0.3, 0.28, 0.3, 0.32, 0.34, 0.36, 0.42, 0.45, 0.45)


def idf_depth(duration_min: float, return_period: float) -> float:
    """Design rain depth (mm) for a duration and return period."""
    d60 = IDF_A + IDF_B * np.log(return_period)
    n = 0.41 if duration_min < 60 else 0.25
    return float(d60 * (duration_min / 60.0) ** n)


def return_period(duration_min: float, depth_mm: float) -> float:
    """Invert :func:`idf_depth`: the return period (years) of a depth."""
    n = 0.41 if duration_min < 60 else 0.25
    d60 = depth_mm / (duration_min / 60.0) ** n
    return float(np.exp((d60 - IDF_A) / IDF_B))


def _iso(times: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(times, unit="s"), "Z")


def rain_series(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten-minute rain (mm) for the sample year: interval starts and depths."""
    rng = rng_for(seed, "climate.rain")
    start = np.datetime64(f"{plan.YEAR}-01-01T00:00")
    n = int((np.datetime64(f"{plan.YEAR + 1}-01-01T00:00") - start) / np.timedelta64(10, "m"))
    times = start + np.arange(n) * np.timedelta64(10, "m")
    months = times.astype("datetime64[M]").astype(int) % 12
    rain = np.zeros(n)
    t = 0.0
    while True:
        month = int(months[min(int(t * 6), n - 1)])
        t += rng.exponential(24.0 / _EVENTS_PER_DAY[month])
        i0 = int(t * 6)
        if i0 >= n:
            break
        summer = month in (5, 6, 7)
        hours = rng.lognormal(np.log(2.5), 0.7) * (0.6 if summer else 1.0)
        depth = rng.lognormal(np.log(3.2), 0.9) * (1.3 if summer else 1.0)
        k = max(1, int(round(hours * 6)))
        x = (np.arange(k) + 0.5) / k
        w = x ** rng.uniform(1.0, 3.0) * (1.0 - x) ** rng.uniform(1.0, 3.0) * rng.gamma(2.0, 1.0, k)
        rain[i0 : i0 + k] += (depth * w / w.sum())[: n - i0]
    burst = int((CLOUDBURST_START - start) / np.timedelta64(10, "m"))
    rain[burst : burst + len(CLOUDBURST_MM)] = CLOUDBURST_MM
    tips = np.floor(np.cumsum(rain) / 0.2 + 1e-9)
    return times, np.diff(np.concatenate([[0.0], tips])) * 0.2


def rain_events(times: np.ndarray, rain: np.ndarray) -> list[list[object]]:
    """Events: wet spells separated by at least one dry hour."""
    wet = np.flatnonzero(rain > 0)
    if wet.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(wet) > 6)
    firsts = np.concatenate([[wet[0]], wet[breaks + 1]])
    lasts = np.concatenate([wet[breaks], [wet[-1]]])
    rows: list[list[object]] = []
    for k, (a, b) in enumerate(zip(firsts, lasts, strict=True)):
        r = rain[a : b + 1]
        csum = np.concatenate([[0.0], np.cumsum(r)])
        t_max = 0.0
        for d in (10, 20, 30, 60, 180, 360):
            w = d // 10
            peak = float((csum[w:] - csum[:-w]).max()) if len(r) >= w else float(csum[-1])
            t_max = max(t_max, return_period(d, peak))
        six = min(6, len(r))
        rows.append(
            [
                f"{GAUGE_ID}-E{k + 1:04d}",
                GAUGE_ID,
                _iso(times[a : a + 1])[0],
                _iso(times[b : b + 1] + np.timedelta64(10, "m"))[0],
                int((b - a + 1) * 10),
                f"{r.sum():.1f}",
                f"{r.max() * 6.0:.1f}",
                f"{float((csum[six:] - csum[:-six]).max()):.1f}",
                f"{min(t_max, 500.0):.2f}",
            ]
        )
    return rows


def write_climate(out: Path, seed: int) -> list[FileEntry]:
    """Write every climate file under ``out / "climate"``.

    Parameters
    ----------
    out
        The sample's root directory.
    seed
        The sample's seed.

    Returns
    -------
    list of FileEntry
        One entry per file written.
    """
    d = out / "climate"
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    idf = [
        [
            dur,
            t,
            f"{idf_depth(dur, t):.1f}",
            f"{idf_depth(dur, t) * 60.0 / dur:.1f}",
            f"{idf_depth(dur, t) * 1000.0 / (dur * 60.0):.2f}",
        ]
        for dur in DURATIONS_MIN
        for t in RETURN_PERIODS
    ]
    n = write_csv(
        d / "idf_table.csv",
        [
            "duration_min",
            "return_period_years",
            "depth_mm",
            "intensity_mm_per_h",
            "intensity_um_per_s",
        ],
        idf,
    )
    entries.append(
        FileEntry(
            "climate/idf_table.csv", "climate", "csv", "rain depth-duration-frequency table", rows=n
        )
    )
    factors = [[t, f, 100] for t, f in CLIMATE_FACTORS.items()]
    n = write_csv(
        d / "climate_factors.csv",
        ["return_period_years", "climate_factor", "horizon_years"],
        factors,
    )
    entries.append(
        FileEntry(
            "climate/climate_factors.csv",
            "climate",
            "csv",
            "climate factors on design rain (illustrative)",
            rows=n,
        )
    )
    sea = []
    for scenario, (rise, power) in SEA_RISE_2100.items():
        for year in range(2020, 2151, 10):
            msl = MSL_2020_M + rise * ((year - 2020) / 80.0) ** power
            sea.append(
                [
                    year,
                    scenario,
                    f"{msl:.2f}",
                    f"{msl + SURGE_20Y_M:.2f}",
                    f"{msl + SURGE_100Y_M:.2f}",
                ]
            )
    header = [
        "year",
        "scenario",
        "mean_sea_level_m_dvr90",
        "surge_20y_m_dvr90",
        "surge_100y_m_dvr90",
    ]
    n = write_csv(d / "sea_level_scenarios.csv", header, sea)
    entries.append(
        FileEntry(
            "climate/sea_level_scenarios.csv",
            "climate",
            "csv",
            "sea level scenarios, m DVR90",
            rows=n,
        )
    )
    gx, gy = plan.WASTEWATER_PLANT
    gauge = [
        [
            GAUGE_ID,
            "Egevig Renseanlæg",
            f"{plan.ORIGIN_E + gx:.1f}",
            f"{plan.ORIGIN_N + gy:.1f}",
            "EPSG:25832",
            0.2,
            10,
        ]
    ]
    n = write_csv(
        d / "rain_gauges.csv",
        ["gauge_id", "name", "easting", "northing", "crs", "resolution_mm", "interval_min"],
        gauge,
    )
    entries.append(
        FileEntry("climate/rain_gauges.csv", "climate", "csv", "rain gauge locations", rows=n)
    )
    times, rain = rain_series(seed)
    stamps = _iso(times)
    n = write_csv(
        d / "rain_10min.csv",
        ["gauge_id", "timestamp", "rain_mm"],
        ((GAUGE_ID, s, f"{r:.1f}") for s, r in zip(stamps, rain, strict=True)),
    )
    entries.append(
        FileEntry(
            "climate/rain_10min.csv", "climate", "csv", "10-minute rain, interval start UTC", rows=n
        )
    )
    events = rain_events(times, rain)
    header = [
        "event_id",
        "gauge_id",
        "start",
        "end",
        "duration_min",
        "depth_mm",
        "max_intensity_mm_per_h",
        "max_60min_mm",
        "return_period_years_est",
    ]
    n = write_csv(d / "rain_events.csv", header, events)
    entries.append(
        FileEntry(
            "climate/rain_events.csv", "climate", "csv", "rain events (>= 1 h dry between)", rows=n
        )
    )
    return entries
