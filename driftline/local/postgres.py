"""A PostgreSQL server for development and tests, from Debian's packages.

The server binaries come from the ``postgresql`` package (installed with apt-get when
missing); the cluster itself is private to the run dir: ``<run dir>/postgres`` holds its
data, its Unix socket and its log. It listens on ``127.0.0.1:<port>`` only and trusts every
local connection, which is what a throwaway development cluster wants and nothing else does.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from driftline.errors import ConfigurationError, ServiceError
from driftline.local.environment import (
    HOST,
    Report,
    ServiceStatus,
    cache_dir,
    check_port,
    port_from_env,
    printer,
    run_dir,
)
from driftline.local.processes import (
    command_line,
    is_alive,
    locked,
    port_in_use,
    report_log_tail,
    run_command,
    stop_process_group,
)

DEFAULT_PORT = 15432
SUPERUSER = "postgres"
OS_USER = "postgres"  # initdb and postgres refuse to run as root; the package creates this user
INSTALL_COMMAND = "apt-get update && apt-get install -y --no-install-recommends postgresql"
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SOCKET_PATH_MAX = 107  # sun_path: a longer socket directory makes postgres refuse to start


@dataclass(frozen=True)
class PostgresConfig:
    """Where the local cluster keeps its files, and its port."""

    port: int
    home: Path

    @classmethod
    def from_env(cls, port: int | None = None) -> PostgresConfig:
        chosen = (
            check_port(port, source="--port")
            if port is not None
            else port_from_env("DRIFTLINE_POSTGRES_PORT", DEFAULT_PORT)
        )
        return cls(port=chosen, home=_home(run_dir() / "postgres"))

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    @property
    def log_path(self) -> Path:
        return self.home / "postgres.log"


@dataclass(frozen=True)
class PostgresServer:
    """A running server; ``started`` says whether this call started it."""

    pid: int
    port: int
    log_path: Path
    started: bool

    def url(self, database: str = "postgres") -> str:
        return database_url(database, self.port)


def database_url(database: str, port: int) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of ``database`` on the local server."""
    return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{port}/{database}"


def render_postgresql_conf(config: PostgresConfig) -> str:
    """The settings appended to the ``postgresql.conf`` initdb writes."""
    return (
        "\n# Added by driftline: a local development and test cluster.\n"
        f"listen_addresses = '{HOST}'\n"
        f"unix_socket_directories = '{config.socket_dir}'\n"
        "# Throwaway data: speed over crash safety.\n"
        "fsync = off\n"
        "synchronous_commit = off\n"
        "full_page_writes = off\n"
    )


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that has the server, if any."""
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    found = [path for path in found if (path / "postgres").exists() and (path / "initdb").exists()]
    return max(found, key=_major, default=None)


def _major(bin_dir: Path) -> int:
    name = bin_dir.parent.name
    return int(name) if name.isdigit() else 0


def ensure_installed(*, report: Report | None = None) -> Path:
    """The server's bin directory, installing Debian's ``postgresql`` first if needed."""
    report = report or printer()
    found = find_bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise ServiceError(
            f"the PostgreSQL server is not installed; run `sudo sh -c '{INSTALL_COMMAND}'` "
            "and try again"
        )
    with locked(cache_dir() / "postgres-install.lock"):
        found = find_bin_dir()
        if found is not None:
            return found
        began = time.monotonic()
        report("installing PostgreSQL from Debian packages with apt-get (about a minute) ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run_command(
            ["apt-get", "update"], timeout=600, what="apt-get update", report=report, env=env
        )
        run_command(
            ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
            timeout=900,
            what="installing postgresql with apt-get",
            report=report,
            show=lambda line: line.startswith(("Get:", "Setting up")),
            env=env,
        )
    found = find_bin_dir()
    if found is None:
        raise ServiceError(
            "apt-get installed postgresql but no server is under /usr/lib/postgresql/*/bin; "
            "check `dpkg -L postgresql` and install the postgresql-<major> package it names"
        )
    report(f"installed PostgreSQL {_major(found)} in {time.monotonic() - began:.0f} s")
    return found


def start(
    port: int | None = None, *, timeout: float = 60.0, report: Report | None = None
) -> PostgresServer:
    """Start the cluster unless it already runs; return once it accepts connections."""
    config = PostgresConfig.from_env(port)
    report = report or printer()
    bin_dir = ensure_installed(report=report)
    with locked(config.home / "postgres.lock"):
        running = _running(config)
        if running is not None:
            pid, running_port = running
            if running_port != config.port:
                raise ServiceError(
                    f"the PostgreSQL of {config.home} already runs on port {running_port}; use "
                    "that port, or stop it first with `driftline local postgres stop`"
                )
            _wait_until_accepting(config, timeout, report)
            report(f"PostgreSQL already running on {HOST}:{config.port} (pid {pid})")
            return PostgresServer(pid, config.port, config.log_path, started=False)
        if port_in_use(config.port):
            raise ServiceError(
                f"port {config.port} on {HOST} is used by another process; stop it, or choose "
                "another port with --port or DRIFTLINE_POSTGRES_PORT"
            )
        if not (config.data_dir / "PG_VERSION").exists():
            _init_cluster(config, bin_dir, report)
        report(f"starting PostgreSQL {_major(bin_dir)} on {HOST}:{config.port} ({config.log_path})")
        run_command(
            _as_owner(
                *(bin_dir / "pg_ctl", "start", "-W", "-D", config.data_dir),
                *("-l", config.log_path, "-o", f"-p {config.port}"),
            ),
            timeout=30,
            what="pg_ctl start",
            report=report,
        )
        try:
            elapsed = _wait_until_accepting(config, timeout, report)
        except ServiceError:
            _pg_ctl_stop(config, bin_dir, mode="immediate", timeout=10, report=report)
            raise
        running = _running(config)
        if running is None:  # accepted a connection, then went away
            report_log_tail(config.log_path, report)
            raise ServiceError(f"PostgreSQL stopped right after starting; read {config.log_path}")
    report(f"PostgreSQL accepting connections on {HOST}:{config.port} after {elapsed:.1f} s")
    return PostgresServer(running[0], config.port, config.log_path, started=True)


def _init_cluster(config: PostgresConfig, bin_dir: Path, report: Report) -> None:
    report(f"initializing a PostgreSQL cluster in {config.data_dir} (initdb)")
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config.socket_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for path in (config.home, config.data_dir, config.socket_dir):
            shutil.chown(path, OS_USER, OS_USER)
    run_command(
        _as_owner(
            *(bin_dir / "initdb", "-D", config.data_dir, "-U", SUPERUSER),
            *("--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"),
        ),
        timeout=120,
        what="initdb",
        report=report,
    )
    with open(config.data_dir / "postgresql.conf", "a") as conf:
        conf.write(render_postgresql_conf(config))


def stop(port: int | None = None, *, timeout: float = 30.0, report: Report | None = None) -> bool:
    """Stop the cluster of the run dir; return whether it was running.

    ``port``, when given, must be the one it runs on (a guard against stopping another).
    """
    config = PostgresConfig.from_env(port)
    report = report or printer()
    with locked(config.home / "postgres.lock"):
        running = _running(config)
        if running is None:
            return False
        pid, running_port = running
        if port is not None and running_port != port:
            raise ServiceError(
                f"the PostgreSQL of {config.home} runs on port {running_port}, not {port}; "
                f"run `driftline local postgres stop --port {running_port}`"
            )
        report(f"stopping PostgreSQL on {HOST}:{running_port} (pid {pid})")
        bin_dir = find_bin_dir()
        if bin_dir is None:  # uninstalled while running: signals still work
            stop_process_group(pid, timeout=timeout, what="PostgreSQL", report=report)
        else:
            _pg_ctl_stop(config, bin_dir, mode="fast", timeout=timeout, report=report)
    report("PostgreSQL stopped")
    return True


def _pg_ctl_stop(
    config: PostgresConfig, bin_dir: Path, *, mode: str, timeout: float, report: Report
) -> None:
    run_command(
        _as_owner(
            *(bin_dir / "pg_ctl", "stop", "-D", config.data_dir, "-m", mode),
            *("-w", "-t", str(max(1, round(timeout)))),
        ),
        timeout=timeout + 10,
        what="pg_ctl stop",
        report=report,
    )


def status() -> ServiceStatus:
    config = PostgresConfig.from_env()
    running = _running(config)
    pid, port = running if running is not None else (None, None)
    return ServiceStatus("postgres", running is not None, pid, port, config.log_path)


def create_database(name: str, *, port: int | None = None) -> str:
    """Create an empty database ``name`` on the local server and return its URL."""
    _check_database_name(name)
    port = _server_port(port)
    try:
        with _admin_connection(port) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        raise ServiceError(
            f"database {name!r} already exists on {HOST}:{port}; drop it first or pick another name"
        ) from None
    return database_url(name, port)


def drop_database(name: str, *, port: int | None = None) -> None:
    """Drop ``name`` if it exists, closing any connection still open to it."""
    _check_database_name(name)
    port = _server_port(port)
    with _admin_connection(port) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _check_database_name(name: str) -> None:
    if not _DATABASE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"database name {name!r} is not allowed here; use 1–63 lower-case letters, digits "
            "and underscores, starting with a letter or underscore"
        )


def _server_port(port: int | None) -> int:
    if port is not None:
        return check_port(port)
    config = PostgresConfig.from_env()
    running = _running(config)
    return running[1] if running is not None else config.port


def _admin_connection(port: int) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(
            host=HOST, port=port, user=SUPERUSER, dbname="postgres", autocommit=True,
            connect_timeout=10,
        )  # fmt: skip
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no reason given"
        raise ServiceError(
            f"cannot connect to PostgreSQL on {HOST}:{port} ({reason}); "
            "start it with `driftline local postgres start`"
        ) from None


def _running(config: PostgresConfig) -> tuple[int, int] | None:
    """(pid, port) of the postmaster of this cluster, if it is alive."""
    try:
        lines = (config.data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    # A stale pid file may name a pid reused by an unrelated process since.
    if is_alive(pid) and "postgres" in command_line(pid):
        return pid, port
    return None


def _wait_until_accepting(config: PostgresConfig, timeout: float, report: Report) -> float:
    began = time.monotonic()
    next_note = began + 5
    while True:
        elapsed = time.monotonic() - began
        try:
            with psycopg.connect(
                host=HOST, port=config.port, user=SUPERUSER, dbname="postgres", connect_timeout=2
            ) as connection:
                connection.execute("SELECT 1")
            return time.monotonic() - began
        except psycopg.OperationalError:
            pass
        # postmaster.pid appears within a moment of pg_ctl start; missing after that, it died.
        if elapsed > 5 and _running(config) is None:
            report_log_tail(config.log_path, report)
            raise ServiceError(
                f"PostgreSQL exited during start-up; read {config.log_path} "
                "(its last lines are above)"
            )
        if elapsed >= timeout:
            report_log_tail(config.log_path, report)
            raise ServiceError(
                f"PostgreSQL did not accept connections on {HOST}:{config.port} within "
                f"{timeout:.0f} s; read {config.log_path} (its last lines are above)"
            )
        if time.monotonic() >= next_note:
            report(
                f"waiting for PostgreSQL on {HOST}:{config.port} "
                f"({elapsed:.0f} s of {timeout:.0f} s)"
            )
            next_note += 5
        time.sleep(0.2)


def _as_owner(*command: str | Path) -> list[str]:
    # As root, run the server tools as the postgres OS user; anyone else runs them as themself.
    words = [str(word) for word in command]
    return ["runuser", "-u", OS_USER, "--", *words] if os.geteuid() == 0 else words


def _home(preferred: Path) -> Path:
    """``preferred``, unless the server could not use it; then a fixed place under /var/tmp.

    As root the server runs as the postgres user, who must be able to enter every parent
    directory (a checkout under /root cannot be entered); and the socket path has a length
    limit. Both can fail for a run dir that is fine for Kafka.
    """
    socket_path = preferred / "socket" / ".s.PGSQL.65535"
    if len(str(socket_path)) <= _SOCKET_PATH_MAX and _enterable_by_server(preferred):
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"driftline-postgres-{digest}"


def _enterable_by_server(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    try:
        server_uid = pwd.getpwnam(OS_USER).pw_uid
    except KeyError:  # not installed yet: the package will create the user; judge by mode
        server_uid = -1
    for parent in [path, *path.parents]:
        try:
            info = parent.stat()
        except FileNotFoundError:
            continue  # created later by us, and handed to the server user then
        if info.st_uid != server_uid and not info.st_mode & stat.S_IXOTH:
            return False
    return True
