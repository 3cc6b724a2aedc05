"""Delimited text tables for the table families (climate, energy, waste).

Readers return every field as text, so a bad value can be named exactly as
the file wrote it, with a ``_record`` column holding the row number (1 for
the first data row). :func:`numbers` and :func:`times` convert a column and
refuse the first bad value with the file, record and field in the message.

Conventions shared by the families that use this module:

- the delimiter is sniffed from the header line (``,``, ``;`` or tab);
  a decimal comma (``3,5``) is read as a decimal point;
- column names are matched after :func:`snake` (``GrossConsumptionMWh`` ->
  ``gross_consumption_mwh``, ``Return period (a)`` -> ``return_period_a``);
- times must be ISO 8601 (``2023-01-01T00:00:00Z``, ``2020-01-01 00:00``);
  times with an offset are converted to UTC, naive ones are read in the
  time zone the caller gives. In a zone with summer time, a repeated hour
  (autumn) is taken as summer time at its first occurrence and winter time
  at its second; an hour that does not exist (spring) is dropped and its
  row reported, never shifted onto the next hour.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ingest.source import SourceFile
from layers.catalog import Layer
from layers.errors import InvalidInput

if TYPE_CHECKING:
    from ingest.pipelines import IngestOptions

log = logging.getLogger(__name__)

CHUNK_ROWS = 200_000
#: Most columns a table may have. The widest table geoby reads (a wide IDF table,
#: a consumption export) has tens; 20,000 columns of a few thousand rows make pandas
#: hold tens of millions of cells (GBs) before any check could name the fault.
MAX_COLUMNS = 1_000
_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)
_UNIT_TOKEN = re.compile(r"(GWh|MWh|kWh|Wh)")


def snake(name: str) -> str:
    """A field name as lower snake case (``HourUTC`` -> ``hour_utc``, ``Rain (mm)`` -> ``rain_mm``)."""
    text = _UNIT_TOKEN.sub(lambda m: "_" + m.group(1).lower(), str(name).strip())
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return text or "field"


def pick(columns: Iterable[str], *candidates: str) -> str | None:
    """The first of ``candidates`` (snake-case names) that is among ``columns``."""
    present = set(columns)
    return next((c for c in candidates if c in present), None)


def _opener(path: Path):
    return gzip.open if path.name.lower().endswith(".gz") else open


def head_lines(path: Path, n: int = 5) -> list[str]:
    """The first ``n`` non-empty lines of a text file (gzip read transparently)."""
    lines: list[str] = []
    try:
        with _opener(path)(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) >= n:
                    break
    except (OSError, EOFError) as exc:
        raise InvalidInput(f"{path.name} cannot be read as text: {exc}", record=path.name) from exc
    return lines


def delimiter(header: str) -> str:
    """The delimiter of a header line: the most frequent of ``,`` ``;`` and tab."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def header(path: Path) -> list[str]:
    """The snake-cased column names of a delimited file's first line."""
    lines = head_lines(path, 1)
    if not lines:
        return []
    row = next(csv.reader([lines[0]], delimiter=delimiter(lines[0])))
    return [snake(c) for c in row]


def read_table(path: Path, *, chunk_rows: int | None = None, header_row: bool = True):
    """Read a delimited file as text columns named by :func:`snake`.

    Parameters
    ----------
    path
        CSV (or ``.csv.gz``) with a header line.
    chunk_rows
        When given, an iterator of frames of at most this many rows.
    header_row
        ``False`` for a file without header (columns ``0, 1, ...``).

    Returns
    -------
    DataFrame or iterator of DataFrame
        Text columns (empty fields as missing) and ``_record``, the row number.
    """
    lines = head_lines(path, 1)
    if not lines:
        raise InvalidInput(f"{path.name} holds no lines", record=path.name)
    sep = delimiter(lines[0])
    width = len(next(csv.reader([lines[0]], delimiter=sep)))
    if width > MAX_COLUMNS:
        raise InvalidInput(f"{path.name} has {width:,} columns, more than the {MAX_COLUMNS:,} "
                           "a table may have", record=path.name)  # fmt: skip
    kwargs = dict(sep=sep, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True,
                  header=0 if header_row else None, encoding="utf-8-sig")  # fmt: skip
    first_data_line = 2 if header_row else 1
    try:
        if chunk_rows is None:
            return _named(pd.read_csv(path, **kwargs), 0)
        return _chunks(pd.read_csv(path, chunksize=chunk_rows, **kwargs), path, first_data_line)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(path, exc, first_data_line) from exc


def _unreadable(path: Path, exc: Exception, first_data_line: int) -> InvalidInput:
    """The reader's error, naming the record where it names a line."""
    text = " ".join(str(exc).split())  # pandas' messages end in a newline
    line = re.search(r"line (\d+)", text)
    if line is None:
        return InvalidInput(f"{path.name} is not a readable delimited table: {text}",
                            record=path.name)  # fmt: skip
    record = int(line.group(1)) - first_data_line + 1
    return InvalidInput(f"{path.name}: record {record} does not fit the header ({text})",
                        record=f"record {record}")  # fmt: skip


def _chunks(reader, path: Path, first_data_line: int) -> Iterator[pd.DataFrame]:
    start = 0
    with reader:
        try:
            for frame in reader:
                yield _named(frame, start)
                start += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise _unreadable(path, exc, first_data_line) from exc


def _named(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    raw = list(frame.columns)
    frame.columns = [snake(c) if isinstance(c, str) else c for c in raw]
    frame["_record"] = np.arange(start + 1, start + len(frame) + 1).astype(str)
    frame = frame.reset_index(drop=True)
    frame.attrs["fields"] = dict(zip(frame.columns, raw, strict=False))
    return frame


def field_name(frame: pd.DataFrame, column: object) -> str:
    """The file's own name of a column (``GrossConsumptionMWh`` for ``gross_consumption_mwh``)."""
    return str(frame.attrs.get("fields", {}).get(column, column))


def _raise(source: str, frame: pd.DataFrame, at: int, field: str, raw: object, what: str):
    record = frame["_record"].iloc[at]
    raise InvalidInput(f"{source}: field '{field}' value {raw!r} is not {what} (record {record})",
                       record=f"record {record}", field=field)  # fmt: skip


def numbers(
    frame: pd.DataFrame, column: str, *, source: str, field: str | None = None
) -> pd.Series:
    """A column as float64, a decimal comma allowed; empty fields are NaN.

    Raises
    ------
    InvalidInput
        A value that is not a finite number, naming the record and field.
    """
    raw = frame[column]
    if raw.dtype.kind in "if":
        values = raw.astype("float64")
        text = raw
    else:
        text = raw.astype(object).where(raw.notna(), None)
        cleaned = pd.Series(text, dtype=object).map(_decimal)
        values = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    bad = text.notna().to_numpy() & ~np.isfinite(values.to_numpy())
    if bad.any():
        at = int(np.argmax(bad))
        _raise(source, frame, at, field or field_name(frame, column), text.iloc[at], "a number")
    return values.reset_index(drop=True)


def _decimal(value: object) -> object:
    if not isinstance(value, str):
        return value
    value = value.strip()
    if "," in value and "." not in value:
        return value.replace(",", ".")
    return value


def zone(name: str | None, *, field: str = "timezone") -> ZoneInfo:
    """A time zone by IANA name (``UTC``, ``Europe/Copenhagen``).

    Raises
    ------
    InvalidInput
        Unknown zone.
    """
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as "
                           "UTC or Europe/Copenhagen", field=field) from exc  # fmt: skip


def times(
    frame: pd.DataFrame,
    column: str,
    *,
    source: str,
    tz: str = "UTC",
    field: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[pd.Series, list[str]]:
    """A column of ISO 8601 times as UTC timestamps.

    Parameters
    ----------
    frame
        Text columns and ``_record``.
    column
        The time column.
    source
        File name, for messages.
    tz
        Zone of times written without offset.
    field
        Name to give in messages (defaults to ``column``).
    warn
        Receives a note for each local hour that the zone repeats but the
        file gives once (taken as summer time; the other hour has no row).

    Returns
    -------
    (Series, list of str)
        ``datetime64[ns, UTC]`` (NaT where the field is empty or the local
        time does not exist), and the records whose local time does not exist.

    Raises
    ------
    InvalidInput
        A value that is not an ISO 8601 time.
    """
    text = frame[column].astype(object).where(frame[column].notna(), None)
    text = pd.Series(text, dtype=object).map(lambda v: v.strip() if isinstance(v, str) else v)
    present = text.notna().to_numpy()
    offset = text.map(lambda v: bool(_OFFSET.search(v)) if isinstance(v, str) else False)
    offset = offset.to_numpy(dtype=bool)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if offset.any():
        out[offset] = _parse(text[offset], utc=True)
    naive = present & ~offset
    gaps: list[str] = []
    if naive.any():
        local = _parse(text[naive], utc=False)
        out[naive], gap, lone = localize(local, zone(tz))
        gaps = frame["_record"][naive][gap].tolist()
        if warn is not None and lone.any():
            records = frame["_record"][naive][lone].tolist()
            warn(f"{source}: records {', '.join(records[:5])} give a local hour that {tz} "
                 "repeats (end of summer time) only once; taken as summer time, so the next "
                 "UTC hour has no row and the value may cover both hours")  # fmt: skip
    bad = present & out.isna().to_numpy()
    if gaps:
        bad &= ~frame["_record"].isin(gaps).to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        _raise(
            source, frame, at, field or field_name(frame, column), text.iloc[at], "an ISO 8601 time"
        )
    return out.reset_index(drop=True), gaps


def iso_times(text: pd.Series, *, utc: bool) -> pd.Series:
    """``pd.to_datetime`` of ISO 8601 text, bad values as NaT, even out of its range.

    pandas raises ``OutOfBoundsDatetime`` for a year such as 0000 or 99999 even
    with ``errors="coerce"``; such values are then converted one by one, so
    the caller's check names the record instead of the file failing anonymously.
    """
    kind = "datetime64[ns, UTC]" if utc else "datetime64[ns]"
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=utc)
        inside = parsed.isna() | parsed.dt.year.between(
            pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1)  # fmt: skip
        return parsed.where(inside).astype(kind)
    except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):

        def one(value: object) -> object:
            try:
                time = pd.to_datetime(value, format="ISO8601", utc=utc)
            except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError, TypeError):
                return pd.NaT
            inside = pd.Timestamp.min.year < time.year < pd.Timestamp.max.year
            return time if inside else pd.NaT

        return pd.Series([one(v) for v in text], index=text.index, dtype=object).astype(kind)


def _parse(text: pd.Series, *, utc: bool) -> pd.Series:
    parsed = iso_times(text, utc=utc)
    if not utc and getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed


def localize(
    local: pd.Series, tz: ZoneInfo, by: pd.Series | None = None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Naive local times to UTC; masks of times that do not exist and of lone repeated hours.

    ``by`` groups the rows (a building id) when each group has its own series.
    """
    none = np.zeros(len(local), dtype=bool)
    if str(tz) == "UTC":
        return local.dt.tz_localize("UTC"), none, none
    keyed = local if by is None else pd.DataFrame({"by": by.to_numpy(), "t": local.to_numpy()})
    # first occurrence of a repeated local hour is summer time, the second winter time
    first = ~keyed.duplicated(keep="first").to_numpy()
    aware = local.dt.tz_localize(tz, ambiguous=first, nonexistent="NaT")
    gap = (aware.isna() & local.notna()).to_numpy()
    ambiguous = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna().to_numpy()
    lone = ambiguous & ~gap & local.notna().to_numpy() & ~keyed.duplicated(keep=False).to_numpy()
    return aware.dt.tz_convert("UTC"), gap, lone


def read_whitespace(path: Path) -> pd.DataFrame:
    """A whitespace-separated numeric file without header, as text columns ``c1, c2, ...``."""
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, comment="#",
                            engine="c")  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not a whitespace-separated table: {exc}",
                           record=path.name) from exc  # fmt: skip
    frame.columns = [f"c{i + 1}" for i in range(frame.shape[1])]
    return _named(frame, 0)


def text_column(frame: pd.DataFrame, column: str | None, default: str | None = None) -> pd.Series:
    """A text column stripped, or ``default`` everywhere when the column is absent."""
    if column is None:
        return pd.Series([default] * len(frame), dtype=object)
    values = frame[column].astype(object).where(frame[column].notna(), None)
    values = pd.Series(values, dtype=object).map(lambda v: v.strip() if isinstance(v, str) else v)
    if default is not None:
        values = values.map(lambda v: default if v in (None, "") else v)
    return values.reset_index(drop=True)


@dataclass
class FileContext:
    """What a family reader knows about the file it reads.

    Parameters
    ----------
    path, source
        The file and its checksum/label.
    options
        The load's options (``options.extra`` holds family options).
    theme
        Catalog theme of the layers the file feeds.
    warnings
        Notes for the load report (rows dropped, assumptions made).
    """

    path: Path
    source: SourceFile
    options: IngestOptions
    theme: str
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.source.name

    def option(self, key: str, default: str | None = None) -> str | None:
        value = self.options.extra.get(key)
        return default if value in (None, "") else str(value)

    def station(self) -> str:
        """The station a file without a station column describes: ``--option station`` or its name."""
        name = self.path.name
        for suffix in (".gz", ".csv", ".json", ".asc", ".txt", ".tsv"):
            name = name.removesuffix(suffix)
        return self.option("station") or name

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)

    def layer(self, layer_id: str, title: str, description: str, *, kind: str = "table",
              keywords: tuple[str, ...] = (), **extra) -> Layer:  # fmt: skip
        """The catalog description of a layer this file feeds (open, schema ``data``)."""
        return Layer(
            id=layer_id, title=title, description=description, theme=self.theme, kind=kind,
            table_schema="data", table_name=layer_id, owner_org=self.options.owner,
            licence=self.options.licence or self.option("licence") or "unknown",
            attribution=self.option("attribution"), access="open",
            keywords=[self.theme, *keywords], **extra,
        )  # fmt: skip
