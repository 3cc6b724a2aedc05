"""The three OGC API servers that ``bench/bench_ogc.py`` compares, as subprocesses.

geoby (``geoby serve``), tipg 1.6 and stock pygeoapi 0.21 (its ``PostgreSQL``
feature provider and ``MVT-postgresql`` tile provider) each run as one
uvicorn worker on a free loopback port, one at a time. The peers live in
their own virtual environments under ``var/bench`` (they pin other FastAPI and
SQLAlchemy versions than geoby's), created here on first use from the
package index.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from psycopg2.extensions import parse_dsn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from layers.database import as_url  # noqa: E402

WORK = ROOT / "var" / "bench"
TIPG_SPEC = "tipg>=1.6,<1.7"
PYGEOAPI_SPEC = "pygeoapi==0.21.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Kind:
    """How one server spells the URLs of a collection."""

    name: str
    label: str

    def collection(self, table: str) -> str:
        """Path of a collection."""
        if self.name == "geoby":
            return f"/ogc/collections/{table}"
        if self.name == "tipg":
            return f"/collections/data.{table}"
        return f"/collections/{table}"

    def items(self, table: str, params: dict) -> str:
        """Path and query of an items request (GeoJSON)."""
        query = params if self.name == "tipg" else {"f": "json", **params}
        return f"{self.collection(table)}/items?{urlencode(query)}"

    def item(self, table: str, fid: int) -> str:
        """Path of one feature (GeoJSON)."""
        suffix = "" if self.name == "tipg" else "?f=json"
        return f"{self.collection(table)}/items/{fid}{suffix}"

    def tile(self, table: str, z: int, x: int, y: int) -> str:
        """Path of one WebMercatorQuad vector tile (tipg orders x/y, OGC tileRow/tileCol)."""
        base = f"{self.collection(table)}/tiles/WebMercatorQuad"
        if self.name == "tipg":
            return f"{base}/{z}/{x}/{y}"
        return f"{base}/{z}/{y}/{x}?f=mvt"


GEOBY = Kind("geoby", "geoby")
TIPG = Kind("tipg", "tipg")
PYGEOAPI = Kind("pygeoapi", "pygeoapi")


@dataclass
class Server:
    """A running server: its kind, root URL and process."""

    kind: Kind
    url: str
    process: subprocess.Popen
    probe: str = "/"

    def peak_mib(self) -> float | None:
        """Peak resident memory of the server process so far (Linux ``VmHWM``)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _venv(name: str, packages: list[str]) -> Path:
    """``var/bench/<name>`` with ``packages`` installed; created when missing."""
    venv = WORK / name
    python = venv / "bin" / "python"
    marker = venv / ".bench-installed"
    if marker.exists() and marker.read_text() == " ".join(packages):
        return venv
    print(f"installing {' '.join(packages)} into {venv} ...", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    marker.write_text(" ".join(packages))
    return venv


def tipg_venv() -> Path:
    """The virtual environment of the tipg peer."""
    return _venv("tipg-venv", [TIPG_SPEC, "uvicorn"])


def pygeoapi_venv() -> Path:
    """The virtual environment of the stock pygeoapi peer."""
    return _venv(
        "pygeoapi-venv",
        [PYGEOAPI_SPEC, "sqlalchemy", "geoalchemy2", "psycopg2-binary", "uvicorn", "starlette"],
    )


def version(venv: Path, distribution: str) -> str:
    """The installed version of ``distribution`` in ``venv``."""
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({distribution!r}))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _wait(process: subprocess.Popen, url: str, log: Path) -> None:
    """Wait for uvicorn's start-up line, then one request to ``url`` must answer 200.

    The output is read as it comes (``select`` on the pipe, under a deadline)
    and copied to ``log``; after start-up a thread keeps copying it.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    fd, seen = process.stdout.fileno(), b""
    with log.open("wb") as out:
        while b"Uvicorn running on" not in seen:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                state = "no start-up line" if not ready else f"exit {process.wait()}"
                tail = seen[-3000:].decode(errors="replace")
                raise SystemExit(f"server did not start ({state}); output:\n{tail}")
            out.write(chunk)
            out.flush()
            seen += chunk
    threading.Thread(target=_copy, args=(process, log), daemon=True).start()
    try:
        with urllib.request.urlopen(url, timeout=START_TIMEOUT_S) as response:
            if response.status == 200:
                return
            raise SystemExit(f"{url} answered {response.status}; log: {log}")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise SystemExit(f"no answer from {url}: {exc}; log: {log}") from None


def _copy(process: subprocess.Popen, log: Path) -> None:
    with log.open("ab") as out:
        while chunk := os.read(process.stdout.fileno(), 65536):
            out.write(chunk)


@contextmanager
def _run(
    kind: Kind, cmd: list[str], env: dict, port: int, probe: str, cwd: Path
) -> Iterator[Server]:
    log = WORK / f"{kind.name}.log"
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait(process, url + probe, log)
        yield Server(kind, url, process, probe)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOBY_", "TIPG_"))}
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


def geoby(database: str, tables: list[str]) -> AbstractContextManager[Server]:
    """``geoby serve`` on ``database`` of the private cluster."""
    port = free_port()
    env = _clean_env(
        GEOBY_DATABASE_NAME=database,
        GEOBY_DATABASE_CLUSTER_DIR=str(ROOT / "var" / "pg"),
        GEOBY_DATA_DIR=str(WORK / "data"),
    )
    cmd = [
        str(ROOT / ".venv" / "bin" / "geoby"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return _run(GEOBY, cmd, env, port, GEOBY.collection(tables[0]), ROOT)


def tipg(venv: Path, dsn: str, tables: list[str]) -> AbstractContextManager[Server]:
    """tipg with its defaults, publishing only the benchmark tables."""
    port = free_port()
    env = _clean_env(
        DATABASE_URL=as_url(dsn),
        TIPG_DB_SCHEMAS='["data"]',
        TIPG_DB_TABLES=json.dumps([f"data.{t}" for t in tables]),
        TIPG_DB_FUNCTIONS="[]",
    )
    cmd = [
        str(venv / "bin" / "uvicorn"),
        "tipg.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    WORK.mkdir(parents=True, exist_ok=True)
    return _run(TIPG, cmd, env, port, TIPG.collection(tables[0]), WORK)


def pygeoapi(
    venv: Path, dsn: str, tables: dict[str, list[float]]
) -> AbstractContextManager[Server]:
    """Stock pygeoapi's Starlette app with a configuration written for the tables.

    ``tables`` maps each table to its CRS84 bounding box.
    """
    port = free_port()
    config = WORK / "pygeoapi-config.yml"
    openapi = WORK / "pygeoapi-openapi.yml"
    config.write_text(json.dumps(pygeoapi_config(dsn, port, tables), indent=1))
    env = _clean_env(PYGEOAPI_CONFIG=str(config), PYGEOAPI_OPENAPI=str(openapi))
    subprocess.run(
        [
            str(venv / "bin" / "pygeoapi"),
            "openapi",
            "generate",
            str(config),
            "--output-file",
            str(openapi),
        ],
        check=True,
        env=env,
        cwd=WORK,
        capture_output=True,
    )
    cmd = [
        str(venv / "bin" / "uvicorn"),
        "pygeoapi.starlette_app:APP",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return _run(PYGEOAPI, cmd, env, port, PYGEOAPI.collection(next(iter(tables))), WORK)


def pygeoapi_config(dsn: str, port: int, tables: dict[str, list[float]]) -> dict:
    """pygeoapi's configuration (YAML is a superset of the JSON written)."""
    parts = parse_dsn(dsn)
    data = {
        "host": parts["host"],
        "port": int(parts["port"]),
        "dbname": parts["dbname"],
        "user": parts["user"],
        "password": parts["password"],
        "search_path": ["data", "public"],
    }
    common = {
        "data": data,
        "id_field": "fid",
        "geom_field": "geom",
        "storage_crs": EPSG.format(25832),
    }
    crs = [CRS84, EPSG.format(25832), EPSG.format(4326), EPSG.format(3857)]
    resources = {
        table: {
            "type": "collection",
            "title": table,
            "description": f"Benchmark lines {table}",
            "keywords": ["bench"],
            "links": [],
            "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
            "providers": [
                {"type": "feature", "name": "PostgreSQL", "table": table, "crs": crs, **common},
                {
                    "type": "tile",
                    "name": "MVT-postgresql",
                    "table": table,
                    **common,
                    "options": {"zoom": {"min": 0, "max": 22}},
                    "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"},
                },
            ],
        }
        for table, bbox in tables.items()
    }
    contact = {
        key: "bench"
        for key in (
            "name",
            "position",
            "address",
            "city",
            "stateorprovince",
            "postalcode",
            "country",
            "phone",
            "fax",
            "hours",
            "instructions",
        )
    }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": ""},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "geoby OGC benchmark",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "https://example.org",
                "url": "https://example.org",
            },
            "license": {"name": "CC0", "url": "https://example.org"},
            "provider": {"name": "bench", "url": "https://example.org"},
            "contact": {
                **contact,
                "email": "bench@example.org",
                "url": "https://example.org",
                "role": "pointOfContact",
            },
        },
        "resources": resources,
    }
