"""Where the local services live and which ports they use, from the environment.

``DRIFTLINE_RUN_DIR`` (default ``./var``) holds their data, logs and pid files;
``DRIFTLINE_CACHE_DIR`` (default ``~/.cache/driftline``) holds downloads that survive a
``make clean``; ``DRIFTLINE_KAFKA_PORT`` and ``DRIFTLINE_POSTGRES_PORT`` pick the ports.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from driftline.errors import ConfigurationError

Report = Callable[[str], None]
"""Receives one progress line at a time (no trailing newline)."""

HOST = "127.0.0.1"


def run_dir() -> Path:
    return Path(os.environ.get("DRIFTLINE_RUN_DIR") or "var").absolute()


def cache_dir() -> Path:
    configured = os.environ.get("DRIFTLINE_CACHE_DIR")
    return Path(configured).absolute() if configured else Path.home() / ".cache" / "driftline"


def port_from_env(variable: str, default: int, *, span: int = 1) -> int:
    """The port in ``variable``, or ``default``; ``span`` consecutive ports must be valid."""
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"{variable}={raw!r} is not a port number; set it to a free port such as {default}"
        ) from None
    return check_port(port, span=span, source=variable)


def check_port(port: int, *, span: int = 1, source: str = "port") -> int:
    # Unprivileged ports only: the services never need root to bind.
    if not 1024 <= port <= 65535 - (span - 1):
        raise ConfigurationError(
            f"{source} {port} is outside 1024–{65535 - (span - 1)}; "
            "choose a free port in that range"
        )
    return port


def printer(stream: TextIO | None = None) -> Report:
    """A :data:`Report` that writes timestamped lines to ``stream`` (default: stderr)."""

    def report(line: str) -> None:
        out = stream if stream is not None else sys.stderr
        out.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
        out.flush()

    return report


@dataclass(frozen=True)
class ServiceStatus:
    """What ``status()`` of a local service found."""

    name: str
    running: bool
    pid: int | None
    port: int | None
    log_path: Path

    def describe(self) -> str:
        if not self.running:
            return f"{self.name}: not running (log {self.log_path})"
        return f"{self.name}: running, pid {self.pid}, on {HOST}:{self.port} (log {self.log_path})"
