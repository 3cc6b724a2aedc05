"""Rows of the utilities model to the loader's chunks, and what the readers share.

A reader produces one dict per asset (the columns of
:data:`~ingest.utilities.model.ASSET_COLUMNS`, ``_record`` and
``geometry``); :func:`chunks` batches them into GeoDataFrames in the file's
CRS. :class:`FileCrs` holds that CRS and refuses a record in another one.
:class:`Seen` collects the owners a file names, so the family can refresh
their interest areas after the load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import geopandas as gpd
from pyproj import CRS
from pyproj.exceptions import CRSError

from ingest.utilities.gml import srid_of, storage_crs
from layers.errors import CRSMismatch, InvalidInput

CHUNK_ROWS = 20_000
_UNITS = {
    "length_m": {"m": 1.0, "cm": 0.01, "mm": 0.001, "dm": 0.1},
    "diameter_mm": {"mm": 1.0, "cm": 10.0, "m": 1000.0, "dm": 100.0, "in": 25.4},
    "voltage_kv": {"kv": 1.0, "v": 0.001, "mv": 1000.0},
    "pressure_bar": {"bar": 1.0, "mbar": 0.001, "kpa": 0.01, "pa": 1e-5, "mpa": 10.0,
                     "psi": 0.0689476},
}  # fmt: skip


def unit_scale(uom: object, quantity: str, default: str, *, source: str, record: str,
               field: str) -> float:  # fmt: skip
    """The factor from a ``uom`` (``mm``, ``urn:ogc:def:uom:OGC::bar``, ``kV``) to the column's unit.

    Raises
    ------
    InvalidInput
        A unit of measure that is not one of this quantity's.
    """
    units = _UNITS[quantity]
    if uom is None or not str(uom).strip():
        return units[default]
    name = re.split(r"[:#/]", str(uom).strip())[-1].lower()
    if name not in units:
        raise InvalidInput(f"{source}: field '{field}' has unit {uom!r}; expected one of "
                           f"{', '.join(units)}", record=f"record {record}", field=field)  # fmt: skip
    return units[name]


@dataclass
class FileCrs:
    """The one CRS of a file's records."""

    source: str
    assumed: str | None = None
    crs: CRS | None = None
    _srid: int | None = None

    def check(self, srs: str | None, record: str) -> None:
        """Accept a record's ``srsName``; the first one fixes the file's CRS.

        Records without one are in the assumed CRS (``--crs``), if any.

        Raises
        ------
        CRSMismatch
            The record is in another CRS than the records before it, or the
            file declares another CRS than ``--crs``.
        """
        srid = srid_of(srs)
        if srid is None and srs and srs.strip():
            try:
                CRS.from_user_input(srs.strip())
            except CRSError as exc:
                raise CRSMismatch(f"{self.source}: record {record} has srsName {srs[:80]!r}, "
                                  "which is not a CRS geoby knows", record=f"record {record}",
                                  field="srsName") from exc  # fmt: skip
        if srid is None:
            if self.crs is None and self.assumed:
                self.crs = CRS.from_user_input(self.assumed)
            return
        if self._srid is None:
            try:
                self.crs = storage_crs(srid)
            except CRSMismatch as exc:
                raise CRSMismatch(f"{self.source}: record {record} has an {exc.detail}",
                                  record=f"record {record}", field="srsName") from exc  # fmt: skip
            self._srid = srid
            if self.assumed and not CRS.from_user_input(self.assumed).equals(
                self.crs, ignore_axis_order=True
            ):
                raise CRSMismatch(
                    f"{self.source} declares EPSG:{srid}, not {self.assumed}; drop --crs or fix "
                    "the file", record=self.source, field="crs",
                )  # fmt: skip
        elif srid != self._srid:
            raise CRSMismatch(
                f"{self.source}: record {record} is in EPSG:{srid}, the records before it in "
                f"EPSG:{self._srid}; a file must use one CRS", record=f"record {record}",
                field="srsName",
            )  # fmt: skip


@dataclass
class Seen:
    """What a load met on its way: owners, and counts of records not loaded, by kind."""

    owners: set[str] = field(default_factory=set)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1


def frame(rows: list[dict], columns: Iterable[str], crs: CRS | None) -> gpd.GeoDataFrame:
    """One chunk: the columns, ``_record`` and the geometry of ``rows``."""
    data = {name: [row.get(name) for row in rows] for name in columns}
    data["_record"] = [str(row["_record"]) for row in rows]
    geometry = gpd.GeoSeries([row.get("geometry") for row in rows], crs=crs)
    return gpd.GeoDataFrame(data, geometry=geometry, crs=crs)


def chunks(rows: Iterable[dict], columns: Iterable[str], file_crs: FileCrs,
           size: int = CHUNK_ROWS) -> Iterator[gpd.GeoDataFrame]:  # fmt: skip
    """Batches of ``rows`` as GeoDataFrames in the file's CRS (known once a row is read)."""
    columns = list(columns)
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield frame(batch, columns, file_crs.crs)
            batch = []
    if batch:
        yield frame(batch, columns, file_crs.crs)
