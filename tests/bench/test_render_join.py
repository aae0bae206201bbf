"""The label-join section says a target is met only when its figures in the run meet it."""

from __future__ import annotations

from typing import Any

import pytest

from bench import pipeline_bench
from bench.pipeline_bench import render_join

TASK: dict[str, Any] = {
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


def test_label_rates_in_rounds_show_each_round_beside_the_median() -> None:
    rounds = {
        **join(41_000.0, 90_000.0),
        "label_runs": {
            "single labels": [30_000.0, 41_000.0, 52_000.0],
            "label envelopes of 500": [90_000.0, 120_000.0, 70_000.0],
        },
        "label_share": 100_000,
    }
    text = " ".join(render_join(rounds, TASK).split())
    assert "**41,000 labels/s** (rounds: 30,000, 41,000, 52,000)" in text
    assert "**90,000 labels/s** (rounds: 90,000, 120,000, 70,000)" in text
    assert "the median of 3 rounds in which the two forms took turns, 100,000 labels" in text
    assert "frozen (SIGSTOP) while they are produced. A round" in text  # no producer times
    timed = {**rounds, "label_produce_seconds": {"single labels": [1.0, 2.0, 5.0]}}
    assert "producer took 2.0 s for a round of single labels: 50,000 a second" in " ".join(
        render_join(timed, TASK).split()
    )
    once = " ".join(render_join(join(41_000.0, 90_000.0), TASK).split())
    assert "rounds" not in once and "half the labels each, one after the other" in once


def test_the_prediction_target_needs_150_000_and_60_percent() -> None:
    assert "baseline: **met**." in render_join(join(1.0, 1.0), TASK)
    slow = {**TASK, "rates": {**TASK["rates"], "without a task": 400_000.0}}
    assert "baseline: **not met**" in render_join(join(1.0, 1.0), slow)


def test_the_prediction_figures_are_the_medians_of_rotated_runs() -> None:
    runs = {
        "without a task": [300_000.0, 200_000.0, 310_000.0],
        "label task": [150_000.0, 190_000.0, 100_000.0],
        "label task, producer helper's envelopes": [200_000.0, 180_000.0, 185_000.0],
    }
    names = list(runs)
    order = [names[(i + r) % 3] for r in range(3) for i in range(3)]
    task = {
        "predictions": 2_000_000,
        "rates": {name: sorted(values)[1] for name, values in runs.items()},
        "runs": runs,
        "order": order,
    }
    text = render_join(join(1.0, 1.0), task)
    assert "predictions/s, median of 3 runs" in text
    # the baseline ran 1st, 6th (B C A) and 8th (C A B)
    assert "| 300,000 (#1), 200,000 (#6), 310,000 (#8) |" in text
    assert "**150,000** (50% of the baseline)" in text
    # the helper's 185,000 is 62 % of 300,000; the other envelopes' 150,000 is 50 %
    assert (
        "baseline: **met** by the producer helper's envelopes (62%); "
        "not by envelopes of any producer (150,000, 50%)." in text
    )


def test_label_task_rates_rotates_the_runs_and_takes_medians(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    ran: list[tuple[bool, int, str]] = []
    # The runs' rates in the order they ran (three rotations of five configurations).
    rates = iter(
        [
            *(100.0, 50.0, 70.0, 130.0, 60.0),
            *(80.0, 140.0, 110.0, 90.0, 150.0),
            *(200.0, 10.0, 120.0, 30.0, 40.0),
        ]
    )

    def fake_run(*args: Any, task: bool, workers: int, **kwargs: Any) -> dict[str, float]:
        ran.append((task, workers, args[2]))
        return {"predictions_per_s": next(rates)}

    monkeypatch.setattr(pipeline_bench, "driftline_run", fake_run)
    result = pipeline_bench.label_task_rates("127.0.0.1:1", tmp_path, "x.", 1_000)
    base, helper_base, task, helper, two = (
        "without a task",
        pipeline_bench.HELPER_BASELINE,
        "label task",
        "label task, producer helper's envelopes",
        "label task, two worker processes",
    )
    assert result["order"] == [
        *(base, helper_base, task, helper, two),
        *(helper_base, task, helper, two, base),
        *(task, helper, two, base, helper_base),
    ]
    assert [(t, w) for t, w, _ in ran] == [
        *((False, 1), (False, 1), (True, 1), (True, 1), (True, 2)),
        *((False, 1), (True, 1), (True, 1), (True, 2), (False, 1)),
        *((True, 1), (True, 1), (True, 2), (False, 1), (False, 1)),
    ]
    assert len({prefix for _, _, prefix in ran}) == 15  # each run on topics of its own
    assert result["runs"] == {
        base: [100.0, 150.0, 30.0],
        helper_base: [50.0, 80.0, 40.0],
        task: [70.0, 140.0, 200.0],
        helper: [130.0, 110.0, 10.0],
        two: [60.0, 90.0, 120.0],
    }
    assert result["rates"] == {
        base: 100.0,
        helper_base: 50.0,
        task: 140.0,
        helper: 110.0,
        two: 90.0,
    }


def test_the_helpers_envelopes_are_held_to_their_own_baseline() -> None:
    rates = {
        "without a task": 300_000.0,
        pipeline_bench.HELPER_BASELINE: 340_000.0,
        "label task": 150_000.0,
        "label task, producer helper's envelopes": 190_000.0,
    }
    text = render_join(join(1.0, 1.0), {"predictions": 2_000_000, "rates": rates})
    assert "| no label task, the producer helper's envelopes (their baseline) | 340,000 |" in text
    assert "**190,000** (56% of their baseline)" in text  # 63 % of the other baseline
    assert "baseline: **not met**." in text
    rates[pipeline_bench.HELPER_BASELINE] = 310_000.0
    text = render_join(join(1.0, 1.0), {"predictions": 2_000_000, "rates": rates})
    assert "baseline: **met** by the producer helper's envelopes (61%); not by" in text
