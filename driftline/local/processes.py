"""Process plumbing the local services share: spawning, liveness, stopping, locks, log tails.

Every wait here has a deadline: a service that does not come up or go down in time is an
error that names its log, never a hang.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from driftline.errors import ServiceError
from driftline.local.environment import HOST, Report

# Children spawned by this process. Keeping the Popen lets us reap one that died, which would
# otherwise linger as a zombie that os.kill(pid, 0) still reports as alive.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn_detached(command: Sequence[str], *, cwd: Path, log_path: Path) -> int:
    """Start ``command`` in its own session (so a Ctrl-C in our terminal does not reach it)."""
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[child.pid] = child
    return child.pid


def is_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user (e.g. postgres)
        return True
    try:  # a zombie is dead for our purposes; its parent just has not reaped it
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def command_line(pid: int) -> str:
    """The command line of ``pid``, or "" when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_process_group(pid: int, *, timeout: float, what: str, report: Report) -> None:
    """SIGTERM the process group of ``pid``; SIGKILL it if it is still there after ``timeout``."""
    _signal_group(pid, signal.SIGTERM)
    if _wait_for_exit(pid, timeout):
        return
    report(f"{what} (pid {pid}) did not stop within {timeout:.0f} s; killing it")
    _signal_group(pid, signal.SIGKILL)
    if not _wait_for_exit(pid, 10.0):
        raise ServiceError(f"{what} (pid {pid}) survived SIGKILL; check it with `ps -p {pid}`")


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(os.getpgid(pid), signum)
        except ProcessLookupError:
            os.kill(pid, signum)


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    _CHILDREN.pop(pid, None)
    return True


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def tail(path: Path, lines: int = 30) -> list[str]:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))  # enough for 30 lines of a Java log
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def report_log_tail(path: Path, report: Report, lines: int = 30) -> None:
    last = tail(path, lines)
    if last:
        report(f"last {len(last)} lines of {path}:")
        for line in last:
            report(f"  | {line}")


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = 300.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two commands do not start one service twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"another driftline command has held {path} for {timeout:.0f} s; "
                        "wait for it to finish, or stop it and try again"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_command(
    command: Sequence[str],
    *,
    timeout: float,
    what: str,
    report: Report,
    show: Callable[[str], bool] = lambda line: False,
    env: dict[str, str] | None = None,
) -> list[str]:
    """Run ``command`` to completion within ``timeout``, reporting the lines ``show`` picks.

    Returns its output lines; on failure reports the last 30 and raises :class:`ServiceError`.
    """
    try:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
    except FileNotFoundError:
        raise ServiceError(f"{what} needs `{command[0]}`, which is not installed") from None
    # A watchdog rather than communicate(timeout): we stream lines as they come.
    watchdog = threading.Timer(timeout, child.kill)
    watchdog.start()
    output: list[str] = []
    try:
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.decode(errors="replace").rstrip()
            output.append(line)
            if show(line):
                report(f"  {line}")
        code = child.wait()
    finally:
        watchdog.cancel()
    if code != 0:
        for line in output[-30:]:
            report(f"  | {line}")
        reason = f"timed out after {timeout:.0f} s" if code == -signal.SIGKILL else f"exit {code}"
        raise ServiceError(
            f"{what} failed ({reason}): `{' '.join(command)}`; its last lines are above"
        )
    return output
