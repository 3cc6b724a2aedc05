"""A real uvicorn server of the app on a free loopback port, for real-client tests."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from api.app import create_app
from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Serve the app in a thread; yields its base URL.

    The socket is bound and listening before the thread starts, so clients may
    connect at once: connections wait in the backlog until uvicorn accepts.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    api = settings.api.model_copy(update={"public_url": url})
    app = create_app(settings.model_copy(update={"api": api}))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive(), "the server did not stop"


class ServerProcess:
    """``geoby serve`` in a subprocess, with its output collected line by line."""

    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        """Everything the server has printed so far."""
        return "".join(self.lines)


@contextmanager
def serve_process(settings: Settings) -> Iterator[ServerProcess]:
    """Run ``geoby serve`` against the test database on a free port.

    For clients that hold the GIL while they wait on the network (pyogrio's
    GDAL), which would starve a server thread in the same process.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOBY_")}
    env.update(
        GEOBY_DATABASE_NAME=settings.database.name,
        GEOBY_DATABASE_CLUSTER_DIR=str(settings.database.cluster_dir),
        GEOBY_ENVIRONMENT="test",
        GEOBY_DATA_DIR=str(settings.data_dir),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    server = ServerProcess(process, f"http://127.0.0.1:{port}")
    try:
        server.lines += wait_for_line(process, "Uvicorn running on", timeout=60)
        server._reader.start()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_line(process: subprocess.Popen, text: str, *, timeout: float) -> list[str]:
    """Read the process's output until a line holds ``text``; fail at the deadline.

    Reads the pipe's descriptor directly: a buffered ``readline`` may pull the
    awaited line into its buffer where ``select`` no longer sees it.
    """
    deadline = time.monotonic() + timeout
    fd, seen = process.stdout.fileno(), ""
    while text not in seen:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(remaining, 0))
        assert ready, f"no '{text}' within {timeout} s; output: {seen[-2000:]}"
        chunk = os.read(fd, 65536).decode(errors="replace")
        assert chunk, f"the process ended before '{text}'; output: {seen[-2000:]}"
        seen += chunk
    return seen.splitlines(keepends=True)
