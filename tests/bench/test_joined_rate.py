"""The label benchmark's rate is the worker's: labels joined while they were still being
produced count, and the time runs to when the count crossed the goal, not to the next
stats sample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.pipeline_bench import joined_rate


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
