"""The README's first command: the demo runs the real pipeline and finds what it injected."""

from __future__ import annotations

import io

import pytest

from driftline import stream_demo
from driftline.demo import DRIFTED

pytestmark = pytest.mark.integration


def test_the_demo_reports_the_injected_drift_decay_and_bad_messages(kafka_bootstrap: str) -> None:
    out = io.StringIO()
    result = stream_demo.run(out, windows=12, per_window=400)
    for window, drifted in result.drifted.items():
        drifting = stream_demo.DRIFT_AT <= window < stream_demo.DRIFT_UNTIL
        assert set(drifted) == (set(DRIFTED) if drifting else set()), (window, drifted)
    before = [a for w, a in result.accuracy.items() if w < stream_demo.DECAY_AT and a is not None]
    after = [a for w, a in result.accuracy.items() if w >= stream_demo.DECAY_AT and a is not None]
    assert min(before) > max(after)
    assert len(result.triggers) == 1
    assert result.dead_letters == 2
    # One grouped message per channel when the drift starts, one resolved notice after it.
    count = len(DRIFTED)
    assert result.alerts == [
        f"[FIRING:{count}] {stream_demo.MODEL_ID}: warning",
        f"[RESOLVED] {stream_demo.MODEL_ID}: {count} alerts cleared",
    ]
    assert result.emails == [f"[driftline] {title}" for title in result.alerts]
    # Read back over the HTTP API (its own process): every drifted feature, by each method.
    assert result.api_drifted >= sum(len(d) for d in result.drifted.values()) > 0
    text = out.getvalue()
    assert "Retraining trigger" in text and "worker stopped (exit code 0)" in text
    assert "/dashboard/models/" in text
