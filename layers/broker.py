"""A private Mosquitto MQTT broker for development, the demo and the tests.

Like the private PostgreSQL cluster (:mod:`layers.pgcluster`), it lives under
``./var/mqtt``, listens on a free loopback port only, and is started by the
project itself: ``geoby broker up`` (and ``geoby demo``, and the test suite).
Mosquitto comes from the OS packages, installed with ``apt-get`` where missing
when running as root on Debian/Ubuntu; otherwise the error says what to install.
A broker elsewhere is configured with ``GEOBY_BROKER_HOST`` and friends, and then
nothing here is used.

The private broker allows anonymous clients: it listens on 127.0.0.1 only. A
production broker takes a password file (see ``docker-compose.yml``).

Persistence is on (``mosquitto.db`` beside the config): the subscriber's
persistent session (QoS 1, ``clean_session=False``, see :mod:`waste.mqtt`) and
the readings queued for it while it was away survive a restart of the broker.
A clean stop (``down``) saves them at once. A crash (``kill -9``) loses what
the broker held only in memory: readings queued since the last autosave
(:data:`AUTOSAVE_S`) and readings it had PUBACKed but not yet passed on. So
for "nothing lost" a sensor gateway must publish with QoS 1, keep each reading
until its PUBACK (resending what was not PUBACKed after a reconnect), and keep
PUBACKed readings some seconds longer (10 s: more than the autosave interval)
to resend them too after a reconnect. Readings are stored once per bin and
time, so every resend is harmless (``tests/reliability/test_fault_broker.py``). Readings for a connected subscriber are passed
on as they arrive (``max_inflight_messages 0``: no per-client cap that would
hold them back in the broker's memory).
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from layers.errors import ClusterError, MissingDependency
from layers.pgcluster import apt_install, can_apt_install, free_port

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
# Seconds between saves of the in-memory state; a clean stop saves at once.
AUTOSAVE_S = 1
_PAUSE = threading.Event()  # never set: a pause between polls


def find_mosquitto() -> Path | None:
    """The mosquitto binary, on PATH or in /usr/sbin where Debian puts it."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def ensure_mosquitto(*, allow_install: bool = True) -> Path:
    """Find Mosquitto, installing it from the OS packages where allowed.

    Raises
    ------
    MissingDependency
        When it is missing and cannot be installed here.
    """
    found = find_mosquitto()
    if found:
        return found
    hint = "install it with `sudo apt-get install mosquitto` (Debian/Ubuntu)"
    if not (allow_install and can_apt_install()):
        raise MissingDependency(f"the MQTT broker Mosquitto is missing: {hint}")
    log.info("installing Mosquitto from the OS packages")
    apt_install("mosquitto", hint=hint)
    found = find_mosquitto()
    if not found:
        raise MissingDependency("apt-get installed mosquitto but no binary was found")
    # Debian starts a system broker on port 1883; ours runs on its own port.
    return found


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class LocalBroker:
    """A Mosquitto process under ``directory`` on a loopback port."""

    directory: Path

    @property
    def port_file(self) -> Path:
        return self.directory / "port"

    @property
    def pid_file(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def port(self) -> int | None:
        """The port of the broker started here, if one was."""
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        """Whether our broker runs and accepts connections."""
        port = self.port
        return port is not None and self._pid() is not None and _accepts(port)

    def up(self, *, allow_install: bool = True) -> int:
        """Start the broker unless it runs; returns its port.

        Raises
        ------
        MissingDependency
            Mosquitto is missing and cannot be installed.
        ClusterError
            It did not start (the log's last lines say why).
        """
        if self.running():
            return int(self.port)  # type: ignore[arg-type]
        binary = ensure_mosquitto(allow_install=allow_install)
        self.directory.mkdir(parents=True, exist_ok=True)
        port = self.port if self.port and not _accepts(self.port) else free_port()
        conf = self.directory / "mosquitto.conf"
        log_file = self.directory / "mosquitto.log"
        conf.write_text(
            f"listener {port} 127.0.0.1\n"
            # Run as whoever starts it (as root, Mosquitto would switch to its own user,
            # which cannot write under var/).
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            # Sessions and queued QoS 1 messages survive a restart (see the module notes).
            "persistence true\n"
            f"persistence_location {self.directory.resolve()}/\n"
            "persistence_file mosquitto.db\n"
            f"autosave_interval {AUTOSAVE_S}\n"
            f"pid_file {self.pid_file.resolve()}\n"
            f"log_dest file {log_file.resolve()}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 0\n"
        )
        self.pid_file.unlink(missing_ok=True)
        subprocess.Popen([str(binary), "-c", str(conf)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if _accepts(port):
                self.port_file.write_text(f"{port}\n")
                log.info("MQTT broker up on 127.0.0.1:%d", port)
                return port
            _PAUSE.wait(0.05)
        tail = log_file.read_text()[-500:] if log_file.exists() else ""
        raise ClusterError(f"mosquitto did not start on port {port}: {tail.strip()}")

    def down(self, timeout_s: float = 5.0) -> bool:
        """Stop the broker; True if one was running."""
        pid = self._pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._pid() is not None:
            _PAUSE.wait(0.05)
        if self._pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True
