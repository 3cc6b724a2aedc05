"""The shared loader every vector and table pipeline uses.

A file becomes one or more :class:`Part` (a target :class:`~ingest.spec.TableSpec`
and an iterator of record chunks). :func:`load_file` loads all parts of one
file in one transaction, so a file is all or nothing:

1. a file whose checksum the catalog already records is a no-op (``replace``
   reloads it);
2. each chunk is validated, repaired and reprojected (:mod:`ingest.prepare`)
   and ``COPY``-ed into a temporary staging table;
3. keys are checked for duplicates inside the file and, for ``insert``,
   against rows already loaded; features far from all others are reported;
4. the staged rows are merged into the target table by the mode: ``insert``
   (new rows only), ``upsert`` (by the natural key), ``replace`` (every row of
   the same source label is replaced);
5. the layer is registered in the catalog with the file's provenance.

Any failure rolls everything back; the error names the file, the record and
the field or coordinate at fault.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import pandas as pd
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from ingest.prepare import Reject, prepare_chunk
from ingest.source import SourceFile
from ingest.spec import TableSpec
from layers import catalog
from layers.catalog import Source
from layers.crs import STORAGE_EPSG
from layers.database import Database
from layers.errors import Conflict, InvalidInput
from layers.progress import progress

log = logging.getLogger(__name__)
T = TypeVar("T")

Mode = Literal["insert", "upsert", "replace"]
MODES: tuple[str, ...] = ("insert", "upsert", "replace")
SHOWN_REJECTS = 5
OUTLIER_MIN_M = 50_000.0
OUTLIER_FACTOR = 10.0


@dataclass
class Part:
    """One target layer of a file and the chunks of records for it.

    ``set_aside`` holds records the family's reader left out while reading
    the chunks (an object the source registers without a position): they
    are kept in ``geoby.load_rejects`` and counted as rejected, whatever
    ``skip_invalid`` says.
    """

    spec: TableSpec
    chunks: Iterable[pd.DataFrame]
    set_aside: list[Reject] = field(default_factory=list)


@dataclass
class LoadReport:
    """What one load did."""

    source: str
    checksum: str
    mode: str
    layers: list[str] = field(default_factory=list)
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    repaired: int = 0
    rejected: int = 0
    seconds: float = 0.0
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one-line summary the CLI prints."""
        if self.skipped:
            return f"{self.source}: already loaded (same checksum); use --mode replace to reload"
        changed = f"{self.inserted:,} inserted"
        if self.updated:
            changed += f", {self.updated:,} updated"
        if self.deleted:
            changed += f", {self.deleted:,} replaced"
        return (
            f"{self.source} -> {', '.join(self.layers)}: {self.rows_in:,} rows in, {changed}, "
            f"{self.repaired:,} repaired, {self.rejected:,} rejected, {self.seconds:.1f} s"
            + (f", {len(self.warnings)} warnings" if self.warnings else "")
        )


def load_file(
    database: Database,
    source: SourceFile,
    parts: Iterable[Part],
    *,
    mode: Mode = "insert",
    skip_invalid: bool = False,
    show_progress: bool | None = None,
) -> LoadReport:
    """Load every part of one file in one transaction.

    Parameters
    ----------
    database
        Where to load (as the ``ingest`` role).
    source
        The file, with its checksum.
    parts
        Its layers; read lazily, so nothing is read for a file already loaded.
    mode
        ``insert``, ``upsert`` or ``replace``.
    skip_invalid
        Load the valid records and keep the refused ones in
        ``geoby.load_rejects`` instead of refusing the whole file.
    show_progress
        Progress bar: ``None`` shows it on a terminal only.

    Raises
    ------
    InvalidInput
        A record, field or coordinate was refused; nothing was loaded.
    Conflict
        ``insert`` of keys that are already loaded.
    """
    if mode not in MODES:
        raise InvalidInput(f"unknown mode '{mode}'; one of {', '.join(MODES)}", field="mode")
    started = time.perf_counter()
    report = LoadReport(source=source.name, checksum=source.checksum, mode=mode)
    with database.connection("ingest") as conn:
        with conn.cursor() as cur:  # a bulk load is bounded by its file, not by a timeout
            cur.execute("SET LOCAL statement_timeout = 0")
        if mode != "replace" and catalog.find_source(conn, source.checksum) is not None:
            report.skipped = True
            return report
        for index, part in enumerate(parts):
            _load_part(conn, index, part, source, report, mode, skip_invalid, show_progress)
        if not report.layers:
            raise InvalidInput(f"{source.name} holds no records to load", record=source.name)
    report.seconds = time.perf_counter() - started
    log.info("%s", report.summary())
    return report


def _load_part(conn, index, part, source, report, mode, skip_invalid, show_progress) -> None:
    spec = part.spec
    stage = sql.Identifier(f"_stage_{index}")
    columns = list(spec.columns)
    _create_stage(conn, stage, spec)
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        stage,
        sql.SQL(", ").join(
            map(sql.Identifier, ["_record", *columns, *(["geom"] if spec.spatial else [])])
        ),
    )
    staged, has_z, rejects, centres = 0, False, [], []
    label = f"{source.name} -> {spec.layer.id}"
    with conn.cursor() as cur:
        prepared_chunks = in_background(
            (len(chunk), prepare_chunk(chunk, spec, source=source.name)) for chunk in part.chunks
        )
        for n_rows, prepared in progress(prepared_chunks, desc=label, unit="chunk",
                                         enabled=show_progress):  # fmt: skip
            report.rows_in += n_rows
            report.repaired += prepared.repaired
            if prepared.rejects and not skip_invalid:
                raise _refusal(prepared.rejects, source)
            rejects.extend(prepared.rejects)
            has_z |= prepared.has_z
            if prepared.centres is not None:
                centres.append((prepared.centres, prepared.records))
            if prepared.rows:
                cur.copy_expert(copy.as_string(conn), io.BytesIO(prepared.csv))
                staged += prepared.rows
    rejects.extend(part.set_aside)
    if staged == 0 and not rejects:
        return
    report.rejected += len(rejects)
    _keep_rejects(conn, spec, source, rejects)
    if centres:
        report.warnings.extend(far_away(centres, source))
    inserted, updated, deleted = _merge_checked(conn, stage, spec, source, mode, has_z)
    report.inserted += inserted
    report.updated += updated
    report.deleted += deleted
    _register(conn, spec, source, mode, staged, report)
    report.layers.append(spec.layer.id)


def in_background(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce ``items`` in a worker thread, ``depth`` ahead of the consumer.

    Reading and preparing the next chunk (GDAL, GEOS, Arrow: all release the
    GIL) overlaps with ``COPY`` of the current one. An exception in the worker
    is raised in the consumer; a consumer that stops early stops the worker.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((True, item))
            buffer.put((True, done))
        except BaseException as exc:  # handed to the consumer, re-raised there
            buffer.put((False, exc))

    worker = threading.Thread(target=work, name="geoby-prepare", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = buffer.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full buffer
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def _refusal(rejects: list[Reject], source: SourceFile) -> InvalidInput:
    shown = "; ".join(f"record {r.record}: {r.reason.removeprefix(source.name + ': ')}"
                      for r in rejects[:SHOWN_REJECTS])  # fmt: skip
    more = f" (and {len(rejects) - SHOWN_REJECTS} more)" if len(rejects) > SHOWN_REJECTS else ""
    return InvalidInput(
        f"{source.name}: {len(rejects)} records refused, nothing loaded: {shown}{more}",
        record=f"record {rejects[0].record}",
        field=rejects[0].field,
        extra={"rejected": [{"record": r.record, "reason": r.reason} for r in rejects[:100]]},
    )


def _create_stage(conn: Connection, stage: sql.Identifier, spec: TableSpec) -> None:
    cols = [sql.SQL("_record text")]
    cols += [
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in spec.columns.items()
    ]
    if spec.spatial:
        cols.append(sql.SQL("geom geometry"))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        cur.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
            stage, sql.SQL(", ").join(cols)))  # fmt: skip


def _keep_rejects(conn, spec: TableSpec, source: SourceFile, rejects: list[Reject]) -> None:
    if not rejects:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO geoby.load_rejects (layer_id, source_file, checksum, record, reason, field)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [(spec.layer.id, source.name, source.checksum, r.record, r.reason, r.field)
             for r in rejects],
        )  # fmt: skip


def _key_list(spec: TableSpec) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, spec.key))


def _check_duplicate_keys(conn, stage, spec: TableSpec, source: SourceFile) -> None:
    if not spec.key:
        return
    with conn.cursor() as cur:
        cur.execute(sql.SQL(
            "SELECT ({k})::text, array_agg(_record ORDER BY _record) FROM {s}"
            " GROUP BY {k} HAVING count(*) > 1 LIMIT 5"
        ).format(k=_key_list(spec), s=stage))  # fmt: skip
        dups = cur.fetchall()
    if dups:
        key, records = dups[0]
        raise InvalidInput(
            f"{source.name}: key {', '.join(spec.key)} = {key} occurs in records "
            f"{', '.join(records[:5])}; a key must be unique within a file",
            record=f"record {records[1]}", field=spec.key[0],
        )  # fmt: skip


def far_away(centres: list[tuple[np.ndarray, np.ndarray]], source: SourceFile) -> list[str]:
    """Features far from all the others: likely a wrong coordinate.

    A point at a grid's false origin or with swapped axes lies hundreds of
    kilometres from the rest. Flagged: box centres farther from the median
    centre than max(50 km, 10 x the 90th percentile distance); at most 20.
    """
    xy = np.concatenate([c for c, _ in centres])
    records = np.concatenate([r for _, r in centres])
    if len(xy) < 3:
        return []
    dist = np.hypot(*(xy - np.median(xy, axis=0)).T)
    limit = max(OUTLIER_MIN_M, OUTLIER_FACTOR * float(np.percentile(dist, 90)))
    flagged = np.flatnonzero(dist > limit)
    flagged = flagged[np.argsort(-dist[flagged])][:20]
    warnings = [
        f"{source.name}: record {records[i]} lies {dist[i] / 1000:,.0f} km from the other "
        f"features (at E {xy[i, 0]:,.0f}, N {xy[i, 1]:,.0f} in EPSG:{STORAGE_EPSG}); "
        "check its coordinates"
        for i in flagged
    ]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _table_geometry(spec: TableSpec, has_z: bool) -> sql.Composable:
    kind = spec.geometry_type + ("Z" if has_z else "")
    return sql.SQL(f"geometry({kind}, {STORAGE_EPSG})")  # kind is from a fixed set


def _existing_columns(conn, spec: TableSpec) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            (f'"{spec.layer.table_schema}"."{spec.layer.table_name}"',),
        )
        return dict(cur.fetchall())


def ensure_layer(conn, spec: TableSpec) -> bool:
    """Create a layer's empty table with its indexes and catalog entry, if it is missing.

    For tables that are filled by other means than files (live sensor readings).
    Returns whether it was created; the caller commits.
    """
    if _existing_columns(conn, spec):
        return False
    # Concurrent first writers (readings arriving at once): one creates, the others wait
    # for its commit and then find the table.
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"geoby.layer:{spec.layer.id}",))
    if _existing_columns(conn, spec):
        return False
    _ensure_table(conn, spec, has_z=False)
    _create_indexes(conn, spec)
    catalog.register(conn, spec.layer)
    return True


def _ensure_table(conn, spec: TableSpec, has_z: bool) -> bool:
    """Create the target table, or evolve it; return whether it was created."""
    table = spec.layer.qualified_table
    existing = _existing_columns(conn, spec)
    with conn.cursor() as cur:
        if not existing:
            cols = [sql.SQL("fid bigserial PRIMARY KEY")]
            cols += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                     for c, t in spec.columns.items()]  # fmt: skip
            if spec.spatial:
                cols.append(sql.SQL("geom {}").format(_table_geometry(spec, has_z)))
            cols += [sql.SQL("_source text NOT NULL"), sql.SQL("_record text NOT NULL"),
                     sql.SQL("_loaded_at timestamptz NOT NULL DEFAULT now()")]  # fmt: skip
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols)))
            return True
        _evolve_table(cur, spec, existing, has_z)
        return False


def _create_indexes(conn, spec: TableSpec) -> None:
    """Indexes of a new table, built once after its first load (cheaper than per row)."""
    table = spec.layer.qualified_table
    with conn.cursor() as cur:
        if spec.spatial:
            cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(table))
        cur.execute(sql.SQL("CREATE INDEX ON {} (_source)").format(table))
        if spec.key:
            cur.execute(sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(table, _key_list(spec)))
        for column in spec.indexes:
            cur.execute(sql.SQL("CREATE INDEX ON {} ({})").format(table, sql.Identifier(column)))


def _evolve_table(cur, spec: TableSpec, existing: dict[str, str], has_z: bool) -> None:
    table = spec.layer.qualified_table
    if spec.spatial:
        declared = existing.get("geom", "")
        if f",{STORAGE_EPSG})" not in declared.replace(" ", ""):
            raise InvalidInput(
                f"table {spec.layer.table_schema}.{spec.layer.table_name} stores {declared or 'no geometry'},"
                f" not EPSG:{STORAGE_EPSG}; refusing to append", field="geom",
            )  # fmt: skip
        if has_z and "z," not in declared.lower().replace(" ", ""):
            cur.execute(sql.SQL(
                "ALTER TABLE {} ALTER COLUMN geom TYPE {} USING ST_Force3D(geom, 'NaN')"
            ).format(table, _table_geometry(spec, True)))  # fmt: skip
    for name, pg_type in spec.columns.items():
        if name not in existing:
            cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                table, sql.Identifier(name), sql.SQL(pg_type)))  # fmt: skip
        elif _normal_type(existing[name]) != _normal_type(pg_type):
            raise InvalidInput(
                f"column {name} of {spec.layer.table_name} is {existing[name]}, the file gives "
                f"{pg_type}; load into another layer or convert the field", field=name,
            )  # fmt: skip


def _normal_type(pg_type: str) -> str:
    return {"timestamp with time zone": "timestamptz"}.get(pg_type, pg_type)


def _geom_expression(conn, spec: TableSpec) -> sql.Composable:
    declared = _existing_columns(conn, spec).get("geom", "").lower().replace(" ", "")
    expr = sql.SQL("ST_SetSRID(geom, {})").format(sql.Literal(STORAGE_EPSG))
    if spec.geometry_type and spec.geometry_type.startswith("Multi"):
        expr = sql.SQL("ST_Multi({})").format(expr)
    if "z," in declared:
        expr = sql.SQL("ST_Force3D({}, 'NaN')").format(expr)
    return expr


def _merge_checked(conn, stage, spec, source, mode, has_z) -> tuple[int, int, int]:
    """Merge, letting the unique key index find duplicates; name them only on failure.

    Checking keys up front costs a full aggregate over the staged rows (41 s
    for 16 M rows); the unique index finds a duplicate anyway, so the checks
    that name the offending records run only after it has.
    """
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT geoby_merge")
    try:
        created = _ensure_table(conn, spec, has_z)
        # a new table holds nothing to conflict with: plain insert, then build the indexes
        counts = _merge(conn, stage, spec, source, "insert" if created else mode)
        if created:
            _create_indexes(conn, spec)
        return counts
    except (psycopg2.errors.UniqueViolation, psycopg2.errors.CardinalityViolation):
        with conn.cursor() as cur:
            cur.execute("ROLLBACK TO SAVEPOINT geoby_merge")
            _check_duplicate_keys(conn, stage, spec, source)
            if mode != "upsert":
                _check_already_loaded(cur, stage, spec, source)
        raise


def _merge(conn, stage, spec: TableSpec, source: SourceFile, mode: str) -> tuple[int, int, int]:
    table = spec.layer.qualified_table
    cols = list(spec.columns) + (["geom"] if spec.spatial else [])
    target_cols = sql.SQL(", ").join(map(sql.Identifier, [*cols, "_source", "_record"]))
    values = [sql.Identifier(c) for c in spec.columns]
    if spec.spatial:
        values.append(_geom_expression(conn, spec))
    select = sql.SQL("SELECT {}, %(label)s, _record FROM {}").format(
        sql.SQL(", ").join(values), stage)  # fmt: skip
    params = {"label": source.label}
    deleted = 0
    with conn.cursor() as cur:
        if mode == "replace":
            cur.execute(sql.SQL("DELETE FROM {} WHERE _source = %(label)s").format(table), params)
            deleted = cur.rowcount
        if mode == "upsert" and spec.key:
            updates = sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                for c in [*cols, "_source", "_record"]
            )
            cur.execute(sql.SQL(
                "WITH ins AS (INSERT INTO {t} ({c}) {s} ON CONFLICT ({k}) DO UPDATE SET {u},"
                " _loaded_at = now() RETURNING (xmax = 0) AS fresh)"
                " SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) FROM ins"
            ).format(t=table, c=target_cols, s=select, k=_key_list(spec), u=updates), params)  # fmt: skip
            inserted, updated = cur.fetchone()
            return inserted, updated, deleted
        if mode == "upsert":
            raise InvalidInput(f"layer {spec.layer.id} has no natural key; use --mode insert or replace",
                               field="mode")  # fmt: skip
        cur.execute(sql.SQL("INSERT INTO {} ({}) {}").format(table, target_cols, select), params)
        return cur.rowcount, 0, deleted


def _check_already_loaded(cur, stage, spec: TableSpec, source: SourceFile) -> None:
    join = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in spec.key
    )
    cur.execute(sql.SQL(
        "SELECT s._record, t._source FROM {s} s JOIN {t} t ON {j} LIMIT 1"
    ).format(s=stage, t=spec.layer.qualified_table, j=join))  # fmt: skip
    hit = cur.fetchone()
    if hit:
        raise Conflict(
            f"{source.name}: record {hit[0]} has a key already loaded from {hit[1]}; "
            "use --mode upsert to update it or --mode replace to reload that source",
            record=f"record {hit[0]}",
        )


def _register(conn, spec: TableSpec, source: SourceFile, mode: str, staged: int, report) -> None:
    layer = spec.layer.model_copy(update={"geometry_type": spec.geometry_type,
                                          "storage_srid": STORAGE_EPSG})  # fmt: skip
    catalog.register(conn, layer)
    catalog.record_source(conn, Source(
        layer_id=layer.id, source_file=str(source.path), checksum=source.checksum, mode=mode,
        row_count=staged, rows_repaired=report.repaired, rows_rejected=report.rejected,
    ))  # fmt: skip
    catalog.refresh_statistics(conn, layer.id)
