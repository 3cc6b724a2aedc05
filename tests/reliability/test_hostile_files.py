"""Hostile files for every ingest family: each refused cleanly, the database unchanged.

For each family a valid file is loaded first (so "unchanged" compares a database
that holds rows, and a bad ``replace`` of the same source must keep them); then
every broken file of :mod:`tests.reliability.corpus` is loaded through
:func:`ingest.pipelines.ingest`. Each must raise a
:class:`~layers.errors.GeobyError` whose message names the file (no traceback,
no bare ``KeyError``) and must leave the row counts of every table in the
``geoby``, ``data`` and ``restricted`` schemas, the catalog, the provenance and
the terrain COG exactly as they were, with no temporary table left behind.
Nothing read from ``/etc/passwd`` (XXE) may reach an error or the database. A
sample of the cases goes through the CLI, which must exit 2 with one line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg2 import sql

from ingest.pipelines import IngestOptions, ingest
from layers.database import Database, connect
from layers.errors import GeobyError
from tests.conftest import ROOT, TEST_DB
from tests.reliability import corpus
from tests.reliability.record import FULL, record

# make test runs the quick subset; this file runs in make reliability.
pytestmark = pytest.mark.reliability_full

FAMILIES = ("terrain", "climate", "water", "energy", "waste", "utilities")
SCHEMAS = ("geoby", "data", "restricted")
TERRAIN_LAYER = "terrain_h3_hostile"
SECRET_LINE = (
    Path(corpus.SECRET).read_text().splitlines()[0] if Path(corpus.SECRET).exists() else ""
)
# Terms whose presence in a user message means an internal error leaked through.
LEAKS = ("Traceback", "KeyError", "IndexError", "AttributeError", "TypeError", "psycopg2",
         "SELECT ", "INSERT ", 'File "')  # fmt: skip


def _valid_files(town: Path) -> dict[str, list[tuple[list[Path], dict]]]:
    """What each family loads before its hostile files: (paths, IngestOptions fields)."""
    return {
        "terrain": [(sorted((town / "terrain").glob("*.tif"))[:2],
                     {"mode": "replace", "extra": {"layer": TERRAIN_LAYER}})],
        "climate": [([town / "climate" / "idf_table.csv", town / "climate" / "rain_events.csv"],
                     {})],
        "water": [([town / "water.gpkg"], {})],
        "energy": [([town / "buildings.gpkg"], {})],
        "waste": [([town / "waste" / "bins.gpkg", town / "waste" / "fleet.csv",
                    town / "waste" / "collections.csv"], {})],
        "utilities": [([town / "utilities" / "ostkyst-gas.gml"], {}),
                      ([town / "utilities" / "nordfiber.gpkg"], {"owner": "Nordfiber A/S"})],
    }  # fmt: skip


@pytest.fixture(scope="module")
def cases(tmp_path_factory, town_dir: Path, shared_data: Path) -> list[corpus.Case]:
    return corpus.build(tmp_path_factory.mktemp("hostile"), town_dir, shared_data, full=FULL)


@pytest.fixture(scope="module")
def loaded(settings, database: Database, town_dir: Path) -> Database:
    """The valid files of every family, loaded (replace: reruns start from the same rows).

    The utilities layers are dropped first: earlier test modules of the session load the
    same owners' networks from other files (LER GML), whose keys would clash."""
    from tests.dig.conftest import reset_database

    reset_database(database, drop_utilities=True)
    for family, loads in _valid_files(town_dir).items():
        for paths, fields in loads:
            fields = {"mode": "replace", **fields}
            ingest(database, family, paths, IngestOptions(show_progress=False, **fields))
    return database


def _snapshot(database: Database) -> dict[str, object]:
    """Row counts of every table, the catalog and provenance rows, temp tables, the COG."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')"
                " ORDER BY 1, 2",
                (list(SCHEMAS),),
            )
            state: dict[str, object] = {}
            for schema, table in cur.fetchall():
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(schema, table)))  # fmt: skip
                state[f"{schema}.{table}"] = cur.fetchone()[0]
            cur.execute("SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM geoby.layers t")
            state["catalog md5"] = cur.fetchone()[0]
            cur.execute("SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                        " FROM geoby.layer_sources t")  # fmt: skip
            state["provenance md5"] = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't'")
            state["temp tables"] = cur.fetchone()[0]
    finally:
        conn.close()
    terrain = Path(database.settings.data_dir) / "terrain"
    cog = terrain / f"{TERRAIN_LAYER}.tif"
    state["terrain cog"] = hashlib.sha256(cog.read_bytes()).hexdigest() if cog.exists() else None
    state["terrain work dirs"] = sorted(p.name for p in terrain.glob(f".{TERRAIN_LAYER}-*"))
    return state


def _diff(before: dict, after: dict) -> str:
    keys = sorted(set(before) | set(after))
    return "; ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys
                     if before.get(k) != after.get(k))  # fmt: skip


def _options(case: corpus.Case, index: int) -> IngestOptions:
    """Alternate the modes; the terrain cases replace the loaded layer."""
    mode = ("replace", "insert", "upsert")[index % 3]
    extra = dict(case.extra)
    if case.family == "terrain":
        extra.setdefault("layer", TERRAIN_LAYER)
        mode = "replace" if index % 2 == 0 else "insert"
    return IngestOptions(show_progress=False, mode=mode, owner=case.owner or "Hostile A/S",
                         extra=extra)  # fmt: skip


def _judge(case: corpus.Case, index: int, database: Database, before: dict) -> str | None:
    """Load one hostile case; the reason it failed, or ``None``."""
    try:
        reports = ingest(database, case.family, [case.path], _options(case, index))
    except GeobyError as exc:
        message = f"{exc} {exc.log_detail or ''}"
        problem = None
        if case.path.name not in str(exc) and case.path.stem not in str(exc):
            problem = f"the message does not name the file: {exc}"
        elif any(leak in str(exc) for leak in LEAKS):
            problem = f"internal error text in the message: {exc}"
        elif SECRET_LINE and SECRET_LINE in message:
            problem = f"{corpus.SECRET} leaked into the error"
    except Exception as exc:  # the defect this test looks for
        problem = f"not a GeobyError: {type(exc).__name__}: {str(exc)[:300]}"
    else:
        problem = "loaded: " + "; ".join(r.summary() for r in reports)
    after = _snapshot(database)
    if after != before:
        problem = (problem or "") + f" | database changed: {_diff(before, after)}"
    return problem


@pytest.mark.parametrize("family", FAMILIES)
def test_hostile_files_are_refused_and_change_nothing(family, loaded, cases):
    mine = [c for c in cases if c.family == family]
    assert mine, f"the corpus has no {family} cases"
    before = _snapshot(loaded)
    assert before["catalog md5"] and any(
        v for k, v in before.items() if k.startswith(("data.", "restricted.")) and v
    ), "the valid files did not load"
    failures = []
    for index, case in enumerate(mine):
        problem = _judge(case, index, loaded, before)
        if problem:
            failures.append(f"{case.name}: {problem}")
            before = _snapshot(loaded)  # judge the next case on its own
    record("hostile_input", f"files_{family}", cases=len(mine), failures=len(failures))
    assert not failures, f"{len(failures)} of {len(mine)} {family} cases:\n" + "\n".join(failures)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEOBY_DATABASE_NAME": TEST_DB,
           "GEOBY_DATABASE_CLUSTER_DIR": str(ROOT / "var" / "pg"),
           "GEOBY_DATA_DIR": str(ROOT / "var" / "test-data"), "GEOBY_ENVIRONMENT": "test"}  # fmt: skip
    geoby = Path(sys.executable).with_name("geoby")
    return subprocess.run([str(geoby), "ingest", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300, check=False)  # fmt: skip


def test_cli_refuses_hostile_files_with_exit_2_and_one_line(loaded, cases):
    picked = {}
    for case in cases:  # the first case of each kind of breakage, per family
        kind = case.name.split(" ")[-1]
        picked.setdefault((case.family, kind), case)
    sample = list(picked.values())[:: 4 if not FULL else 1]
    before = _snapshot(loaded)
    failures = []
    for case in sample:
        args = [case.family, str(case.path), "--mode", "replace", "--owner", case.owner or "H3"]
        if case.family == "terrain":
            args += ["--option", f"layer={TERRAIN_LAYER}"]
        done = _cli(*args)
        # the CLI's log lines (INFO ...) may precede it: the error is one line, the last
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        last = done.stderr.strip().splitlines()[-1:] or [""]
        if (done.returncode != 2 or len(errors) != 1 or errors != last
                or case.path.name not in errors[0] or "Traceback" in done.stderr):  # fmt: skip
            failures.append(f"{case.name}: exit {done.returncode}, stderr {done.stderr[-500:]!r}")
    after = _snapshot(loaded)
    record("hostile_input", "files_cli", cases=len(sample), failures=len(failures))
    assert not failures, "\n".join(failures)
    assert after == before, _diff(before, after)
