"""Quality revisions that reuse a window's drift report give the rows a full evaluation
gives, and a report is reused only for the binned state it was evaluated from."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from detectors import evaluate_window
from stream_app.drift_reports import DriftReports
from stream_app.stage2 import WindowRecord
from tests.stream_app.test_label_quality import ONE_AT_A_TIME, _outcome, _replay, _stage2
from tests.stream_app.test_stages import RUNTIME


def test_revisions_reusing_reports_write_what_full_evaluations_write() -> None:
    evaluated_in_full = _stage2()
    evaluated_in_full._reports = DriftReports(capacity=0)
    asyncio.run(_replay(evaluated_in_full, [7]))
    reusing = _stage2()
    asyncio.run(_replay(reusing, [7]))
    assert evaluated_in_full._reports.reused == 0
    assert reusing._reports.reused > 0, "the recorded traffic revises final windows"
    assert _outcome(reusing) == _outcome(evaluated_in_full) == _outcome(ONE_AT_A_TIME)


def test_a_report_is_reused_only_for_the_state_it_was_evaluated_from() -> None:
    stage2 = _stage2()
    asyncio.run(_replay(stage2, [1]))
    data = stage2.records.data  # type: ignore[attr-defined]
    key, record = next(
        (key, record)
        for key, record in (
            (key, WindowRecord.from_bytes(value, data.get(key.replace("|r|", "|q|"))))
            for key, value in data.items()
            if "|r|" in key
        )
        if record.state and record.quality
    )
    state = stage2._state(RUNTIME, record)
    assert RUNTIME.profile is not None and record.state is not None
    expected = evaluate_window(RUNTIME.profile, state, RUNTIME.drift_config)
    reports = DriftReports()
    assert reports.evaluate(key, RUNTIME, record, state) == expected
    assert reports.evaluate(key, RUNTIME, record, state) == expected
    assert reports.reused == 1
    # Another binned state (a late partial merged into the window): evaluated in full.
    reports.evaluate(key, RUNTIME, replace(record, state=record.state + b" "), state)
    assert reports.reused == 1
    # A window binned from its sample is never taken from a kept report.
    sampled = replace(record, sample={"rows": [{}]})
    reports.evaluate(key, RUNTIME, sampled, state)
    reports.evaluate(key, RUNTIME, sampled, state)
    assert reports.reused == 1
