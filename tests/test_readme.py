"""The README's shell and Python blocks run, so the README cannot rot.

Every ``bash`` and ``python`` block is preceded by ``<!-- readme-test: run -->`` or
``<!-- readme-test: skip: why -->`` (a block that needs Docker, or files only the reader
has). The ``run`` blocks run in order, as a reader would type them, in a fresh directory
with the repository's ``examples/``: against the test broker (``DRIFTLINE_BROKER``, a topic
prefix of their own), a SQLite results database holding the scenario's stream for model
``churn``, and ``driftline api`` on a free port (``localhost:8000`` in the README is
rewritten to it). A block that exits non-zero fails the test with its line and output.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- readme-test: (run|skip)(?::\s*(\S.*?))? -->$")
RUNNABLE = ("bash", "python")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    language: str
    code: str
    marker: str | None  # "run", "skip" or None
    reason: str | None


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marked = MARKER.match(lines[i - 1]) if i > 0 else None
        found.append(
            Block(
                i + 1,
                fence.group(1),
                "\n".join(lines[i + 1 : end]) + "\n",
                marked.group(1) if marked else None,
                marked.group(2) if marked else None,
            )
        )
        i = end + 1
    return found


BLOCKS = blocks((ROOT / "README.md").read_text())


def test_every_shell_and_python_block_runs_or_says_why_not() -> None:
    runnable = [b for b in BLOCKS if b.language in RUNNABLE]
    unmarked = [b.line for b in runnable if b.marker is None]
    assert not unmarked, f"README blocks at lines {unmarked} need a readme-test marker"
    assert all(b.reason for b in runnable if b.marker == "skip")
    assert sum(b.marker == "run" for b in runnable) >= 8
    assert not [b.line for b in BLOCKS if b.marker and b.language not in RUNNABLE]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


@pytest.fixture
def environment(kafka_bootstrap: str, topic_prefix: str, workspace: Path) -> dict[str, str]:
    from tests.api.conftest import write_stream
    from tests.integration.harness import register

    url = f"sqlite+pysqlite:///{workspace / 'driftline.db'}"
    write_stream(register(url), labels=True)  # model churn with results, as in the README
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DRIFTLINE_DATABASE_URL": url,
        "DRIFTLINE_BROKER": f"kafka://{kafka_bootstrap}",
        "DRIFTLINE_TOPIC_PREFIX": topic_prefix,
        "BOOTSTRAP": kafka_bootstrap,
        # The README's worker: a consumer group and changelogs of this run's own.
        "DRIFTLINE_APP_ID": f"{topic_prefix}readme",
    }


@pytest.fixture
def api(environment: dict[str, str], workspace: Path) -> Iterator[str]:
    port = free_port()
    env = {**environment, "DRIFTLINE_API_PORT": str(port)}
    log = (workspace / "api.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "driftline", "api"], env=env, cwd=workspace, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                assert process.poll() is None, (workspace / "api.log").read_text()
                assert time.monotonic() < deadline, "the API did not answer in 60 s"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def stop_groups(groups: list[int]) -> None:
    """What the blocks left running (the README's worker runs in the background)."""
    for signum, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(g) for g in groups):
            time.sleep(0.2)


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
def test_the_readme_runs(environment: dict[str, str], api: str, workspace: Path) -> None:
    ran: list[int] = []
    groups: list[int] = []
    try:
        for block in [b for b in BLOCKS if b.marker == "run"]:
            code = block.code.replace("localhost:8000", api)
            argv = ["bash", "-euo", "pipefail", "-c", code]
            if block.language == "python":
                argv = [sys.executable, "-c", code]
            # A session of its own: what the block starts in the background is stopped below.
            process = subprocess.Popen(
                argv,
                env=environment,
                cwd=workspace,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            groups.append(process.pid)
            try:
                out, err = process.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            assert process.returncode == 0, (
                f"README.md line {block.line} ({block.language}) exited {process.returncode}:\n"
                f"{code}\n--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}"
                f"\n--- worker.log ---\n{_tail(workspace / 'worker.log')}"
            )
            ran.append(block.line)
    finally:
        stop_groups(groups)
    assert len(ran) >= 8


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(none)"
