"""The label-join section says a target is met only when its figures in the run meet it."""

from __future__ import annotations

from typing import Any

import pytest

from bench.pipeline_bench import render_join

TASK = {
    "predictions": 2_000_000,
    "rates": {
        "without a task": 300_000.0,
        "label task": 190_000.0,
        "label task, producer helper's envelopes": 200_000.0,
    },
}


def join(single: float, envelopes: float) -> dict[str, Any]:
    return {
        "rss_full": 500 * 2**20,
        "rss_early": 450 * 2**20,
        "rss_settled": 480 * 2**20,
        "outstanding": 1_000_000,
        "early": 100_000,
        "labels": 300_000,
        "join_rate": single,
        "rates": {"single labels": single, "label envelopes of 500": envelopes},
        "rss_curve": {100_000: 450 * 2**20, 1_000_000: 500 * 2**20},
        "changelog_bytes": 50 * 2**20,
    }


@pytest.mark.parametrize(
    ("single", "envelopes", "verdict"),
    [
        (50_000.0, 100_000.0, "labels/s: met)"),
        (49_999.0, 150_000.0, "labels/s: not met)"),
        (80_000.0, 99_999.0, "labels/s: not met)"),
    ],
)
def test_the_label_targets_are_judged_on_both_rates(
    single: float, envelopes: float, verdict: str
) -> None:
    assert verdict in render_join(join(single, envelopes), TASK)


def test_the_prediction_target_needs_150_000_and_60_percent() -> None:
    assert "baseline: **met**" in render_join(join(1.0, 1.0), TASK)
    slow = {**TASK, "rates": {**TASK["rates"], "without a task": 400_000.0}}
    assert "baseline: **not met**" in render_join(join(1.0, 1.0), slow)
