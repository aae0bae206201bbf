"""The README's first command: the demo runs the real pipeline and finds what it injected."""

from __future__ import annotations

import io

import pytest

from driftline import stream_demo
from driftline.demo import DRIFTED

pytestmark = pytest.mark.integration


def test_the_demo_reports_the_injected_drift_decay_and_bad_messages(kafka_bootstrap: str) -> None:
    out = io.StringIO()
    result = stream_demo.run(out, windows=10, per_window=400)
    for window, drifted in result.drifted.items():
        expected = set(DRIFTED) if window >= stream_demo.DRIFT_AT else set()
        assert set(drifted) == expected, (window, drifted)
    before = [a for w, a in result.accuracy.items() if w < stream_demo.DECAY_AT and a is not None]
    after = [a for w, a in result.accuracy.items() if w >= stream_demo.DECAY_AT and a is not None]
    assert min(before) > max(after)
    assert len(result.triggers) == 1
    assert result.dead_letters == 2
    text = out.getvalue()
    assert "Retraining trigger" in text and "worker stopped (exit code 0)" in text
