"""The label benchmark's rate is the worker's: it runs from when the worker could begin
(thawed, its labels waiting in the topic), not from a stats sample written before that,
to when the count crossed the goal, not to the next stats sample."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.pipeline_bench import frozen, joined_rate


def _samples(*pairs: tuple[float, int]) -> Callable[[], dict[str, Any]]:
    """A stats file read once per call, the last sample repeating (written every 0.1 s)."""
    queue = list(pairs)

    def stats() -> dict[str, Any]:
        at, joined = queue.pop(0) if len(queue) > 1 else queue[0]
        return {"at": at, "joined": joined}

    return stats


def test_the_rate_runs_from_the_first_join_seen_to_the_goal_crossed() -> None:
    # Sending began at t=100 with 1,000 joined; the first sample past that is at t=101
    # (2,000); the goal (6,000) is crossed a quarter of the way between the samples at
    # 104.5 (5,500) and 105.5 (7,500). A repeated sample is the file not written again yet.
    stats = _samples(
        (100.5, 1_000),
        (101.0, 2_000),
        (101.0, 2_000),
        (103.0, 3_000),
        (104.5, 5_500),
        (105.5, 7_500),
    )
    assert joined_rate(stats, (100.0, 1_000), 6_000, 5) == 4_000 / 3.75


def test_labels_joined_within_one_tick_count_from_the_last_sample_before() -> None:
    stats = _samples((100.0, 1_000), (100.5, 3_000))
    assert joined_rate(stats, (99.0, 1_000), 3_000, 5) == 4_000.0


def test_labels_joined_before_any_sample_count_from_when_sending_began() -> None:
    stats = _samples((102.0, 3_000))
    assert joined_rate(stats, (100.0, 1_000), 3_000, 5) == 1_000.0


def test_a_sample_written_before_the_worker_was_thawed_is_not_the_beginning() -> None:
    # Frozen from t=95 to t=100: the file still says t=95 when the clock starts.
    stats = _samples((95.0, 1_000), (100.5, 3_000))
    assert joined_rate(stats, (100.0, 1_000), 3_000, 5) == 4_000.0


def _state(pid: int) -> str:
    # /proc/PID/stat: "pid (comm) STATE ..."; T is stopped by a signal.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _eventually(pid: int, wanted: Callable[[str], bool]) -> bool:
    """A signal is delivered asynchronously: look for up to 5 s."""
    for _ in range(100):
        if wanted(_state(pid)):
            return True
        time.sleep(0.05)
    return False


def test_frozen_stops_the_process_and_lets_it_go_again() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with frozen(child):
            assert _eventually(child.pid, lambda state: state == "T")
        assert _eventually(child.pid, lambda state: state != "T")
    finally:
        child.kill()
        child.wait(10)
