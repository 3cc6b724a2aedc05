"""``geoby backup`` / ``geoby restore``: the whole platform round-trips through one archive.

The sample town is loaded through the real pipelines into the test database
with its own data directory, backed up, and restored into ANOTHER database
and data directory (the session database stays untouched). Every platform
table must come back with the same row count and the same rows (an md5 over
the ordered rows), the raster files byte for byte, and the out-db terrain
must answer heights from its new place. A corrupt, truncated or foreign
file is refused with a clear error and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg2 import sql

from api.cli import cli
from layers import backup as backups
from layers.database import Database, cluster_for, connect
from layers.errors import Conflict, InvalidInput
from layers.settings import Settings
from tests.dig.conftest import reset_database
from tests.flood.conftest import load_town
from tests.reliability.record import record

# The out-db raster column holds the COG's absolute path, which a restore to another
# data directory rewrites: it is compared by its metadata and path relative to the folder.
RASTER_ROW = (
    "SELECT md5(string_agg(concat_ws('|', layer_id, tile_id, extent::text,"
    " ST_MetaData(rast)::text, replace(ST_BandPath(rast, 1), %s, '')), ','"
    " ORDER BY layer_id, tile_id)) FROM data.raster_tiles"
)


def fingerprint(settings: Settings) -> dict[str, tuple[int, str | None]]:
    """Row count and md5 of the ordered rows of every platform table."""
    conn = connect(Database(settings).dsn("owner"))
    try:
        with conn, conn.cursor() as cur:
            counts = backups.table_counts(cur)
            found = {}
            for name, n in counts.items():
                schema, table = name.split(".")
                if name == "data.raster_tiles":
                    cur.execute(RASTER_ROW, (str(settings.data_dir.resolve()) + "/",))
                else:
                    cur.execute(
                        sql.SQL("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {} t")
                        .format(sql.Identifier(schema, table))
                    )  # fmt: skip
                found[name] = (n, cur.fetchone()[0])
            return found
    finally:
        conn.close()


def file_digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }  # fmt: skip


def drop_database(settings: Settings) -> None:
    conn = connect(cluster_for(settings).superuser_dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                        (settings.database.name,))  # fmt: skip
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(
                sql.Identifier(settings.database.name)))  # fmt: skip
    finally:
        conn.close()


def terrain_height(settings: Settings) -> tuple[str, float, float, float | None]:
    """A terrain layer's height at the centre of its first tile (read from the COG)."""
    conn = connect(Database(settings).dsn("read"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT layer_id, ST_X(c), ST_Y(c) FROM (SELECT layer_id,"
                " ST_Centroid(extent) AS c FROM data.raster_tiles ORDER BY layer_id, tile_id"
                " LIMIT 1) t"
            )
            layer, x, y = cur.fetchone()
            cur.execute("SELECT geoby.terrain_height(%s, %s, %s)", (layer, x, y))
            return layer, x, y, cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def source(settings: Settings, town_dir: Path, tmp_path_factory) -> Settings:
    """The test database with the sample town loaded into its own data directory."""
    data_dir = tmp_path_factory.mktemp("backup") / "data"
    source = settings.model_copy(update={"data_dir": data_dir})
    database = Database(source)
    reset_database(database, drop_utilities=True)
    try:
        load_town(database, town_dir)
    finally:
        database.close()
    return source


@pytest.fixture(scope="module")
def target(settings: Settings, tmp_path_factory) -> Iterator[Settings]:
    """Another database and data directory of the same cluster, dropped afterwards."""
    name = f"{settings.database.name}_restore"
    database = settings.database
    target = settings.model_copy(update={
        "database": database.model_copy(update={"name": name}),
        "data_dir": tmp_path_factory.mktemp("restore") / "data",
    })  # fmt: skip
    drop_database(target)
    yield target
    drop_database(target)


def test_backup_and_restore_round_trip_the_platform(source, target, tmp_path):
    archive = tmp_path / "geoby.tar"
    lines: list[str] = []
    made = backups.backup(source, archive, echo=lines.append)
    assert archive.is_file() and lines, "no archive or no progress"
    before = fingerprint(source)
    files_before = file_digests(source.data_dir)
    height_before = terrain_height(source)
    assert made.tables == len(before) and made.files == len(files_before) > 0
    assert any(name.endswith(".tif") for name in files_before), "no raster in the data dir"
    with pytest.raises(Conflict, match="--overwrite"):
        backups.backup(source, archive)

    restored = backups.restore(target, archive, echo=lines.append)
    after = fingerprint(target)
    files_after = file_digests(target.data_dir)

    failures = [name for name in before if before[name] != after.get(name)]
    failures += [f"file {n}" for n in files_before if files_before[n] != files_after.get(n)]
    height_after = terrain_height(target)
    if height_after != height_before:
        failures.append(f"terrain height {height_before} became {height_after}")
    rows = sum(n for n, _ in before.values())
    record("operations", "backup_restore", cases=len(before) + len(files_before) + 1,
           failures=len(failures), tables=len(before), rows=rows, files=len(files_before),
           archive_mib=round(archive.stat().st_size / 2**20, 2))  # fmt: skip
    assert not failures, failures
    assert set(after) == set(before)
    assert rows > 1000 and before["data.raster_tiles"][0] > 0
    assert height_before[3] is not None
    assert restored.rows == rows and restored.notes  # the data directory moved: re-pointed
    # the restored database serves the roles as before (passwords set, grants re-applied)
    conn = connect(Database(target).dsn("read"))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM geoby.layers")
        assert cur.fetchone()[0] == len(json.loads(_manifest(archive))["layers"])
        cur.execute("SHOW postgis.enable_outdb_rasters")
        assert cur.fetchone()[0] in ("on", "true")  # ALTER DATABASE SET re-applied
    conn.close()


def _manifest(archive: Path) -> bytes:
    import tarfile

    with tarfile.open(archive) as tar:
        return tar.extractfile(backups.MANIFEST).read()


def test_restore_refuses_a_database_with_data_and_bad_archives(source, target, tmp_path):
    archive = tmp_path / "geoby.tar"
    backups.backup(source, archive)
    backups.restore(target, archive, force=True)
    before, files_before = fingerprint(target), file_digests(target.data_dir)

    raw = archive.read_bytes()
    dump_at = raw.index(b"PGDMP")  # the custom-format dump's magic, inside the tar
    flipped = bytearray(raw)
    flipped[dump_at + 2048] ^= 0xFF  # inside the dump's data
    bad = {
        "truncated": raw[: len(raw) // 2],
        "flipped_byte": bytes(flipped),
        "not_a_tar": (source.data_dir / next(iter(file_digests(source.data_dir)))).read_bytes(),
        "empty": b"",
    }
    refused = []
    for case, content in bad.items():
        path = tmp_path / f"{case}.tar"
        path.write_bytes(content)
        with pytest.raises(InvalidInput) as caught:
            backups.restore(target, path, force=True)
        refused.append(case)
        assert str(path) in str(caught.value), caught.value
    with pytest.raises(Conflict, match="--force"):
        backups.restore(target, archive)

    unchanged = fingerprint(target) == before and file_digests(target.data_dir) == files_before
    record("operations", "backup_refusals", cases=len(bad) + 1,
           failures=len(bad) - len(refused) + (not unchanged))  # fmt: skip
    assert unchanged, "a refused restore changed the target"


def test_cli_backup_and_restore(source, target, tmp_path, monkeypatch):
    """The commands print progress and a one-line summary; a bad file exits 2."""
    from layers.settings import get_settings

    archive = tmp_path / "cli.tar"
    for key, value in {
        "GEOBY_DATABASE_NAME": source.database.name,
        "GEOBY_DATABASE_CLUSTER_DIR": str(source.database.cluster_dir),
        "GEOBY_DATA_DIR": str(source.data_dir),
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        done = runner.invoke(cli, ["backup", str(archive)])
        assert done.exit_code == 0, done.output
        assert "backed up database" in done.output and archive.is_file()
        monkeypatch.setenv("GEOBY_DATABASE_NAME", target.database.name)
        monkeypatch.setenv("GEOBY_DATA_DIR", str(target.data_dir))
        get_settings.cache_clear()
        refused = runner.invoke(cli, ["restore", str(archive)])
        assert refused.exit_code != 0 and "--force" in str(refused.exception), refused.output
        done = runner.invoke(cli, ["restore", str(archive), "--force"])
        assert done.exit_code == 0, done.output
        assert "restored database" in done.output and "verified" in done.output
    finally:
        get_settings.cache_clear()


def test_a_missing_pg_dump_is_named(monkeypatch):
    """Without the client programs the error says what to install."""
    monkeypatch.setattr(backups, "find_binaries", lambda: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(Exception, match="postgresql-client"):
        backups.pg_tool("pg_dump")
