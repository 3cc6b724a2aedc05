"""Back up and restore the whole platform: the database and the data directory.

A backup is one uncompressed tar archive (its members are compressed
already) holding:

``database.dump``
    ``pg_dump --format=custom`` of the platform database, taken as the
    owner (superuser of the private cluster, or the user of
    ``GEOBY_DATABASE_URL``) inside an exported snapshot, so the row counts of
    the manifest describe exactly the dumped data.
``data/...``
    Every regular file of ``settings.data_dir``: the COG rasters (terrain,
    flood depths) and OGC job outputs.
``manifest.json`` (last member)
    Format, geoby version, schema migration version, the data directory it
    came from, the database-level settings and role settings (which
    ``pg_dump`` leaves out), row counts of every platform table and layer,
    and the SHA-256 of every other member.

Restore checks the whole archive first (it is a tar, it has a manifest of
this format, every member is listed and its checksum matches, the dump is
readable by ``pg_restore``, the schema is not newer than this geoby) and
changes nothing when any check fails. It refuses to replace a database or
data directory that holds data unless ``force`` is given. It then creates
the roles if the cluster lacks them (roles are cluster-wide, the dump never
carries their passwords), recreates the database (private cluster; on an
external server ``pg_restore --clean --if-exists`` instead), restores the
dump, re-applies the database grants and settings, sets the role passwords
through :func:`layers.migrate.migrate` (which also applies any newer
migration), puts the data directory in place, points out-db raster tiles
and job results at the new data directory when it moved, and verifies every
table's row count against the manifest.

The PostgreSQL client programs are those of the cluster's installation
(:func:`layers.pgcluster.find_binaries`), else ``pg_dump`` on the PATH;
passwords go to them through ``PGPASSWORD``, never on the command line.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import psycopg2.extensions
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn

from layers.database import ROLE_NAMES, cluster_for, connect, resolve_dsn
from layers.errors import Conflict, DatabaseError, GeobyError, InvalidInput, MissingDependency
from layers.migrate import available, migrate
from layers.pgcluster import find_binaries
from layers.settings import Settings

log = logging.getLogger(__name__)

FORMAT = "geoby-backup/1"
MANIFEST = "manifest.json"
DUMP = "database.dump"
DATA = "data"
SCHEMAS = ("geoby", "data", "restricted")
CHUNK = 1 << 20

Echo = Callable[[str], None]


@dataclass
class BackupReport:
    """What a backup or restore covered."""

    path: Path
    database: str
    tables: int
    rows: int
    layers: int
    files: int
    file_bytes: int
    schema_version: int | None
    notes: list[str] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        return (
            f"{verb} database {self.database} ({self.tables} tables, {self.rows:,} rows, "
            f"{self.layers} layers, schema {self.schema_version}) and {self.files} data files "
            f"({self.file_bytes / 2**20:.1f} MiB) {'to' if verb == 'backed up' else 'from'} "
            f"{self.path}"
        )


# -- backup ---------------------------------------------------------------------------------


def backup(settings: Settings, path: Path, *, overwrite: bool = False, echo: Echo = log.info
           ) -> BackupReport:  # fmt: skip
    """Write the database and the data directory of ``settings`` to the archive ``path``.

    Raises
    ------
    Conflict
        ``path`` exists and ``overwrite`` is false.
    MissingDependency
        No ``pg_dump`` found.
    DatabaseError
        ``pg_dump`` failed (its message is quoted).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise Conflict(f"{path} exists; pass --overwrite to replace it", field="file")
    if not path.parent.is_dir():
        raise InvalidInput(f"the folder {path.parent} does not exist", field="file")
    pg_dump = pg_tool("pg_dump")
    dsn = resolve_dsn(settings, "owner")
    data_dir = Path(settings.data_dir).resolve()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".geoby-backup-") as tmp:
        dump = Path(tmp) / DUMP
        conn = connect(dsn, application_name="geoby-backup")
        try:
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with conn.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                snapshot = cur.fetchone()[0]
                manifest = _describe(cur, settings, data_dir)
            echo(f"dumping database {settings.database.name} ({len(manifest['tables'])} tables, "
                 f"{sum(manifest['tables'].values()):,} rows)")  # fmt: skip
            run_pg(pg_dump, ["--format=custom", f"--snapshot={snapshot}", "--file", str(dump)], dsn)
        finally:
            conn.close()
        part = path.with_name(path.name + ".part")
        with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
            manifest["files"] = {DUMP: _add(tar, dump, DUMP)}
            files = list(_data_files(data_dir))
            echo(f"archiving {len(files)} files of the data directory {data_dir}")
            for file in files:
                name = f"{DATA}/{file.relative_to(data_dir).as_posix()}"
                manifest["files"][name] = _add(tar, file, name)
            body = json.dumps(manifest, indent=2, default=str).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(body), int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
        os.replace(part, path)
    return _report(path, manifest)


def _describe(cur: Any, settings: Settings, data_dir: Path) -> dict[str, Any]:
    """The manifest's description of the database, read in the dump's snapshot."""
    cur.execute("SELECT current_setting('server_version'), postgis_lib_version()")
    server, postgis = cur.fetchone()
    return {
        "format": FORMAT,
        "geoby_version": _version(),
        "created_at": datetime.now(UTC).isoformat(),
        "database": settings.database.name,
        "postgresql": server,
        "postgis": postgis,
        "schema_version": _schema_version(cur),
        "data_dir": str(data_dir),
        "database_settings": _database_settings(cur),
        "role_settings": _role_settings(cur),
        "tables": table_counts(cur),
        "layers": _layer_counts(cur),
    }


def table_counts(cur: Any) -> dict[str, int]:
    """Exact row counts of every table of the platform schemas and the migrations table."""
    cur.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND (n.nspname = ANY(%s) OR (n.nspname = 'public'"
        " AND c.relname = 'geoby_schema_migrations')) ORDER BY 1, 2",
        (list(SCHEMAS),),
    )
    counts = {}
    for schema, table in cur.fetchall():
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
        counts[f"{schema}.{table}"] = cur.fetchone()[0]
    return counts


def _schema_version(cur: Any) -> int | None:
    cur.execute("SELECT to_regclass('public.geoby_schema_migrations')")
    if cur.fetchone()[0] is None:
        return None
    cur.execute("SELECT max(version) FROM public.geoby_schema_migrations")
    return cur.fetchone()[0]


def _layer_counts(cur: Any) -> dict[str, int | None]:
    cur.execute("SELECT to_regclass('geoby.layers')")
    if cur.fetchone()[0] is None:
        return {}
    cur.execute("SELECT id, row_count FROM geoby.layers ORDER BY id")
    return dict(cur.fetchall())


def _database_settings(cur: Any) -> list[str]:
    """``ALTER DATABASE ... SET`` values (``name=value``), which pg_dump leaves out."""
    cur.execute(
        "SELECT unnest(setconfig) FROM pg_db_role_setting s JOIN pg_database d"
        " ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0"
    )
    return [row[0] for row in cur.fetchall()]


def _role_settings(cur: Any) -> dict[str, list[str]]:
    """``ALTER ROLE ... SET`` values of geoby's roles (cluster-wide, not in a dump)."""
    cur.execute(
        "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r"
        " ON r.oid = s.setrole WHERE s.setdatabase = 0 AND r.rolname = ANY(%s)",
        (list(ROLE_NAMES.values()),),
    )
    return {name: list(config) for name, config in cur.fetchall()}


def _data_files(data_dir: Path) -> Iterator[Path]:
    if not data_dir.is_dir():
        return
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        for name in sorted(files):
            file = Path(root) / name
            if file.is_file() and not file.is_symlink():
                yield file


class _Hashing(io.RawIOBase):
    """A file read through while its SHA-256 is computed (one pass per file)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.sha = fh, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.fh.read(size)
        self.sha.update(chunk)
        return chunk


def _add(tar: tarfile.TarFile, file: Path, name: str) -> dict[str, Any]:
    info = tar.gettarinfo(str(file), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with file.open("rb") as fh:
        hashing = _Hashing(fh)
        tar.addfile(info, hashing)
    return {"sha256": hashing.sha.hexdigest(), "bytes": info.size}


# -- restore --------------------------------------------------------------------------------


def restore(settings: Settings, path: Path, *, force: bool = False, echo: Echo = log.info
            ) -> BackupReport:  # fmt: skip
    """Replace the database and data directory of ``settings`` by the backup ``path``.

    Raises
    ------
    InvalidInput
        The file is not a geoby backup, or it is corrupt (nothing was changed).
    Conflict
        The target holds data and ``force`` is false (nothing was changed).
    DatabaseError
        ``pg_restore`` failed, or the restored row counts differ from the manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no backup file at {path}", field="file")
    pg_restore = pg_tool("pg_restore")
    data_dir = Path(settings.data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir.parent, prefix=".geoby-restore-") as tmp:
        staging = Path(tmp)
        echo(f"checking {path}")
        manifest = read_archive(path, staging)
        dump = staging / DUMP
        run_pg(pg_restore, ["--list", str(dump)], None, what="the database dump")
        _refuse_newer_schema(manifest)
        _refuse_data(settings, data_dir, force)
        echo(f"restoring database {settings.database.name} ({len(manifest['tables'])} tables, "
             f"{sum(manifest['tables'].values()):,} rows)")  # fmt: skip
        _restore_database(settings, pg_restore, dump, manifest)
        echo(f"restoring {len(manifest['files']) - 1} data files to {data_dir}")
        _install_data_dir(staging / DATA, data_dir)
    notes = _repoint_files(settings, manifest["data_dir"], data_dir)
    _verify(settings, manifest)
    report = _report(path, manifest)
    report.notes = notes
    return report


def read_archive(path: Path, staging: Path) -> dict[str, Any]:
    """Extract and check the archive ``path`` into ``staging``; return its manifest.

    Raises
    ------
    InvalidInput
        Not a tar, no manifest, wrong format, a member missing, unlisted or with
        a checksum that does not match.
    """
    try:
        with tarfile.open(path, "r:") as tar:
            members = tar.getmembers()
            names = {m.name for m in members}
            if MANIFEST not in names:
                raise InvalidInput(f"{path} is not a geoby backup (no {MANIFEST})", field="file")
            manifest = _manifest(tar, path)
            listed = set(manifest["files"]) | {MANIFEST}
            unlisted = sorted(n for n in names - listed if not tar.getmember(n).isdir())
            missing = sorted(set(manifest["files"]) - names)
            if unlisted or missing:
                raise InvalidInput(
                    f"{path} is corrupt: members {', '.join(missing)} missing"
                    if missing else f"{path} holds members its manifest does not list: "
                    f"{', '.join(unlisted[:5])}", field="file",
                )  # fmt: skip
            tar.extractall(staging, members=[m for m in members if m.name != MANIFEST],
                           filter="data")  # fmt: skip
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{path} is not a readable geoby backup (corrupt or truncated archive: {exc})",
            field="file", log_detail=repr(exc),
        ) from exc  # fmt: skip
    for name, expected in manifest["files"].items():
        if _sha256(staging / name) != expected["sha256"]:
            raise InvalidInput(f"{path} is corrupt: the checksum of {name} does not match its "
                               "manifest; nothing was restored", field="file")  # fmt: skip
    return manifest


def _manifest(tar: tarfile.TarFile, path: Path) -> dict[str, Any]:
    fh = tar.extractfile(MANIFEST)
    try:
        manifest = json.loads(fh.read()) if fh else None
    except ValueError as exc:
        raise InvalidInput(f"{path}: its {MANIFEST} is not valid JSON", field="file") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise InvalidInput(f"{path} is not a {FORMAT} archive (format {found!r})", field="file")
    if DUMP not in manifest.get("files", {}):
        raise InvalidInput(f"{path}: the manifest lists no {DUMP}", field="file")
    return manifest


def _sha256(file: Path) -> str:
    sha = hashlib.sha256()
    with file.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _refuse_newer_schema(manifest: dict[str, Any]) -> None:
    known = max(m.version for m in available())
    if (manifest.get("schema_version") or 0) > known:
        raise InvalidInput(
            f"the backup's schema version {manifest['schema_version']} is newer than this geoby's "
            f"({known}; geoby {_version()}); restore it with geoby {manifest['geoby_version']}",
            field="file",
        )


def _refuse_data(settings: Settings, data_dir: Path, force: bool) -> None:
    """Raise :class:`Conflict` when the target holds data and ``force`` is false."""
    if force:
        return
    held = []
    counts = _target_counts(settings)
    if counts:
        held.append(", ".join(f"{n} {what}" for what, n in counts.items()))
    if any(_data_files(data_dir)):
        held.append(f"files in {data_dir}")
    if held:
        raise Conflict(
            f"database {settings.database.name} already holds data ({'; '.join(held)}); a "
            "restore replaces it: pass --force to do so", field="force",
        )  # fmt: skip


def _target_counts(settings: Settings) -> dict[str, int]:
    """Layers, users and dig requests in the target database (empty when it is missing)."""
    try:
        conn = connect(resolve_dsn(settings, "owner"))
    except GeobyError:
        if settings.database.url is None:
            return {}  # the private cluster's database does not exist yet
        raise
    try:
        with conn, conn.cursor() as cur:
            found = {}
            for table in ("layers", "users", "dig_requests"):
                cur.execute("SELECT to_regclass(%s)", (f"geoby.{table}",))
                if cur.fetchone()[0] is None:
                    continue
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("geoby",
                                                                                    table)))  # fmt: skip
                n = cur.fetchone()[0]
                if n:
                    found[table.replace("_", " ")] = n
            return found
    finally:
        conn.close()


def _restore_database(settings: Settings, pg_restore: str, dump: Path,
                      manifest: dict[str, Any]) -> None:  # fmt: skip
    name = settings.database.name
    admin = _admin_conn(settings)
    try:
        with admin.cursor() as cur:
            _ensure_roles(cur)
            for role, config in manifest.get("role_settings", {}).items():
                if role in ROLE_NAMES.values():
                    for item in config:
                        _set(cur, sql.SQL("ALTER ROLE {}").format(sql.Identifier(role)), item)
            if settings.database.url is None:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))  # fmt: skip
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = resolve_dsn(settings, "owner")
        if settings.database.url is None:
            args = ["--exit-on-error", "--single-transaction"]
        else:
            args = ["--exit-on-error", "--clean", "--if-exists"]
        run_pg(pg_restore, [*args, str(dump)], dsn, what="pg_restore")
        with admin.cursor() as cur:
            database = sql.SQL("ALTER DATABASE {}").format(sql.Identifier(name))
            for item in manifest.get("database_settings", []):
                _set(cur, database, item)
            cur.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
            )
            cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, ROLE_NAMES.values()))))  # fmt: skip
    finally:
        admin.close()
    migrate(settings)  # role passwords; newer migrations of this geoby


def _admin_conn(settings: Settings) -> psycopg2.extensions.connection:
    """An autocommit owner connection outside the target database (for DROP/CREATE)."""
    if settings.database.url is None:
        dsn = cluster_for(settings).superuser_dsn("postgres")
    else:
        dsn = resolve_dsn(settings, "owner")
    conn = connect(dsn, application_name="geoby-restore")
    conn.autocommit = True
    return conn


def _ensure_roles(cur: Any) -> None:
    for name in ROLE_NAMES.values():
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
                        .format(sql.Identifier(name)))  # fmt: skip
            log.info("created role %s (its password is set by the migration runner)", name)


def _set(cur: Any, target: sql.Composable, item: str) -> None:
    """``ALTER DATABASE|ROLE target SET name = value`` from a ``name=value`` setting."""
    key, _, value = item.partition("=")
    cur.execute(sql.SQL("{} SET {} = %s").format(target, sql.Identifier(*key.split("."))), (value,))


def _install_data_dir(restored: Path, data_dir: Path) -> None:
    """Replace the data directory by the restored one (same file system: a rename)."""
    restored.mkdir(exist_ok=True)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    restored.rename(data_dir)
    if os.geteuid() == 0:  # the private cluster's server (user postgres) reads the COGs
        for directory in [data_dir, *data_dir.parents]:
            mode = directory.stat().st_mode
            if not mode & 0o001:
                os.chmod(directory, mode | 0o001)
        for root, dirs, _ in os.walk(data_dir):
            for name in dirs:
                sub = Path(root) / name
                os.chmod(sub, sub.stat().st_mode | 0o005)


def _repoint_files(settings: Settings, old: str, new: Path) -> list[str]:
    """Point out-db raster tiles and job result files at the restored data directory."""
    if Path(old) == new:
        return []
    old_prefix, new_prefix = old.rstrip("/") + "/", str(new).rstrip("/") + "/"
    conn = connect(resolve_dsn(settings, "owner"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE data.raster_tiles SET rast = ST_SetBandPath(rast, 1,"
                " %(new)s || substr(ST_BandPath(rast, 1), length(%(old)s) + 1),"
                " (SELECT m.outdbbandnum FROM ST_BandMetadata(rast, 1) AS m), true)"
                " WHERE starts_with(ST_BandPath(rast, 1), %(old)s)",
                {"old": old_prefix, "new": new_prefix},
            )
            tiles = cur.rowcount
            cur.execute(
                "UPDATE geoby.jobs SET location = %(new)s || substr(location, length(%(old)s) + 1)"
                " WHERE starts_with(location, %(old)s)",
                {"old": old_prefix, "new": new_prefix},
            )
            jobs = cur.rowcount
    finally:
        conn.close()
    return [f"data directory moved from {old}: {tiles} raster tiles and {jobs} job results "
            "re-pointed"]  # fmt: skip


def _verify(settings: Settings, manifest: dict[str, Any]) -> None:
    conn = connect(resolve_dsn(settings, "owner"))
    try:
        with conn, conn.cursor() as cur:
            counts = table_counts(cur)
    finally:
        conn.close()
    wrong = [f"{t}: {counts.get(t)} rows, the backup {n}" for t, n in manifest["tables"].items()
             if counts.get(t) != n]  # fmt: skip
    if wrong:
        raise DatabaseError("the restored database differs from the backup: " + "; ".join(wrong))


def _report(path: Path, manifest: dict[str, Any]) -> BackupReport:
    data = [f for name, f in manifest["files"].items() if name != DUMP]
    return BackupReport(
        path=path, database=manifest["database"], tables=len(manifest["tables"]),
        rows=sum(manifest["tables"].values()), layers=len(manifest["layers"]), files=len(data),
        file_bytes=sum(f["bytes"] for f in data), schema_version=manifest["schema_version"],
    )  # fmt: skip


# -- the PostgreSQL client programs ------------------------------------------------------------


def pg_tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: the cluster's installation, else the PATH.

    Raises
    ------
    MissingDependency
        Neither has it.
    """
    binaries = find_binaries()
    if binaries is not None and Path(binaries(name)).exists():
        return binaries(name)
    found = shutil.which(name)
    if found:
        return found
    raise MissingDependency(
        f"{name} is missing: install the PostgreSQL client programs of the server's major "
        "version (Debian/Ubuntu: postgresql-client-<major>)"
    )


def run_pg(program: str, args: list[str], dsn: str | None, *, what: str | None = None) -> None:
    """Run a PostgreSQL client program; the password travels in ``PGPASSWORD`` only.

    Raises
    ------
    DatabaseError
        The program failed; its last line of error output is quoted.
    """
    env = {**os.environ}
    cmd = [program, *args]
    if dsn is not None:
        parts = parse_dsn(dsn)
        password = parts.pop("password", None)
        if password:
            env["PGPASSWORD"] = password
        cmd += ["--no-password", "--dbname", make_dsn(**parts)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit {proc.returncode}"
        label = what or Path(program).name
        if what == "the database dump":
            raise InvalidInput(f"the backup's database dump is unreadable: {reason}", field="file")
        raise DatabaseError(f"{label} failed: {reason}", log_detail=proc.stderr[-4000:])


def _version() -> str:
    try:
        return metadata.version("geoby")
    except metadata.PackageNotFoundError:
        return "unknown"
