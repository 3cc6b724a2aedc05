"""The private PostgreSQL + PostGIS cluster under ``./var/pg``.

``geoby db up`` makes the database appear on a fresh machine with one command:

1. find the PostgreSQL server binaries and PostGIS; where they are missing on
   Debian or Ubuntu and the user is root, install them from the OS packages,
   otherwise raise :class:`~layers.errors.MissingDependency` naming exactly
   what to install;
2. ``initdb`` a cluster (superuser password random, kept in the cluster
   directory with mode 0600; password authentication on loopback only);
3. start it with ``pg_ctl`` on a free loopback port, as the ``postgres`` user
   when invoked as root (PostgreSQL refuses to run as root).

Every step is idempotent: a running cluster is left alone, a crashed one is
restarted (PostgreSQL replays its WAL), and a stale ``postmaster.pid`` left by
a killed server whose process id is now reused is removed.

Examples
--------
>>> cluster = Cluster(Path("var/pg"))        # doctest: +SKIP
>>> cluster.up().port                         # doctest: +SKIP
54329
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from layers.errors import ClusterError, MissingDependency

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
SERVER_OS_USER = "postgres"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Binaries:
    """Where the server programs of one PostgreSQL major version live."""

    bindir: Path
    major: int

    def __call__(self, name: str) -> str:
        return str(self.bindir / name)


@dataclass(frozen=True)
class ClusterState:
    """What ``geoby db status`` reports."""

    initialised: bool
    running: bool
    port: int | None
    pid: int | None
    major: int | None
    directory: Path

    def summary(self) -> str:
        if not self.initialised:
            return f"no cluster at {self.directory}"
        if not self.running:
            return f"cluster at {self.directory} is stopped"
        return (
            f"PostgreSQL {self.major} running at 127.0.0.1:{self.port} "
            f"(pid {self.pid}, {self.directory})"
        )


def _major_of(bindir: Path) -> int | None:
    match = re.search(r"(\d+)", bindir.parent.name)
    if match:
        return int(match.group(1))
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"(\d+)", out)
    return int(match.group(1)) if match else None


def find_binaries() -> Binaries | None:
    """Return the newest PostgreSQL server installation that has PostGIS, if any."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major_of(p) or 0, reverse=True
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for bindir in candidates:
        major = _major_of(bindir)
        if (bindir / "initdb").exists() and major and _has_postgis(bindir, major):
            return Binaries(bindir, major)
    return None


def _has_postgis(bindir: Path, major: int) -> bool:
    sharedirs = [Path(f"/usr/share/postgresql/{major}"), bindir.parent / "share"]
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0:
            sharedirs.insert(0, Path(out.stdout.strip()))
    return any((d / "extension" / "postgis.control").exists() for d in sharedirs)


def _installed_major() -> int | None:
    majors = [m for m in (_major_of(p) for p in Path("/usr/lib/postgresql").glob("*/bin")) if m]
    return max(majors) if majors else None


def install_instructions() -> str:
    """Say exactly what to install on this system."""
    return (
        "PostgreSQL with PostGIS 3 is required. On Debian/Ubuntu: "
        "sudo apt-get install postgresql postgresql-<major>-postgis-3 "
        "(e.g. postgresql-15-postgis-3); on Fedora: sudo dnf install postgresql-server postgis; "
        "on macOS: brew install postgresql@15 postgis. "
        "Or point geoby at an existing server with GEOBY_DATABASE_URL."
    )


def ensure_binaries(*, allow_install: bool = True) -> Binaries:
    """Find PostgreSQL and PostGIS, installing them from the OS packages where allowed.

    Parameters
    ----------
    allow_install
        Install with ``apt-get`` when missing, on Debian/Ubuntu as root.

    Raises
    ------
    MissingDependency
        When they are missing and cannot be installed here.
    """
    found = find_binaries()
    if found:
        return found
    if not (allow_install and can_apt_install()):
        raise MissingDependency(install_instructions())
    log.info("installing PostgreSQL and PostGIS from the OS packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _apt(["apt-get", "update", "-qq"], env)
    major = _installed_major()
    if major is None:
        _apt(["apt-get", "install", "-y", "-qq", "postgresql"], env)
        major = _installed_major()
    if major is None:
        raise MissingDependency("apt-get installed postgresql but no server binaries were found")
    _apt(["apt-get", "install", "-y", "-qq", f"postgresql-{major}-postgis-3"], env)
    found = find_binaries()
    if not found:
        raise MissingDependency(f"postgresql-{major}-postgis-3 installed but PostGIS not found")
    return found


def can_apt_install() -> bool:
    """Whether OS packages can be installed here: Debian/Ubuntu, as root."""
    debian = Path("/etc/debian_version").exists() and shutil.which("apt-get")
    return bool(debian) and os.geteuid() == 0


def _apt(cmd: list[str], env: dict[str, str], hint: str | None = None) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MissingDependency(
            f"{' '.join(cmd)} failed (exit {proc.returncode}); " + (hint or install_instructions()),
            log_detail=proc.stderr[-2000:],
        )


def apt_install(*packages: str, hint: str) -> None:
    """``apt-get update`` and install ``packages`` (root on Debian/Ubuntu; see
    :func:`can_apt_install`); ``hint`` says how to install them by hand on failure."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _apt(["apt-get", "update", "-qq"], env, hint)
    _apt(["apt-get", "install", "-y", "-qq", *packages], env, hint)


def free_port(preferred: int | None = None) -> int:
    """Return ``preferred`` if it is free on 127.0.0.1, else a free port chosen by the OS."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise ClusterError("no free loopback port")


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class Cluster:
    """A private PostgreSQL cluster in ``directory``.

    Parameters
    ----------
    directory
        Holds ``data/`` (the cluster), ``server.log``, ``port`` and
        ``credentials.json`` (mode 0600).
    port
        Port to use; when ``None`` the last used port is kept if free, else a
        free one is chosen.
    """

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = Path(directory).absolute()
        self.data = self.directory / "data"
        self.logfile = self.directory / "server.log"
        self.portfile = self.directory / "port"
        self.credfile = self.directory / "credentials.json"
        self._port = port

    # -- state ------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        if self.portfile.exists():
            return int(self.portfile.read_text().strip())
        return self._port

    def credentials(self) -> dict[str, str]:
        """Passwords of the cluster's superuser and of geoby's roles."""
        if not self.credfile.exists():
            raise ClusterError(f"no cluster credentials at {self.credfile}; run `geoby db up`")
        return json.loads(self.credfile.read_text())

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        """libpq keyword DSN of the superuser, for bootstrap work only."""
        return self.dsn(SUPERUSER, self.credentials()["postgres"], dbname)

    def dsn(self, user: str, password: str, dbname: str) -> str:
        """libpq keyword DSN for ``user`` on this cluster."""
        if self.port is None:
            raise ClusterError("the cluster has no port yet; run `geoby db up`")
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} "
            f"password={password} connect_timeout=10"
        )

    def _pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _server_alive(self) -> bool:
        pid = self._pid()
        if pid is None or not _process_is_postgres(pid):
            return False
        return self.port is not None and port_accepts(self.port)

    def state(self) -> ClusterState:
        """Report whether the cluster exists and runs, without changing anything."""
        major = None
        if self.initialised:
            major = int((self.data / "PG_VERSION").read_text().strip())
        running = self.initialised and self._server_alive()
        return ClusterState(
            initialised=self.initialised,
            running=running,
            port=self.port,
            pid=self._pid() if running else None,
            major=major,
            directory=self.directory,
        )

    # -- lifecycle -------------------------------------------------------------

    def up(self, *, allow_install: bool = True) -> ClusterState:
        """Create and start the cluster if needed; a running cluster is left alone.

        Raises
        ------
        MissingDependency
            PostgreSQL or PostGIS missing and not installable here.
        ClusterError
            The server did not start; the message quotes the server log.
        """
        if self.initialised and self._server_alive():
            return self.state()
        binaries = ensure_binaries(allow_install=allow_install)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.initialised:
            self._initdb(binaries)
        self._check_version(binaries)
        self._remove_stale_pidfile()
        port = free_port(self.port)
        self.portfile.write_text(f"{port}\n")
        self._start(binaries, port)
        return self.state()

    def down(self) -> ClusterState:
        """Stop the cluster (fast shutdown); a stopped cluster is left alone."""
        if not self.initialised:
            return self.state()
        if self._pid() is not None and _process_is_postgres(self._pid() or 0):
            binaries = find_binaries()
            if binaries is None:
                raise MissingDependency(install_instructions())
            self._run_as_server(
                [binaries("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"]
            )
        return self.state()

    def destroy(self) -> None:
        """Stop the cluster and delete its directory (used by tests of the lifecycle)."""
        self.down()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- steps -----------------------------------------------------------------

    def _initdb(self, binaries: Binaries) -> None:
        creds = {
            "postgres": secrets.token_urlsafe(24),
            "geoby_read": secrets.token_urlsafe(24),
            "geoby_ingest": secrets.token_urlsafe(24),
            "geoby_admin": secrets.token_urlsafe(24),
        }
        self._write_private(self.credfile, json.dumps(creds, indent=2))
        pwfile = self.directory / ".pwfile"
        self._write_private(pwfile, creds["postgres"] + "\n")
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made cluster from an interrupted initdb
        self.data.mkdir(mode=0o700)
        self._hand_to_server_user(self.data, pwfile)
        try:
            self._run_as_server(
                [
                    binaries("initdb"),
                    "-D", str(self.data),
                    "-U", SUPERUSER,
                    "--pwfile", str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ]
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        log.info("initialised PostgreSQL %s cluster in %s", binaries.major, self.data)

    def _check_version(self, binaries: Binaries) -> None:
        version = int((self.data / "PG_VERSION").read_text().strip())
        if version != binaries.major:
            raise ClusterError(
                f"the cluster in {self.data} was made by PostgreSQL {version} but the server "
                f"found is {binaries.major}; remove {self.directory} to start afresh "
                f"(its data is lost) or install PostgreSQL {version} with PostGIS"
            )

    def _remove_stale_pidfile(self) -> None:
        pid = self._pid()
        if pid is not None and not _process_is_postgres(pid):
            log.warning("removing stale postmaster.pid (process %s is not a postgres server)", pid)
            (self.data / "postmaster.pid").unlink(missing_ok=True)

    def _start(self, binaries: Binaries, port: int) -> None:
        if self.logfile.exists() and not os.access(self.logfile, os.W_OK):
            self.logfile.unlink()
        self.logfile.touch()
        self._hand_to_server_user(self.logfile)
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
            "-c max_connections=100 -c shared_buffers=256MB -c fsync=on"
        )
        cmd = [binaries("pg_ctl"), "start", "-D", str(self.data), "-l", str(self.logfile),
               "-o", options, "-w", "-t", str(START_TIMEOUT_S)]  # fmt: skip
        try:
            self._run_as_server(cmd)
        except ClusterError as exc:
            raise ClusterError(
                f"PostgreSQL did not start on port {port}: {self._log_tail()}",
                log_detail=exc.log_detail,
            ) from exc
        # pg_ctl -w returns once the server reports it accepts connections
        if not port_accepts(port, timeout=5):
            raise ClusterError(f"PostgreSQL started but port {port} does not answer")
        log.info("PostgreSQL %s listening on 127.0.0.1:%s", binaries.major, port)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.logfile.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no server log)"
        return " | ".join(text[-lines:]) or "(empty server log)"

    # -- running as the postgres user ----------------------------------------------

    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_OS_USER)
        except KeyError as exc:
            raise ClusterError(
                f"running as root but there is no '{SERVER_OS_USER}' OS user to run PostgreSQL; "
                "create it (useradd --system postgres) or run geoby as an ordinary user"
            ) from exc

    def _hand_to_server_user(self, *paths: Path) -> None:
        user = self._server_user()
        if user is None:
            return
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)
        _make_traversable(self.directory, user)

    def _run_as_server(self, cmd: list[str]) -> None:
        user = self._server_user()
        kwargs: dict = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.directory, **kwargs)
        if proc.returncode != 0:
            raise ClusterError(
                f"{Path(cmd[0]).name} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-500:]}",
                log_detail=proc.stderr,
            )

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)


def _process_is_postgres(pid: int) -> bool:
    """Whether ``pid`` is a live PostgreSQL server process (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    name = Path(cmdline.split(b"\0", 1)[0].decode(errors="replace")).name
    return name in ("postgres", "postmaster")


def _make_traversable(directory: Path, user: pwd.struct_passwd) -> None:
    """Let the server user reach ``directory``: add the search bit where it lacks it.

    A checkout under a root-only directory (``/root``, a 0700 temp dir) would
    otherwise keep PostgreSQL from its own data directory.
    """
    for parent in [directory, *directory.parents]:
        st = parent.stat()
        if st.st_uid == user.pw_uid or st.st_mode & 0o001:
            continue
        os.chmod(parent, st.st_mode | 0o001)
        log.info("added the search permission to %s so PostgreSQL can reach its cluster", parent)
