"""Reading vector files in chunks: GeoPackage, GeoJSON, GML, Shapefile, FlatGeobuf.

:func:`read_chunks` streams a layer through GDAL's Arrow interface (pyogrio),
so memory stays flat however large the file, and names each record by its
GML id where the file has one, else by its feature id. :func:`vector_parts`
turns every layer of a file into a :class:`~ingest.loader.Part` whose columns
are inferred from the data, so no attribute is lost.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from ingest.loader import Part
from ingest.spec import TableSpec, column_name, infer_columns
from layers.catalog import Layer
from layers.errors import CRSMismatch, InvalidInput

log = logging.getLogger(__name__)

CHUNK_ROWS = 65_536
RECORD_FIELDS = ("gml_id", "gml:id", "id")
#: what GDAL, Arrow and the codecs raise on a broken file while its records are read
READ_ERRORS = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
               pyogrio.errors.FieldError, pyogrio.errors.GeometryError, pa.ArrowException,
               UnicodeError, OSError)  # fmt: skip
_SQL = re.compile(r"\w+\((?:SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA)\b.*?\)\s*failed:\s*",
                  re.IGNORECASE | re.DOTALL)  # fmt: skip


def gdal_reason(exc: BaseException) -> str:
    """GDAL's or Arrow's message for the user: no SQL statements, no repeats, one line.

    GDAL's GeoPackage driver quotes the SQLite statement that failed
    (``sqlite3_prepare_v2(SELECT ...) failed: database disk image is
    malformed``); the statement says nothing to the user, and a message that
    holds SQL looks like a leak. The full text goes to the log.
    """
    text = _SQL.sub("", str(exc)).replace("\n", " ").strip()
    parts = list(dict.fromkeys(p.strip() for p in text.split(";") if p.strip()))
    text = "; ".join(parts) or type(exc).__name__
    text = text.removeprefix("Unknown error: ")
    return text if len(text) <= 200 else text[:197] + "..."


def check_sqlite_size(path: Path) -> None:
    """Refuse a GeoPackage (SQLite) file shorter than its header says: a truncated copy.

    SQLite reads a file cut at its last pages without complaint until a query
    touches them, so a cut GeoPackage can load with rows silently missing. The
    header gives the page size (bytes 16-17) and, when its change counter
    (24-27) equals its version-valid-for number (92-95), the page count (28-31).
    """
    with open(path, "rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        return
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65_536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] != head[92:96] or not pages:
        return
    size = path.stat().st_size
    if size < page_size * pages:
        raise InvalidInput(f"{path.name} is truncated: {size:,} bytes of the {page_size * pages:,} "
                           "its header declares", record=path.name)  # fmt: skip


def list_layers(path: Path) -> list[tuple[str, str | None]]:
    """The layers of a vector file with their geometry types."""
    check_sqlite_size(path)
    try:
        return [(str(name), None if kind is None else str(kind))
                for name, kind in pyogrio.list_layers(path)]  # fmt: skip
    except READ_ERRORS as exc:
        raise InvalidInput(f"{path.name} is not a vector file GDAL can read: {gdal_reason(exc)}",
                           record=path.name, log_detail=str(exc)) from exc  # fmt: skip


def read_fields(path: Path, layer: str | None = None) -> list[str]:
    """The attribute field names of a layer (the first when omitted).

    Raises
    ------
    InvalidInput
        GDAL cannot read the file or layer (the reason without GDAL's SQL).
    """
    check_sqlite_size(path)
    try:
        return [str(f) for f in pyogrio.read_info(path, layer=layer)["fields"]]
    except READ_ERRORS as exc:
        raise InvalidInput(f"{path.name} is not a vector file GDAL can read: {gdal_reason(exc)}",
                           record=path.name, log_detail=str(exc)) from exc  # fmt: skip


def read_chunks(
    path: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    where: str | None = None,
) -> Iterator[gpd.GeoDataFrame]:
    """Stream one layer as GeoDataFrames of at most ``chunk_rows`` records.

    Parameters
    ----------
    path
        The file (any vector format GDAL reads).
    layer
        Layer name; the first layer when omitted.
    crs
        The CRS to assume where the file declares none (``--crs``); refused
        when it contradicts a CRS the file does declare.
    chunk_rows
        Records per chunk.
    where
        OGR SQL attribute filter.

    Yields
    ------
    GeoDataFrame
        Columns renamed to safe identifiers, a ``_record`` column (GML id or
        feature id), geometry in the file's CRS.
    """
    try:
        ctx = pyogrio.open_arrow(path, layer=layer, batch_size=chunk_rows, return_fids=True,
                                 where=where, use_pyarrow=True)  # fmt: skip
    except READ_ERRORS as exc:
        raise InvalidInput(f"{path.name}: cannot read layer {layer or '(first)'}: "
                           f"{gdal_reason(exc)}", record=path.name, log_detail=str(exc)) from exc  # fmt: skip
    read = 0
    with ctx as (meta, reader):
        file_crs = _declared_crs(path, meta.get("crs"), crs)
        geometry_name = meta.get("geometry_name") or "wkb_geometry"
        fid_name = meta.get("fid_column") or "OGC_FID"
        batches = iter(reader)
        while True:
            try:  # a broken record surfaces while its batch is read or converted
                batch = next(batches, None)
                if batch is None:
                    return
                _check_utf8(batch, path, read)
                frame = _to_frame(batch, geometry_name, fid_name, file_crs)
            except READ_ERRORS as exc:
                raise InvalidInput(
                    f"{path.name}: a record after the first {read:,} cannot be read: "
                    f"{gdal_reason(exc)}", record=f"record {read + 1}", log_detail=str(exc),
                ) from exc  # fmt: skip
            read += len(frame)
            yield frame


def _crs(path: Path, text: str, what: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise CRSMismatch(f"{path.name}: {what} {text[:80]!r} is not a CRS geoby knows",
                          record=path.name, field="crs", log_detail=str(exc)) from exc  # fmt: skip


def _declared_crs(path: Path, declared: str | None, assumed: str | None) -> CRS | None:
    file_crs = _crs(path, declared, "the declared CRS") if declared else None
    wanted = _crs(path, assumed, "--crs") if assumed else None
    if (
        file_crs is not None
        and wanted is not None
        and not file_crs.equals(wanted, ignore_axis_order=True)
    ):
        raise CRSMismatch(
            f"{path.name} declares {file_crs.to_string()}, "
            f"not {assumed}; drop --crs or fix the file", record=path.name, field="crs",
        )  # fmt: skip
    return file_crs or wanted


def _check_utf8(batch, path: Path, read: int) -> None:
    """Refuse text that is not UTF-8 (latin-1 bytes in a GeoJSON), naming record and field.

    GDAL passes such bytes through as they are; Arrow only notices when the
    strings are converted, and PostgreSQL at ``COPY``, with no name for either.
    """
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            raw = column.cast(pa.large_binary()).to_pylist()
            for i, value in enumerate(raw):
                try:
                    (value or b"").decode("utf-8")
                except UnicodeDecodeError:
                    shown = value.decode("utf-8", errors="replace")[:60]
                    raise InvalidInput(
                        f"{path.name}: field '{name}' of record {read + i + 1} is not UTF-8 text "
                        f"({shown!r}); save the file as UTF-8", record=f"record {read + i + 1}",
                        field=name,
                    ) from None  # fmt: skip


def _to_frame(batch, geometry_name: str, fid_name: str, crs: CRS | None) -> gpd.GeoDataFrame:
    names = list(batch.schema.names)
    if names.count(fid_name) > 1:  # GeoJSON with an "id" member and an "id" property
        names[names.index(fid_name)] = "__fid"
        batch = batch.rename_columns(names)
        fid_name = "__fid"
    frame = batch.to_pandas() if hasattr(batch, "to_pandas") else pd.DataFrame(batch)
    wkb = frame.pop(geometry_name) if geometry_name in frame else pd.Series([None] * len(frame))
    fids = frame.pop(fid_name) if fid_name in frame else pd.Series(range(len(frame)))
    frame.columns = _unique_names(frame.columns)
    record = next((frame[f] for f in RECORD_FIELDS if f in frame and frame[f].notna().all()), fids)
    frame["_record"] = record.astype(str).to_numpy()
    geoms = shapely.from_wkb(wkb.to_numpy(), on_invalid="ignore")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _unique_names(raw) -> list[str]:
    """Safe column names, suffixed where two fields map to one (``ID`` and ``id``)."""
    names: list[str] = []
    for field_name in raw:
        name = base = field_name if field_name in RECORD_FIELDS else column_name(str(field_name))
        n = 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def peek(chunks: Iterator[gpd.GeoDataFrame]) -> tuple[gpd.GeoDataFrame | None, Iterator]:
    """The first chunk, and an iterator that still yields it."""
    first = next(chunks, None)
    if first is None:
        return None, iter(())
    return first, itertools.chain([first], chunks)


def vector_parts(
    path: Path,
    make_layer: Callable[[str, str | None], Layer],
    *,
    crs: str | None = None,
    layers: list[str] | None = None,
) -> Iterator[Part]:
    """One part per layer of a vector file, its columns inferred from the data.

    Parameters
    ----------
    path
        The file.
    make_layer
        ``(layer name in the file, geometry type) -> catalog Layer`` for the target.
    crs
        CRS to assume where the file declares none.
    layers
        Only these layers of the file; all when omitted.
    """
    for name, kind in list_layers(path):
        if layers and name not in layers:
            continue
        first, chunks = peek(read_chunks(path, layer=name, crs=crs))
        if first is None:
            log.info("%s: layer %s is empty", path.name, name)
            continue
        geometry_type = _multi(kind, first)
        columns = infer_columns(first.drop(columns=["_record"]))
        layer = make_layer(name, geometry_type)
        if geometry_type is None:
            layer = layer.model_copy(update={"kind": "table"})
        spec = TableSpec(layer=layer, columns=columns, geometry_type=geometry_type)
        yield Part(spec=spec, chunks=chunks)


def _multi(kind: str | None, first: gpd.GeoDataFrame) -> str | None:
    """The multi type for a layer (single and multi parts mix freely in files)."""
    if first.geometry.isna().all() and not kind:
        return None
    base = (kind or "").upper().replace(" Z", "").replace("25D", "").replace("3D ", "").strip()
    base = base.removeprefix("MULTI")
    names = {"POINT": "MultiPoint", "LINESTRING": "MultiLineString", "POLYGON": "MultiPolygon"}
    if base in names:
        return names[base]
    kinds = {t.removeprefix("Multi") for t in first.geometry.dropna().geom_type}
    if len(kinds) == 1:
        return names.get(kinds.pop().upper(), "Geometry")
    return "Geometry"
