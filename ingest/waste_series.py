"""Sensor readings, collections and the fleet: table records to layer rows.

Each builder turns the text chunks of a :class:`~ingest.waste_tables.Table`
into chunks for the loader, checking every record (:mod:`ingest.waste_rows`).

Decisions:

* A **reading** must belong to a bin in ``waste_bins`` (loaded before, or
  earlier in the same command): sensor readings drive fill forecasts and
  must attach to a bin on the map. A reading for an unknown bin is refused
  naming the record (kept in the rejects with ``--skip-invalid``).
* A **collection** for a bin not in ``waste_bins`` is kept, with a warning
  naming the bins: a collection log is the record of work done, and the bin
  register may live elsewhere (Edinburgh's sensor export names its 334 sites
  without coordinates).
* ``fill_after`` without a unit of its own takes the unit of
  ``fill_before`` (a percent column beside a percent column). Fill levels
  are stored on the scale the source reports; a vendor note such as
  Enevo's "100 % is actually a bin that's 80 % full" is kept in the report,
  not applied.
* Weights, volumes and capacities must not be negative; an unknown fraction
  is refused with the vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ingest.field_map import Field, json_records, match
from ingest.waste_layers import COLLECTIONS, FLEET, FRACTIONS, READINGS, normal_fraction
from ingest.waste_rows import (
    Duplicates,
    Fault,
    RowChecks,
    fill_levels,
    flags,
    numbers,
    strings,
    times,
    zone,
)  # fmt: skip
from ingest.waste_tables import Table

SHOWN = 5


def _text(values: pd.Series) -> pd.Series:
    """Stripped text, missing as ``None``; whole numbers (a spreadsheet's ids) without ``.0``."""
    if values.dtype == object and values.map(lambda v: isinstance(v, float)).any():
        values = values.map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    text = strings(values)
    return text.astype(object).where(text.notna(), None)


class Builder:
    """Shared state of one table: its columns mapped to fields, the checks, the options."""

    def __init__(self, table: Table, fields: tuple[Field, ...], checks: RowChecks, options):
        self.table = table
        self.mapping = match(table.keys, fields)
        self.by_field = {v: k for k, v in self.mapping.items()}
        self.checks = checks
        self.options = options
        self.faults: list[Fault] = []

    def source(self, name: str) -> str | None:
        return self.by_field.get(name)

    def text(self, frame: pd.DataFrame, name: str, *, required: bool = False) -> pd.Series:
        key = self.source(name)
        values = _text(frame[key]) if key else pd.Series([None] * len(frame), dtype=object)
        if required:
            self.faults.append((name, values.isna().to_numpy(), "is empty", None))
        return values

    def number(self, frame: pd.DataFrame, name: str, *, minimum: float | None = None) -> pd.Series:
        key = self.source(name)
        if key is None:
            return pd.Series(np.nan, index=frame.index)
        values, bad = numbers(frame[key])
        self.faults.append((name, bad, "value {value} is not a number", frame[key]))
        if minimum is not None:
            low = (values < minimum).to_numpy()
            self.faults.append((name, low, f"value {{value}} is below {minimum:g}", frame[key]))
        return values

    def flag(self, frame: pd.DataFrame, name: str) -> pd.Series:
        key = self.source(name)
        if key is None:
            return pd.Series([None] * len(frame), dtype=object)
        values, bad = flags(frame[key])
        self.faults.append((name, bad, "value {value} is not yes/no (1/0)", frame[key]))
        return values

    def time(self, frame: pd.DataFrame, name: str = "time") -> pd.Series:
        key = self.source(name)
        if key is None:
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        tz_name = self.table.column(key).timezone or self.options.extra.get("timezone")
        tz = zone(tz_name)
        values, bad = times(frame[key], tz)
        reason = f"value {{value}} is not an ISO 8601 time (or does not exist in {tz.key})"
        self.faults.append((name, bad | values.isna().to_numpy(), reason, frame[key]))
        return values

    def fill(self, frame: pd.DataFrame, name: str, percent_like: str | None = None) -> pd.Series:
        key = self.source(name)
        if key is None:
            return pd.Series(np.nan, index=frame.index)
        unit = self.options.extra.get("fill_unit")
        percent = self.table.column(key).percent or unit == "percent"
        if percent_like and self.source(percent_like) and not percent:
            percent = self.table.column(self.source(percent_like)).percent
        values, faults = fill_levels(frame[key], name, percent)
        self.faults += faults
        return values

    def fraction(self, frame: pd.DataFrame, name: str = "fraction") -> pd.Series:
        raw = self.text(frame, name)
        normal = raw.map(lambda v: None if v is None else normal_fraction(v))
        bad = (raw.notna() & normal.isna()).to_numpy()
        reason = f"value {{value}} is not a waste fraction; one of {', '.join(FRACTIONS)}"
        self.faults.append((name, bad, reason, raw))
        return normal

    def properties(self, frame: pd.DataFrame) -> list:
        rest = [k for k in self.table.keys if k not in self.mapping and k in frame]
        if not rest:
            return [None] * len(frame)
        named = frame[rest].rename(columns={c.key: c.raw for c in self.table.columns})
        return json_records(named)

    def finish(self, frame: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.insert(0, "_record", frame["_record"].astype(str).to_numpy())
        faults, self.faults = self.faults, []
        return self.checks.apply(out, faults)


def readings(table: Table, checks: RowChecks, options, known: set[str]) -> Iterator[pd.DataFrame]:
    """Reading rows: fill clamped to 0-1, unknown bins and conflicts refused, copies collapsed."""
    b = Builder(table, READINGS, checks, options)
    duplicates = Duplicates(("bin_id", "time"))
    for frame in table.chunks:
        frame = frame.reset_index(drop=True)
        bins = b.text(frame, "bin_id", required=True)
        unknown = (bins.notna() & ~bins.isin(known)).to_numpy()
        reason = (
            "value {value} is not a bin in waste_bins; load the bins first or in the same command"
        )
        b.faults.append(("bin_id", unknown, reason, bins))
        reported = b.fill(frame, "fill_level")
        out = pd.DataFrame({
            "bin_id": bins, "time": b.time(frame), "fill_level": reported.clip(0.0, 1.0),
            "fill_level_reported": reported,
            "temperature_c": b.number(frame, "temperature_c"),
            "battery_v": b.number(frame, "battery_v", minimum=0.0),
            "fire_flag": b.flag(frame, "fire_flag"), "tilt_flag": b.flag(frame, "tilt_flag"),
        })  # fmt: skip
        clamped = (reported.notna() & (reported != out["fill_level"])).to_numpy()
        out["quality"] = np.where(clamped, "clamped", "ok")
        out = b.finish(frame, out)
        yield duplicates.check(out, checks)
    if (note := duplicates.summary(checks.source)) is not None:
        checks.warn(note)


def collections(
    table: Table, checks: RowChecks, options, known: set[str]
) -> Iterator[pd.DataFrame]:
    """Collection rows; collections of bins not in ``waste_bins`` are kept and reported."""
    b = Builder(table, COLLECTIONS, checks, options)
    duplicates = Duplicates(("bin_id", "time"))
    unknown: set[str] = set()
    for frame in table.chunks:
        frame = frame.reset_index(drop=True)
        bins = b.text(frame, "bin_id", required=True)
        unknown |= set(bins.dropna()) - known
        out = pd.DataFrame({
            "bin_id": bins, "time": b.time(frame), "collection_id": b.text(frame, "collection_id"),
            "fill_before": b.fill(frame, "fill_before"),
            "fill_after": b.fill(frame, "fill_after", percent_like="fill_before"),
            "volume_l": b.number(frame, "volume_l", minimum=0.0),
            "weight_kg": b.number(frame, "weight_kg", minimum=0.0),
            "truck_id": b.text(frame, "truck_id"), "fraction": b.fraction(frame),
            "properties": b.properties(frame),
        })  # fmt: skip
        out = b.finish(frame, out)
        yield duplicates.check(out, checks)
    if (note := duplicates.summary(checks.source)) is not None:
        checks.warn(note)
    if unknown:
        shown = ", ".join(sorted(unknown)[:SHOWN]) + (", ..." if len(unknown) > SHOWN else "")
        checks.warn(f"{checks.source}: collections of {len(unknown)} bins that are not in "
                    f"waste_bins ({shown}) were kept; load those bins to place them on the map")  # fmt: skip
    _notes(table, b, checks)


def _notes(table: Table, b: Builder, checks: RowChecks) -> None:
    """Report notes in square brackets of mapped column names (values stored as reported)."""
    for key in b.mapping:
        raw = table.column(key).raw
        if "[" in raw:
            checks.warn(f"{checks.source}: column {raw!r} carries a note; its values are "
                        "stored as reported")  # fmt: skip


def fleet(table: Table, checks: RowChecks, options) -> Iterator[pd.DataFrame]:
    """Truck rows."""
    b = Builder(table, FLEET, checks, options)
    for frame in table.chunks:
        frame = frame.reset_index(drop=True)
        out = pd.DataFrame({
            "truck_id": b.text(frame, "truck_id", required=True), "fraction": b.fraction(frame),
            "capacity_kg": b.number(frame, "capacity_kg", minimum=0.0),
            "capacity_m3": b.number(frame, "capacity_m3", minimum=0.0),
            "body_type": b.text(frame, "body_type"), "depot_id": b.text(frame, "depot_id"),
            "properties": b.properties(frame),
        })  # fmt: skip
        yield b.finish(frame, out)
