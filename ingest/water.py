"""The water family: streams, lakes, coastline, sewer pipes, manholes and roads.

``geoby ingest water FILE...`` loads vector files (GeoPackage, GeoJSON,
Shapefile, GML...) into six open layers in schema ``data``:

=====================  ============  =================================================
layer                  geometry      key and main columns
=====================  ============  =================================================
``water_streams``      lines         stream_id; name, flows_to, bed levels
``water_lakes``        polygons      lake_id; name, water_level_m, area_m2
``water_coastline``    lines         coastline_id; level_m
``water_sewer_pipes``  lines         pipe_id; system, diameter_mm, material, manholes,
                                     upstream/downstream_invert_m
``water_manholes``     points        manhole_id; system, kind, rim/invert_level_m
``water_roads``        lines         road_id; name, road_class, speed_kmh, oneway
=====================  ============  =================================================

Decisions (where the issue is silent):

* **Roads are water data.** The street network carries surface runoff in a
  cloudburst and is the graph waste routes are planned on; it is loaded as
  ``water_roads`` (ids must start with the family).
* **Recognising a layer.** ``--option kind=KIND`` forces one kind for every
  layer of the file. Otherwise a layer's name decides (``sewer_pipes``,
  ``dhmqc_roads_1km``, ``vandloeb``; the bare word *water* names lakes, for
  polygons only), then its columns (inverts make pipes, a rim level makes
  manholes), and the geometry must fit the kind. A layer that matches no
  kind refuses the whole file with the kinds and the columns each expects;
  a layer named for another family's data (buildings, bins, cables) is
  refused with the family to use. ``--option layers=a,b`` loads only those
  layers of a multi-layer file.
* **Columns.** Each layer has fixed columns, filled from the source by name
  or alias (``diameter``, ``dn``, ``fra_bundkote``...); every other source
  attribute is kept per feature in ``properties`` (jsonb). Features without
  an id get ``<file stem>-<n>`` (n counts features from 1 in file order), so
  a rerun or ``--mode upsert`` finds the same keys.
* **Sewer system** is normalised to ``combined``, ``storm`` or ``foul``
  (Danish and English names accepted); another value refuses the file naming
  the record; an empty one stays empty (unknown). A diameter must be > 0.
* **Inverts against the terrain.** After a sewer load, where the catalog holds
  a terrain raster (theme ``terrain``) in DVR90, each pipe end whose invert
  lies above the terrain is reported as a warning (the terrain and the pipe
  survey may differ in date and accuracy, so this is not a refusal). A
  manhole whose invert lies above its own rim is reported the same way.
* Levels are stored as given, in metres DVR90; 3D geometries stay 3D.
* ``--skip-invalid`` sets aside records with bad geometries (the loader's
  rule); a bad attribute (an unknown system, a diameter of 0, a level that
  is not a number) refuses the file even then, since a network with a
  pipe missing is worse for flood and dig analyses than no new load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ingest import water_terrain
from ingest.field_map import describe, generated_ids, match, remap, with_geometry
from ingest.loader import LoadReport, Part, load_file
from ingest.source import SourceFile
from ingest.vector import list_layers, peek, read_chunks, read_fields
from ingest.water_layers import KINDS, WaterKind, kind_by_name, normal_system, other_family
from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

_SHAPES = {"POINT": "point", "LINESTRING": "line", "POLYGON": "polygon"}


def ingest(database: Database, paths: list[Path], options) -> list[LoadReport]:
    """Load water files, one transaction per file.

    Parameters
    ----------
    database
        Where to load.
    paths
        Vector files.
    options
        :class:`ingest.pipelines.IngestOptions`; ``extra`` may hold ``kind``
        (one of the kinds, forced for every layer), ``layers`` (comma list)
        and ``attribution``.

    Returns
    -------
    list of LoadReport
        One per file, in order.

    Raises
    ------
    InvalidInput
        A file, layer, record or field was refused; that file loaded nothing.
    """
    forced = options.extra.get("kind")
    if forced is not None and forced not in KINDS:
        raise InvalidInput(f"unknown water kind '{forced}'; one of {', '.join(KINDS)}",
                           field="kind")  # fmt: skip
    reports = []
    for path in paths:
        source = SourceFile.open(path)
        plan = _plan(path, options, forced)
        report = load_file(
            database, source, _parts(path, plan, options),
            mode=options.mode, skip_invalid=options.skip_invalid,
            show_progress=options.show_progress,
        )  # fmt: skip
        if not report.skipped and "water_sewer_pipes" in report.layers:
            report.warnings.extend(water_terrain.invert_warnings(database, source))
        if not report.skipped and "water_manholes" in report.layers:
            report.warnings.extend(water_terrain.manhole_warnings(database, source))
        reports.append(report)
    return reports


def _shape(geometry_type: str | None) -> str | None:
    if geometry_type is None:
        return None
    base = geometry_type.upper().replace(" Z", "").replace("25D", "").split()[0]
    return _SHAPES.get(base.removeprefix("MULTI"))


def _plan(path: Path, options, forced: str | None) -> list[tuple[str, WaterKind]]:
    """Every layer of the file with its kind, or the refusal of the file."""
    wanted = [s.strip() for s in options.extra.get("layers", "").split(",") if s.strip()]
    layers = list_layers(path)
    missing = set(wanted) - {name for name, _ in layers}
    if missing:
        raise InvalidInput(f"{path.name} has no layer {', '.join(sorted(missing))}; it has "
                           f"{', '.join(n for n, _ in layers)}", record=path.name, field="layers")  # fmt: skip
    plan = []
    single = len(layers) == 1
    for name, geometry_type in layers:
        if wanted and name not in wanted:
            continue
        shape = _shape(geometry_type)
        if shape is None:
            log.info("%s: layer %s has no geometry; not a water layer, skipped", path.name, name)
            continue
        columns = read_fields(path, name)
        kind = _recognise(path, name, shape, columns, forced, single)
        plan.append((name, kind))
    if not plan:
        raise InvalidInput(f"{path.name} holds no water layer", record=path.name)
    return plan


def _recognise(path: Path, layer: str, shape: str | None, columns: list[str],
               forced: str | None, single: bool) -> WaterKind:  # fmt: skip
    where = f"{path.name}" + ("" if single else f" layer {layer}")
    if forced:
        kind = KINDS[forced]
    else:
        name = kind_by_name(layer, shape) or (kind_by_name(path.stem, shape) if single else None)
        kind = KINDS[name] if name else _by_columns(columns, shape)
        if kind is None:
            hit = other_family(layer) or (other_family(path.stem) if single else None)
            if hit:
                raise InvalidInput(
                    f"{where}: this looks like {hit[0]}, not water data: load it with the "
                    f"{hit[1]} family (geoby ingest {hit[1]} {path.name})",
                    record=where, field="kind",
                )  # fmt: skip
            raise InvalidInput(
                f"{where}: cannot tell which water layer this is ({shape or 'no'} geometry, "
                f"fields {', '.join(columns) or 'none'}). Water kinds: {_kinds_help()}. "
                "Name the layer after its kind or pass --option kind=KIND",
                record=where, field="kind",
            )  # fmt: skip
    if shape is not None and shape != kind.shape:
        raise InvalidInput(
            f"{where}: a layer of {kind.name} needs {kind.shape} geometries, this one has "
            f"{shape}s", record=where, field="geometry",
        )  # fmt: skip
    return kind


def _by_columns(columns: list[str], shape: str | None) -> WaterKind | None:
    """The one kind whose signature columns the layer has and whose geometry fits."""
    hits = []
    for kind in KINDS.values():
        mapped = set(match(columns, kind.fields).values())
        if kind.signature and set(kind.signature) & mapped and shape in (None, kind.shape):
            hits.append(kind)
    return hits[0] if len(hits) == 1 else None


def _kinds_help() -> str:
    return "; ".join(f"{k.name} ({k.shape}s: {describe(k.fields, 6)})" for k in KINDS.values())


def _parts(path: Path, plan: list[tuple[str, WaterKind]], options) -> Iterator[Part]:
    single = len(list_layers(path)) == 1
    for layer, kind in plan:
        spec = kind.spec(owner=options.owner, licence=options.licence,
                         attribution=options.extra.get("attribution"))  # fmt: skip
        prefix = path.stem if single else f"{path.stem}-{layer}"
        first, chunks = peek(read_chunks(path, layer=layer, crs=options.crs))
        if first is None:
            log.info("%s: layer %s is empty", path.name, layer)
            continue
        yield Part(spec=spec, chunks=_rows(chunks, kind, prefix, path.name))


def _rows(chunks, kind: WaterKind, prefix: str, source: str):
    mapping = None
    seen = 0
    for chunk in chunks:
        if mapping is None:
            mapping = match([c for c in chunk.columns if c != "_record"], kind.fields)
            mapping.pop(chunk.geometry.name, None)
        out = remap(chunk, mapping, kind.fields)
        if kind.key not in mapping.values():
            out[kind.key] = generated_ids(prefix, seen, len(out))
        seen += len(out)
        if "system" in out:
            out["system"] = _systems(out, source)
        if "diameter_mm" in mapping.values():
            _check_positive(out, "diameter_mm", source)
        yield with_geometry(out, chunk)


def _systems(out: pd.DataFrame, source: str) -> pd.Series:
    raw = out["system"]
    normal = raw.map(lambda v: None if v is None or pd.isna(v) or not str(v).strip()
                     else normal_system(v))  # fmt: skip
    bad = raw.notna().to_numpy() & normal.isna().to_numpy()
    bad &= raw.map(lambda v: v is not None and not pd.isna(v) and bool(str(v).strip())).to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        raise InvalidInput(
            f"{source}: field 'system' value {raw.iloc[at]!r} is not a sewer system; "
            "use combined, storm or foul (Danish names such as faelles, regnvand and "
            "spildevand are understood)",
            record=f"record {out['_record'].iloc[at]}", field="system",
        )  # fmt: skip
    return normal.astype(object)


def _check_positive(out: pd.DataFrame, column: str, source: str) -> None:
    values = pd.to_numeric(out[column], errors="coerce")
    bad = (values <= 0).to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        raise InvalidInput(
            f"{source}: field '{column}' value {out[column].iloc[at]!r} must be greater than 0",
            record=f"record {out['_record'].iloc[at]}", field=column,
        )  # fmt: skip
