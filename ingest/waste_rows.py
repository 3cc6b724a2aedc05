"""Row checks of the waste family: values, fill levels, known bins, duplicates.

A :class:`RowChecks` collects what is wrong with each record of a file. By
default the first fault refuses the file, naming the record and field (the
loader then rolls back, so nothing is loaded); with ``--skip-invalid`` the
faulty records are dropped and kept, after the load, in
``geoby.load_rejects`` (:func:`keep_rejects`).

Decisions:

* **Fill levels** are fractions 0-1; a column whose name says percent
  (``%``, ``pct``, ``percent``) or ``--option fill_unit=percent`` is divided
  by 100. Sensors report a little below 0 when empty and above 1 when waste
  is heaped over the rim, so levels from -0.1 to 1.5 are accepted, stored
  clamped to 0-1 in ``fill_level`` with the reported value beside it and
  ``quality = 'clamped'``; anything outside that band is not a fill level
  and is refused.
* **Times** are ISO 8601 (or spreadsheet date cells); times without an offset
  are read in ``--option timezone=...`` (default UTC, or the zone a column
  name gives in brackets, ``Date (Europe/London)``); a local time that does
  not exist or is ambiguous there is refused.
* **Duplicates** (same bin and time): an exact copy of an earlier record is
  dropped and counted in a warning; a record that differs from the earlier
  one in any value refuses the file naming both records (with
  ``--skip-invalid`` the later one is rejected).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ingest.prepare import Reject
from ingest.source import SourceFile
from ingest.tabular import iso_times
from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

FILL_BAND = (-0.1, 1.5)
SHOWN = 5
_TRUE = {"1", "true", "t", "yes", "y", "ja", "j"}
_FALSE = {"0", "false", "f", "no", "n", "nej"}
#: a clock time followed by Z or an offset: the time is absolute
_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[Zz]|[+-]\d\d(?::?\d\d)?)$")


def strings(values: pd.Series) -> pd.Series:
    """Values as stripped text (pandas ``string``), blanks missing."""
    text = values.astype("string")
    if values.dtype.kind in "ifbM":
        return text
    text = text.str.strip()
    return text.mask(text.eq(""))


def numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Values as float64 (a decimal comma allowed) and a mask of present non-numbers."""
    if values.dtype.kind in "ifb":
        return values.astype("float64"), np.zeros(len(values), dtype=bool)
    text = strings(values)
    comma = (text.str.contains(",", regex=False) & ~text.str.contains(".", regex=False)).fillna(
        False
    )
    if comma.any():
        text = text.mask(comma, text.str.replace(",", ".", regex=False))
    out = pd.to_numeric(text.astype(object), errors="coerce").astype("float64")
    finite = np.isfinite(out.to_numpy())
    return out.where(finite), text.notna().to_numpy(dtype=bool) & ~finite


def flags(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Values as booleans (1/0, true/false, yes/no, ja/nej) and a mask of other values."""
    text = strings(values).str.lower().str.removesuffix(".0")
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = True
    out[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = False
    return out, (text.notna() & out.isna()).to_numpy(dtype=bool)


def zone(name: str | None) -> ZoneInfo:
    """A time zone by IANA name.

    Raises
    ------
    InvalidInput
        Unknown zone.
    """
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as UTC or "
                           "Europe/Copenhagen", field="timezone") from exc  # fmt: skip


def times(values: pd.Series, tz: ZoneInfo) -> tuple[pd.Series, np.ndarray]:
    """Times as UTC and a mask of values that are not times (or do not exist in ``tz``)."""
    if values.dtype.kind == "M":
        out = values if values.dt.tz is not None else values.dt.tz_localize(tz)
        out = out.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return out, np.zeros(len(out), dtype=bool)
    text = strings(values)
    present = text.notna().to_numpy(dtype=bool)
    aware = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        out[aware] = iso_times(text[aware], utc=True)
    naive = present & ~aware
    if naive.any():
        local = iso_times(text[naive], utc=False)
        if getattr(local.dt, "tz", None) is not None:
            local = local.dt.tz_localize(None)
        local = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        out[naive] = local.dt.tz_convert("UTC")
    return out, present & out.isna().to_numpy()


class Verbatim(str):
    """A reason quoted as it is (its ``repr`` is itself)."""

    def __repr__(self) -> str:
        return str(self)


#: (field, mask of faulty rows, reason; ``{value}`` in it is the row's value in ``values``)
Fault = tuple[str, np.ndarray, str, "pd.Series | None"]


@dataclass
class RowChecks:
    """Faults found in the records of one file."""

    source: str
    skip_invalid: bool
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def apply(self, frame: pd.DataFrame, faults: list[Fault]) -> pd.DataFrame:
        """``frame`` without its faulty rows; refuse the file at the first one unless skipping.

        Parameters
        ----------
        frame
            Rows with ``_record``.
        faults
            :data:`Fault` tuples; a row faulty in several fields is named by
            the first.
        """
        bad = np.zeros(len(frame), dtype=bool)
        first: dict[int, tuple[str, str]] = {}
        for field_name, mask, reason, values in faults:
            for i in np.flatnonzero(mask & ~bad):
                value = None if values is None else values.iloc[i]
                why = reason.format(value=repr(None if pd.isna(value) else value))
                first[int(i)] = (field_name, why)
            bad |= mask
        if not bad.any():
            return frame
        records = frame["_record"].to_numpy()
        if not self.skip_invalid:
            at = int(np.argmax(bad))
            field_name, why = first[at]
            more = int(bad.sum()) - 1
            tail = f" ({more} more faulty records in this part of the file)" if more else ""
            raise InvalidInput(
                f"{self.source}: record {records[at]}: field '{field_name}' {why}{tail}; "
                "nothing was loaded", record=f"record {records[at]}", field=field_name,
            )  # fmt: skip
        for i in sorted(first):
            field_name, why = first[i]
            self.rejects.append(
                Reject(str(records[i]), f"{self.source}: field '{field_name}' {why}", field_name)
            )
        return frame.loc[~bad].reset_index(drop=True)

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)


def fill_levels(values: pd.Series, field_name: str, percent: bool) -> tuple[pd.Series, list[Fault]]:
    """Fill levels as fractions (as reported) and the faults of values that are not ones."""
    numeric, bad = numbers(values)
    fraction = numeric / 100.0 if percent else numeric
    lo, hi = FILL_BAND
    outside = (fraction.notna() & ((fraction < lo) | (fraction > hi))).to_numpy()
    hint = "" if percent else (
        "; if the column is in percent, name it ..._pct or pass --option fill_unit=percent"
    )  # fmt: skip
    unit = " (percent)" if percent else ""
    faults = [
        (field_name, bad, "value {value} is not a number", values),
        (field_name, outside, f"value {{value}}{unit} is not a fill level: accepted are {lo:g} "
         f"to {hi:g} of full (levels outside 0-1 are clamped){hint}", values),
    ]  # fmt: skip
    return fraction, faults


def known_bins(database: Database) -> set[str]:
    """Every ``bin_id`` in ``waste_bins`` (empty when the layer does not exist yet)."""
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.waste_bins')")
        if cur.fetchone()[0] is None:
            return set()
        cur.execute("SELECT bin_id FROM data.waste_bins")
        return {row[0] for row in cur.fetchall()}


@dataclass
class Duplicates:
    """Records seen so far by key, to collapse exact copies and refuse conflicts.

    Keys and rows are compared by 64-bit hashes (vectorised); only records
    whose key was seen before are looked at one by one.
    """

    key: tuple[str, ...]
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    records: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    collapsed: list[tuple[str, str]] = field(default_factory=list)

    def check(self, frame: pd.DataFrame, checks: RowChecks) -> pd.DataFrame:
        """``frame`` without exact copies of earlier records; conflicts refused."""
        values = frame.drop(columns="_record")
        if "properties" in values:  # dicts: hashed by their JSON text
            values["properties"] = values["properties"].map(
                lambda p: None if p is None else json.dumps(p, sort_keys=True, default=str)
            )
        rows = pd.util.hash_pandas_object(values, index=False).to_numpy()
        keys = pd.util.hash_pandas_object(frame[list(self.key)], index=False).to_numpy()
        records = frame["_record"].to_numpy(dtype=object)
        first = ~pd.Series(keys).duplicated().to_numpy()
        seen = np.isin(keys, self.keys)
        copy = np.zeros(len(frame), dtype=bool)
        conflict = np.zeros(len(frame), dtype=bool)
        reasons = pd.Series("", index=frame.index, dtype=object)
        for i in np.flatnonzero(seen | ~first):
            j = int(np.argmax(keys == keys[i]))
            if j < i:
                earlier = rows[j], records[j]
            else:
                k = int(np.argmax(self.keys == keys[i]))
                earlier = self.rows[k], self.records[k]
            if earlier[0] == rows[i]:
                copy[i] = True
                self.collapsed.append((records[i], earlier[1]))
                continue
            conflict[i] = True
            shown = ", ".join(f"{k} {frame[k].iloc[i]}" for k in self.key)
            reasons.iloc[i] = Verbatim(
                f"conflicts with record {earlier[1]}: both give {shown} with other values; "
                "one record per key is allowed"
            )
        new = first & ~seen
        self.keys = np.concatenate([self.keys, keys[new]])
        self.rows = np.concatenate([self.rows, rows[new]])
        self.records = np.concatenate([self.records, records[new]])
        frame = frame.loc[~copy].reset_index(drop=True)
        kept = reasons[~copy].reset_index(drop=True)
        return checks.apply(frame, [(self.key[0], conflict[~copy], "{value}", kept)])

    def summary(self, source: str) -> str | None:
        if not self.collapsed:
            return None
        shown = ", ".join(f"{a} = {b}" for a, b in self.collapsed[:SHOWN])
        more = ", ..." if len(self.collapsed) > SHOWN else ""
        return (f"{source}: {len(self.collapsed)} exact duplicate records collapsed "
                f"(record = earlier record: {shown}{more})")  # fmt: skip


def keep_rejects(database: Database, layer_id: str, source: SourceFile,
                 rejects: list[Reject]) -> None:  # fmt: skip
    """Keep records refused under ``--skip-invalid`` in ``geoby.load_rejects``."""
    if not rejects:
        return
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO geoby.load_rejects (layer_id, source_file, checksum, record, reason, field)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [(layer_id, source.name, source.checksum, r.record, r.reason, r.field)
             for r in rejects],
        )  # fmt: skip
