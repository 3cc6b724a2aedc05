"""The climate family: rain, design rain, climate factors and sea level.

``geoby ingest climate FILE...`` recognises each file's kind by its columns
(``--option kind=NAME`` forces one) and loads it into open tables in schema
``data``, theme ``climate``:

=========================  ===================================================  ==================
kind                       layer (columns)                                       key
=========================  ===================================================  ==================
``rain_gauges``            ``climate_rain_gauges`` points: gauge_id, name,        gauge_id
                           resolution_mm, interval_min
``rain_series``            ``climate_rain_series``: gauge_id, time, depth_mm      gauge_id, time
                           (+ ``climate_rain_gauges`` when it has coordinates)
``rain_events``            ``climate_rain_events``: gauge_id, event_id,           gauge_id, start_time
                           start_time, end_time, duration_min, depth_mm,
                           peak_intensity_mm_h, max_60min_mm,
                           return_period_years, return_period_duration_min
``idf``                    ``climate_idf``: station, duration_min,                station, duration_min,
                           return_period_years, depth_mm, intensity_mm_h,         return_period_years
                           intensity_l_s_ha
``climate_factors``        ``climate_factors``: scenario, horizon_years,          scenario, horizon_years,
                           return_period_years, climate_factor                    return_period_years
``sea_level``              ``climate_sea_level``: station, time, level_m, datum   station, time
``sea_level_scenarios``    ``climate_sea_level_scenarios``: scenario, year,       scenario, year
                           mean_sea_level_m, surge_<T>y_m..., datum
=========================  ===================================================  ==================

Decisions where the issue is silent
-----------------------------------
- Times are stored as UTC. Times without offset are read as UTC unless
  ``--option timezone=Europe/Copenhagen`` (any IANA zone) says otherwise;
  the rain-idf-graz events carry no zone and are stored as written.
- A file without a station or gauge column describes one station, named by
  ``--option station=NAME`` or else the file name without extension.
- IDF tables are normalised to one long table. Wide tables (a header row of
  return periods in years, a first column of durations in minutes, label
  rows such as ``frequency (1/a)`` skipped) hold depths in mm when values
  grow with duration; intensities must be named with ``--option
  idf_value=intensity_mm_h`` (or ``intensity_l_s_ha``, ``intensity_um_s``).
  Depth and both intensities are always filled, the missing ones computed
  (``mm/h = depth / hours``, ``l/s/ha = mm/h / 0.36``); where a file gives
  two of them they must agree within 5 % (a unit mix-up is refused).
- Climate factors need a horizon (a ``horizon_years`` column or ``--option
  horizon_years=N``): a factor without one cannot be used safely. A file
  without scenario column gets scenario ``default``.
- Sea levels are metres above the datum in each row's ``datum``: ``DVR90``
  when the column name or ``--option datum`` says so, ``station datum`` for
  the UHSLC/NOAA ASCII layout (days since 1700-01-01 and mm above the tide
  gauge's own zero, as sealevel-honolulu's ``HNL2010.asc``; its missing
  value -32767 is dropped), ``unknown`` (with a warning) otherwise.
  Scenario levels are DVR90 unless the file or ``--option datum`` says
  otherwise, as the issue defines them.
- Rain depths without a unit in the column name are taken as mm.

:func:`rain_depth` (from :mod:`ingest.climate_design`) reads the ingested
IDF table and climate factors for the flood analytics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest import climate_idf, climate_rain, climate_sea
from ingest.climate_design import rain_depth
from ingest.loader import LoadReport, Part, load_file
from ingest.pipelines import IngestOptions
from ingest.source import SourceFile
from ingest.tabular import FileContext, head_lines, header
from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

__all__ = ["KINDS", "detect", "ingest", "rain_depth"]


@dataclass(frozen=True)
class Kind:
    """A kind of climate file: what it must hold and how it becomes layers."""

    name: str
    expects: str
    matches: Callable[[list[str], list[str]], bool]
    parts: Callable[[FileContext], Iterator[Part]]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("idf", climate_idf.IDF_EXPECTS, climate_idf.is_idf, climate_idf.idf_parts),
        Kind("climate_factors", climate_idf.FACTORS_EXPECTS, climate_idf.is_factors,
             climate_idf.factor_parts),
        Kind("sea_level_scenarios", climate_sea.SCENARIOS_EXPECTS, climate_sea.is_scenarios,
             climate_sea.scenario_parts),
        Kind("rain_events", climate_rain.EVENTS_EXPECTS, climate_rain.is_events,
             climate_rain.event_parts),
        Kind("rain_gauges", climate_rain.GAUGES_EXPECTS, climate_rain.is_gauges,
             climate_rain.gauge_parts),
        Kind("sea_level", climate_sea.SERIES_EXPECTS, climate_sea.is_series,
             climate_sea.series_parts),
        Kind("rain_series", climate_rain.SERIES_EXPECTS, climate_rain.is_series,
             climate_rain.series_parts),
    )
}  # fmt: skip


def detect(path: Path, forced: str | None = None) -> Kind:
    """The kind of a climate file, from its columns (or ``forced``).

    Raises
    ------
    InvalidInput
        Unknown forced kind, or a file no kind recognises; the message lists
        every kind and the columns it expects.
    """
    if forced:
        if forced not in KINDS:
            raise InvalidInput(f"unknown climate kind '{forced}'; one of {', '.join(KINDS)}",
                               field="kind")  # fmt: skip
        return KINDS[forced]
    lines = head_lines(path, 5)
    columns = header(path) if lines else []
    for kind in KINDS.values():
        if kind.matches(columns, lines):
            return kind
    expected = "; ".join(f"{k.name}: {k.expects}" for k in KINDS.values())
    shown = ", ".join(columns[:12]) or "(none)"
    raise InvalidInput(
        f"{path.name}: not a climate file geoby recognises (columns: {shown}). "
        f"Expected one of: {expected}. Force a kind with --option kind=NAME",
        record=path.name, field="kind",
    )  # fmt: skip


def ingest(database: Database, paths: list[Path], options: IngestOptions) -> list[LoadReport]:
    """Load climate files, each in its own transaction.

    Parameters
    ----------
    database
        Where to load.
    paths
        The files; each is recognised by its columns.
    options
        Mode, owner, licence...; ``extra`` may hold ``kind``, ``station``,
        ``timezone``, ``datum``, ``horizon_years``, ``idf_value``,
        ``attribution``.

    Returns
    -------
    list of LoadReport
        One per file, in order.

    Raises
    ------
    InvalidInput
        A file was refused (nothing of it loaded); files before it stay loaded.
    """
    reports = []
    for path in paths:
        source = SourceFile.open(path, label=options.extra.get("label"))
        kind = detect(Path(path), options.extra.get("kind"))
        context = FileContext(path=Path(path), source=source, options=options, theme="climate")
        log.info("%s: climate kind %s", source.name, kind.name)
        report = load_file(database, source, kind.parts(context), mode=options.mode,
                           skip_invalid=options.skip_invalid,
                           show_progress=options.show_progress)  # fmt: skip
        report.warnings.extend(context.warnings)
        reports.append(report)
    return reports
