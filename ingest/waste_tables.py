"""Reading the waste family's tables: CSV and spreadsheets, in chunks.

Column names are read with what they say in brackets: ``Fill level before
collection (%)`` is the column ``fill_level_before_collection`` in percent,
``Date & Time of bin collection (Europe/London)`` the column
``date_time_of_bin_collection`` in that time zone. Every value is read as
text (spreadsheet cells keep their type), with ``_record`` naming the record:
the row number for CSV (1 = first data row), ``Sheet!row`` as the
spreadsheet shows it for XLSX.

A spreadsheet is read from its first sheet whose header (within its first
20 rows) names the columns of a waste table; summary rows above the header
(averages, titles) are ignored, as are empty rows.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ingest import tabular
from ingest.field_map import Field, match
from layers.errors import InvalidInput

CHUNK_ROWS = 100_000
HEADER_SCAN = 20
_BRACKETS = re.compile(r"[\(\[]([^\)\]]*)[\)\]]")
_ZONE = re.compile(r"^(UTC|[A-Z][A-Za-z_]+/[A-Za-z_]+(?:/[A-Za-z_]+)?)$")


@dataclass(frozen=True)
class Column:
    """One column of a table: its name in the file, its key, and its unit hints."""

    raw: str
    key: str
    percent: bool = False
    timezone: str | None = None


def columns(raw_names: list[object]) -> list[Column]:
    """Keys and unit hints of a header (keys made unique with ``_2``, ``_3``...)."""
    out: list[Column] = []
    taken: set[str] = set()
    for raw in raw_names:
        text = "" if raw is None else str(raw)
        notes = _BRACKETS.findall(text)
        base = _BRACKETS.sub(" ", text)
        stem = tabular.snake(base) if base.strip() else "field"
        key, n = stem, 2
        while key in taken:
            key, n = f"{stem}_{n}", n + 1
        taken.add(key)
        words = set(re.split(r"[^a-z%]+", text.lower()))
        percent = "%" in text or bool(words & {"pct", "percent", "percentage"})
        zone = next((n.strip() for n in notes if _ZONE.match(n.strip())), None)
        out.append(Column(text, key, percent, zone))
    return out


@dataclass
class Table:
    """A table of a file: its columns and a lazy iterator of text chunks."""

    columns: list[Column]
    chunks: Iterator[pd.DataFrame]
    where: str = ""

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.columns]

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


def read_csv(path: Path, chunk_rows: int = CHUNK_ROWS) -> Table:
    """A CSV (``,`` ``;`` or tab; UTF-8) as text chunks."""
    lines = tabular.head_lines(path, 1)
    if not lines:
        raise InvalidInput(f"{path.name} holds no lines", record=path.name)
    header = next(csv.reader([lines[0]], delimiter=tabular.delimiter(lines[0])))
    cols = columns(header)

    def chunks() -> Iterator[pd.DataFrame]:
        for frame in tabular.read_table(path, chunk_rows=chunk_rows):
            frame.columns = [*(c.key for c in cols), "_record"][: len(frame.columns)]
            yield frame

    return Table(cols, chunks())


def read_xlsx(path: Path, fields: list[tuple[Field, ...]], chunk_rows: int = CHUNK_ROWS) -> Table:
    """The first sheet of a workbook whose header names columns of ``fields``.

    Raises
    ------
    InvalidInput
        The workbook cannot be read, or no sheet has a recognisable header.
    """
    with _workbook(path) as book:
        for sheet in book.worksheets:
            rows = sheet.iter_rows(values_only=True)
            for number, row in enumerate(itertools.islice(rows, HEADER_SCAN), start=1):
                cols = columns(list(row))
                keys = [c.key for c in cols if c.raw]
                if any(len(match(keys, f)) >= 2 for f in fields):
                    chunks = _sheet_chunks(path, sheet.title, number, cols, chunk_rows)
                    return Table(cols, chunks, where=sheet.title)
        names = ", ".join(s.title for s in book.worksheets)
    raise InvalidInput(f"{path.name}: no sheet ({names}) has a header naming waste columns "
                       f"in its first {HEADER_SCAN} rows", record=path.name)  # fmt: skip


@contextmanager
def _workbook(path: Path):
    try:
        import openpyxl
    except ImportError as exc:  # an optional dependency: say how to get it
        raise InvalidInput(f"{path.name}: reading .xlsx needs openpyxl (pip install openpyxl)",
                           record=path.name) from exc  # fmt: skip
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise InvalidInput(f"{path.name} is not a readable .xlsx workbook: {exc}",
                           record=path.name) from exc  # fmt: skip
    try:
        yield book
    finally:
        book.close()


def _sheet_chunks(path: Path, title: str, header_row: int, cols: list[Column],
                  chunk_rows: int) -> Iterator[pd.DataFrame]:  # fmt: skip
    width = len(cols)
    keys = [c.key for c in cols]
    batch: list[tuple] = []
    records: list[str] = []
    with _workbook(path) as book:
        rows = book[title].iter_rows(min_row=header_row + 1, values_only=True)
        for number, row in enumerate(rows, start=header_row + 1):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
                continue
            batch.append(tuple(row[:width]) + (None,) * (width - len(row)))
            records.append(f"{title}!{number}")
            if len(batch) >= chunk_rows:
                yield _frame(batch, keys, records)
                batch, records = [], []
    if batch:
        yield _frame(batch, keys, records)


def _frame(batch: list[tuple], keys: list[str], records: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(batch, columns=keys).astype(object)
    frame["_record"] = records
    return frame
