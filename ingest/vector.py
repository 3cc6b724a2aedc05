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
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from ingest.loader import Part
from ingest.spec import TableSpec, column_name, infer_columns
from layers.catalog import Layer
from layers.errors import CRSMismatch, InvalidInput

log = logging.getLogger(__name__)

CHUNK_ROWS = 65_536
RECORD_FIELDS = ("gml_id", "gml:id", "id")


def list_layers(path: Path) -> list[tuple[str, str | None]]:
    """The layers of a vector file with their geometry types."""
    try:
        return [(str(name), None if kind is None else str(kind))
                for name, kind in pyogrio.list_layers(path)]  # fmt: skip
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidInput(f"{path.name} is not a vector file GDAL can read: {exc}",
                           record=path.name) from exc  # fmt: skip


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
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidInput(f"{path.name}: cannot read layer {layer or '(first)'}: {exc}",
                           record=path.name) from exc  # fmt: skip
    with ctx as (meta, reader):
        file_crs = _declared_crs(path, meta.get("crs"), crs)
        geometry_name = meta.get("geometry_name") or "wkb_geometry"
        fid_name = meta.get("fid_column") or "OGC_FID"
        for batch in reader:
            yield _to_frame(batch, geometry_name, fid_name, file_crs)


def _declared_crs(path: Path, declared: str | None, assumed: str | None) -> CRS | None:
    if (
        declared
        and assumed
        and not CRS.from_user_input(declared).equals(
            CRS.from_user_input(assumed), ignore_axis_order=True
        )
    ):
        raise CRSMismatch(
            f"{path.name} declares {CRS.from_user_input(declared).to_string()}, "
            f"not {assumed}; drop --crs or fix the file", record=path.name, field="crs",
        )  # fmt: skip
    text = declared or assumed
    return CRS.from_user_input(text) if text else None


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
