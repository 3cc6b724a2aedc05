"""The energy family: energy series, weather, buildings, consumption, heat density.

``geoby ingest energy FILE...`` recognises each file's kind by its content
(``--option kind=NAME`` forces one); all layers are open, theme ``energy``:

==================  ===========================================================  ======================
kind                layer (columns)                                              key
==================  ===========================================================  ======================
``buildings``       ``energy_buildings`` polygons: building_id, use,              building_id
                    floor_area_m2, heat_installation, every other attribute,
                    annual_electricity_kwh, annual_heat_kwh, consumption_hours
``consumption``     ``energy_consumption_hourly``: building_id, time,             building_id, time
                    electricity_kwh, heat_kwh
``series``          ``energy_series``: area, time, quantity, value, unit          area, time, quantity
                    (+ ``energy_weather`` for weather columns in the same file)
``weather``         ``energy_weather``: station, time, temperature_c,             station, time
                    humidity_pct, wind_speed_m_s, global_radiation_w_m2
(derived)           ``energy_heat_density`` 100 m cells: heat_demand_mwh,         cell_id
                    heat_density_mwh_ha, building_count, buildings_without_data,
                    floor_area_m2, dominant_heat_installation,
                    share_not_district_heating
==================  ===========================================================  ======================

Decisions where the issue is silent
-----------------------------------
- Within one call, buildings load before consumption whatever the order
  of the paths, since consumption is checked against the loaded buildings.
- After any load of buildings or consumption that changed something, the
  annual kWh per building and ``energy_heat_density`` are recomputed in
  PostGIS (:mod:`ingest.energy_density`); a rerun of an already loaded file
  changes nothing and recomputes nothing.
- Series are long (one row per area, time and quantity) so that files with
  any value columns load into one table a researcher filters by quantity;
  weather is wide because it serves as covariates joined per hour. See
  :mod:`ingest.energy_series` for times, areas and units, and
  :mod:`ingest.energy_buildings` for consumption checks and speed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest import energy_buildings, energy_density, energy_series
from ingest.loader import LoadReport, Part, load_file
from ingest.pipelines import IngestOptions
from ingest.source import SourceFile
from ingest.tabular import FileContext, head_lines, header, snake
from ingest.vector import read_fields
from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".shp", ".fgb", ".gml", ".sqlite", ".zip")
ORDER = {"buildings": 0, "consumption": 1}


@dataclass(frozen=True)
class Kind:
    """A kind of energy file: what it must hold and how it becomes layers."""

    name: str
    expects: str
    parts: Callable[[FileContext, Database], Iterator[Part]]


KINDS: dict[str, Kind] = {
    "buildings": Kind("buildings", energy_buildings.BUILDINGS_EXPECTS,
                      lambda ctx, db: energy_buildings.buildings_parts(ctx)),
    "consumption": Kind("consumption", energy_buildings.CONSUMPTION_EXPECTS,
                        energy_buildings.consumption_parts),
    "weather": Kind("weather", energy_series.WEATHER_EXPECTS,
                    lambda ctx, db: energy_series.weather_parts(ctx)),
    "series": Kind("series", energy_series.SERIES_EXPECTS,
                   lambda ctx, db: energy_series.series_parts(ctx)),
}  # fmt: skip


def _is_geojson(path: Path) -> bool:
    if not path.name.lower().endswith(".json"):
        return False
    return '"FeatureCollection"' in "".join(head_lines(path, 20))[:4096]


def _vector_fields(path: Path) -> list[str] | None:
    if not (path.name.lower().endswith(VECTOR_SUFFIXES) or _is_geojson(path)):
        return None
    return [snake(f) for f in read_fields(path)]


def _json_fields(path: Path) -> list[str]:
    text = "".join(head_lines(path, 200))
    keys: list[str] = []
    for token in text.split('"')[1::2]:
        name = snake(token)
        if token and token[0].isalpha() and name not in keys:
            keys.append(name)
    return keys


def detect(path: Path, forced: str | None = None) -> Kind:
    """The kind of an energy file, from its fields (or ``forced``).

    Raises
    ------
    InvalidInput
        Unknown forced kind, or a file no kind recognises; the message lists
        every kind and what it expects.
    """
    if forced:
        if forced not in KINDS:
            raise InvalidInput(f"unknown energy kind '{forced}'; one of {', '.join(KINDS)}",
                               field="kind")  # fmt: skip
        return KINDS[forced]
    fields = _vector_fields(path)
    if fields is not None:
        if any(f in fields for f in energy_buildings.BUILDING):
            return KINDS["buildings"]
        columns = fields
    elif path.name.lower().endswith(".json"):
        columns = _json_fields(path)
    else:
        columns = header(path)
    lines: list[str] = []
    if energy_buildings.is_consumption(columns, lines):
        return KINDS["consumption"]
    if energy_series.is_weather(columns, lines):
        return KINDS["weather"]
    if energy_series.is_series(columns, lines):
        return KINDS["series"]
    expected = "; ".join(f"{k.name}: {k.expects}" for k in KINDS.values())
    raise InvalidInput(
        f"{path.name}: not an energy file geoby recognises (fields: "
        f"{', '.join(columns[:12]) or '(none)'}). Expected one of: {expected}. "
        "Force a kind with --option kind=NAME", record=path.name, field="kind",
    )  # fmt: skip


def ingest(database: Database, paths: list[Path], options: IngestOptions) -> list[LoadReport]:
    """Load energy files, each in its own transaction, then refresh the derived layers.

    Parameters
    ----------
    database
        Where to load.
    paths
        The files; buildings are loaded before consumption.
    options
        Mode, owner, licence, skip_invalid...; ``extra`` may hold ``kind``,
        ``timezone``, ``area``, ``station``, ``unit.QUANTITY``, ``attribution``.

    Returns
    -------
    list of LoadReport
        One per file, buildings first.

    Raises
    ------
    InvalidInput
        A file was refused (nothing of it loaded); files before it stay loaded.
    """
    planned = [(Path(p), detect(Path(p), options.extra.get("kind"))) for p in paths]
    planned.sort(key=lambda item: ORDER.get(item[1].name, 2))
    reports, derived = [], False
    for path, kind in planned:
        source = SourceFile.open(path, label=options.extra.get("label"))
        context = FileContext(path=path, source=source, options=options, theme="energy")
        log.info("%s: energy kind %s", source.name, kind.name)
        report = load_file(database, source, kind.parts(context, database), mode=options.mode,
                           skip_invalid=options.skip_invalid,
                           show_progress=options.show_progress)  # fmt: skip
        report.warnings.extend(context.warnings)
        reports.append(report)
        derived |= kind.name in ORDER and not report.skipped
    if derived:
        energy_density.refresh(database)
    return reports
