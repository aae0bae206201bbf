"""A new reference registered while a window is open applies from the next window.

Before: the open window's stored state (bins of the old reference) met the new reference
in stage 1 and every batch for it raised ``IncompatibleStateError``; stage 2 judged old
bins against the new profile without looking at the fingerprint.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from detectors import WindowState, evaluate_window
from driftline.errors import IncompatibleStateError
from registration import profile_reference
from stream_app.registry import ModelRegistry, ModelRuntime
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import window_start

CONFIG = scenario.model_config()
OLD = profile_reference(CONFIG, scenario.reference(seed=1))
NEW = profile_reference(CONFIG, scenario.reference(seed=9, n=800))
EVENTS = list(scenario.events(3, 200, drift_from=99, decay_from=99))
# Registered half-way through window 1 (registration time compared with window starts).
SWITCH_AT = window_start(1) + scenario.WINDOW / 2


def _drift(pipeline: LocalPipeline, w: int) -> list[tuple[str, str, Any]]:
    rows = pipeline.writer.windows[(scenario.MODEL_ID, window_start(w))]
    return sorted((row.feature, row.method, row.score) for row in rows.drift)


def _only(profile: Any, events: list[scenario.Event]) -> LocalPipeline:
    pipeline = LocalPipeline(ModelRuntime(CONFIG, profile), 2)
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    return pipeline


def test_an_open_window_keeps_its_reference_and_the_next_one_takes_the_new() -> None:
    assert OLD.fingerprint != NEW.fingerprint
    current = {"runtime": ModelRuntime(CONFIG, OLD, ((0.0, OLD.fingerprint),))}
    profiles = {OLD.fingerprint: OLD, NEW.fingerprint: NEW}
    pipeline = LocalPipeline(current["runtime"], 2)
    registry = ModelRegistry(
        lambda m: current["runtime"] if m == scenario.MODEL_ID else None,
        0.0,  # every lookup sees the catalog as it is now
        profile_loader=lambda m, fingerprint: profiles.get(fingerprint),
    )
    pipeline.stage1.registry = registry
    pipeline.stage2.registry = registry

    before = [e for e in EVENTS if e.timestamp < SWITCH_AT]
    after = [e for e in EVENTS if e.timestamp >= SWITCH_AT]
    asyncio.run(pipeline.feed_predictions(before))
    history = ((0.0, OLD.fingerprint), (SWITCH_AT, NEW.fingerprint))
    current["runtime"] = ModelRuntime(CONFIG, NEW, history)
    asyncio.run(pipeline.feed_predictions(after))
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))

    assert pipeline.dead_letters == []
    counts = [
        pipeline.writer.windows[(scenario.MODEL_ID, window_start(w))].window.n_rows
        for w in range(3)
    ]
    assert counts == [200, 200, 200]
    old_only = _only(OLD, EVENTS)
    new_only = _only(NEW, [e for e in EVENTS if e.window == 2])
    assert _drift(pipeline, 0) == _drift(old_only, 0)
    assert _drift(pipeline, 1) == _drift(old_only, 1)  # open at the switch: the old one
    assert _drift(pipeline, 2) == _drift(new_only, 2)  # began after it: the new one
    assert _drift(pipeline, 2) != _drift(old_only, 2)  # and that is a different verdict


def test_a_state_is_never_judged_against_another_reference() -> None:
    columns = {name: [1.0] for name in OLD.columns if name in ("age", "income", "tenure")}
    state = WindowState.empty(OLD, None)
    state.update(OLD, columns)
    with pytest.raises(IncompatibleStateError, match=OLD.fingerprint):
        evaluate_window(NEW, state)


def test_windows_before_every_registration_use_the_first_reference() -> None:
    runtime = ModelRuntime(CONFIG, NEW, ((100.0, OLD.fingerprint), (200.0, NEW.fingerprint)))
    assert runtime.fingerprint_for(50.0) == OLD.fingerprint
    assert runtime.fingerprint_for(150.0) == OLD.fingerprint
    assert runtime.fingerprint_for(200.0) == NEW.fingerprint
    assert ModelRuntime(CONFIG, NEW).fingerprint_for(0.0) == NEW.fingerprint
