"""A private PostgreSQL cluster with the sample town, for tests that restart the server.

The load and fault tests stop, crash and restart PostgreSQL. Doing that to the
shared cluster under ``var/pg`` would break every other suite running beside
them, so these tests start their OWN cluster in a temporary directory on a free
port, migrate it, and load the parts of the sample town the API serves: the
open base layers (roads, buildings), the waste bins and the seven owners'
utility networks (which the dig coordinator answers from).

:class:`PrivateTown` also runs the API as a real process (``geoby serve``)
against that cluster, and restarts the server with a chosen shutdown mode while
the API keeps running, on the same port, so the API's pools must recover.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from dig_coordination.users import add_user, ensure_organisation
from ingest.loader import ensure_layer
from ingest.pipelines import IngestOptions, ingest
from ingest.sample.manifest import read_manifest
from ingest.sample_load import plan
from ingest.waste_layers import KINDS
from layers.database import Database, connect
from layers.migrate import migrate
from layers.pgcluster import Cluster, find_binaries, free_port
from layers.settings import BrokerSettings, DatabaseSettings, NotifySettings, Settings
from tests.api.live_server import wait_for_line

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "geoby"
# What the load needs of the town: open layers to read, bins for readings, networks for digs.
WANTED = ("roads.gpkg", "buildings.gpkg", "bins.gpkg")
SHUTDOWN_MODES = ("smart", "fast", "immediate")


@dataclasses.dataclass
class PrivateTown:
    """A private cluster holding the sample town, and what the tests need to use it."""

    cluster: Cluster
    settings: Settings
    town_dir: Path
    tokens: dict[str, str]
    bins: list[str]

    @property
    def port(self) -> int:
        port = self.cluster.port
        assert port is not None
        return port

    def owner_dsn(self) -> str:
        return Database(self.settings).dsn("owner")

    def query(self, text: str, params: tuple = ()) -> list[tuple]:
        """Run one query as the superuser on a fresh connection (never the API's pools)."""
        conn = connect(self.owner_dsn(), application_name="geoby-test-inspect")
        try:
            with conn, conn.cursor() as cur:
                cur.execute(text, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    # -- the server's lifecycle ------------------------------------------------

    def stop(self, mode: str = "fast") -> None:
        """Stop PostgreSQL: ``fast`` (clean), ``immediate`` (a crash: WAL replay on start)."""
        assert mode in SHUTDOWN_MODES, mode
        binaries = find_binaries()
        assert binaries is not None
        self.cluster._run_as_server(
            [binaries("pg_ctl"), "stop", "-D", str(self.cluster.data), "-m", mode, "-w"]
        )

    def start(self) -> None:
        """Start PostgreSQL again on the SAME port (the API's DSNs name it)."""
        binaries = find_binaries()
        assert binaries is not None
        self.cluster._remove_stale_pidfile()
        self.cluster._start(binaries, self.port)

    def restart(self, mode: str = "fast", outage_s: float = 0.0) -> None:
        """Stop with ``mode``, stay down ``outage_s`` seconds, start again."""
        self.stop(mode)
        threading.Event().wait(outage_s)
        self.start()

    # -- the API as a real process ---------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a ``geoby`` subprocess pointed at this cluster."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEOBY_")}
        db = self.settings.database
        env.update(
            GEOBY_ENVIRONMENT="test",
            GEOBY_DATABASE_CLUSTER_DIR=str(db.cluster_dir),
            GEOBY_DATABASE_NAME=db.name,
            GEOBY_DATABASE_PORT=str(self.port),
            GEOBY_DATA_DIR=str(self.settings.data_dir),
            GEOBY_NOTIFY_WORKER_IN_APP="false",
            GEOBY_BROKER_SUBSCRIBE_IN_APP="false",
            GEOBY_LOG_LEVEL="WARNING",
            **extra,
        )
        return env

    @contextmanager
    def api(self, **extra_env: str) -> Iterator[ApiProcess]:
        """``geoby serve`` on a free port against this cluster; stopped on exit."""
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            env=self.env(**extra_env), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        server = ApiProcess(process, f"http://127.0.0.1:{port}")
        try:
            server.lines += wait_for_line(process, "Uvicorn running on", timeout=90)
            server.start_reading()
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class ApiProcess:
    """A running ``geoby serve``: its URL, and its output collected line by line."""

    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start_reading(self) -> None:
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, path: str = "/api/layers", timeout: float = 60.0) -> float:
        """Seconds until ``path`` answers 200; fails at the deadline."""
        started = time.monotonic()
        last = ""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while time.monotonic() - started < timeout:
                try:
                    response = client.get(path)
                    if response.status_code == 200:
                        return time.monotonic() - started
                    last = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                threading.Event().wait(0.2)
        raise AssertionError(f"{path} did not answer 200 within {timeout} s; last: {last}")


_TOWN: PrivateTown | None = None
_LOCK = threading.Lock()


def private_town(town_dir: Path) -> PrivateTown:
    """The private cluster with the sample town (``town_dir``), built once per session.

    It lives in its own directory under the system's temporary directory, not
    pytest's: pytest makes its base directory 0700 again at every session start
    (other suites run beside this one), which would lock the ``postgres`` user
    out of the cluster's data. Stopped and removed when the session ends.
    """
    global _TOWN
    with _LOCK:
        if _TOWN is None:
            root = Path(tempfile.mkdtemp(prefix="geoby-h5-"))
            atexit.register(_shutdown, root)
            _TOWN = _build(root, town_dir)
        return _TOWN


def _shutdown(root: Path) -> None:
    try:
        Cluster(root / "pg").down()
    except Exception:  # noqa: BLE001 - best effort at interpreter exit
        pass
    shutil.rmtree(root, ignore_errors=True)


def _build(root: Path, town_dir: Path) -> PrivateTown:
    cluster = Cluster(root / "pg", port=free_port())
    cluster.up()
    database = DatabaseSettings(name=DB_NAME, cluster_dir=cluster.directory, port=cluster.port)
    settings = Settings(environment="test", database=database, data_dir=root / "data",
                        notify=NotifySettings(worker_in_app=False),
                        broker=BrokerSettings(subscribe_in_app=False))  # fmt: skip
    migrate(settings)
    db = Database(settings)
    try:
        _load(db, town_dir)
        # The readings layer exists in a running town. (Created by the first live readings
        # instead, concurrent first writers race on CREATE TABLE: see the H5 report.)
        with db.connection("ingest") as conn:
            ensure_layer(conn, KINDS["readings"].spec(IngestOptions()))
        tokens = {}
        with db.connection("admin") as conn:
            for org, role in (("Lastgraver ApS", "contractor"), ("Egevig Affald", "utility")):
                ensure_organisation(conn, org)
                tokens[role] = add_user(conn, org=org, role=role)[1]
        with db.connection("read") as conn, conn.cursor() as cur:
            cur.execute("SELECT bin_id FROM data.waste_bins ORDER BY bin_id")
            bins = [row[0] for row in cur.fetchall()]
    finally:
        db.close()
    return PrivateTown(cluster, settings, town_dir, tokens, bins)


def _load(database: Database, town_dir: Path) -> None:
    options = IngestOptions(show_progress=False)
    for step in plan(town_dir, read_manifest(town_dir)):
        if step.family == "utilities":
            ingest(database, "utilities", list(step.paths),
                   dataclasses.replace(options, owner=step.owner))  # fmt: skip
            continue
        paths = [p for p in step.paths if p.name in WANTED]
        if paths:
            ingest(database, step.family, paths, options)
