"""The SQL loader reloads a model the registry refreshes; what did not change in the catalog
comes back as the very runtime loaded before (no profile parsed again, nothing the runtime
built on first use thrown away), and every change comes back new."""

from __future__ import annotations

import pytest

from detectors import ReferenceProfile
from registration import register_model
from storage import catalog
from stream_app.model_loader import sql_loader
from stream_app.registry import DeletedModel, ModelRuntime
from tests.integration.harness import register
from tests.stream_app import scenario
from tests.stream_app.test_deleted_models import DELETED_AT


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the reference profiles parsed from here on."""
    parsed: list[str] = []
    original = ReferenceProfile.from_json

    def counted(text: str) -> ReferenceProfile:
        parsed.append(text)
        return original(text)

    monkeypatch.setattr(ReferenceProfile, "from_json", staticmethod(counted))
    return parsed


def test_an_unchanged_model_reloads_as_the_same_runtime(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = sql_loader(register(sqlite_url))
    parsed = _parses(monkeypatch)
    first = load(scenario.MODEL_ID)
    assert isinstance(first, ModelRuntime) and first.profile is not None
    decoder = first.envelope_decoder
    again = load(scenario.MODEL_ID)
    assert again is first and again.envelope_decoder is decoder
    assert len(parsed) == 1


def test_a_changed_configuration_or_reference_reloads_anew(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = register(sqlite_url)
    load = sql_loader(sessions)
    first = load(scenario.MODEL_ID)
    assert isinstance(first, ModelRuntime)

    with sessions.begin() as session:
        register_model(session, scenario.model_config(label_horizon_seconds=7200))
    changed = load(scenario.MODEL_ID)
    assert isinstance(changed, ModelRuntime) and changed is not first
    assert changed.label_horizon_seconds == 7200 and changed.profile == first.profile

    with sessions.begin() as session:  # a new reference: a new profile and history
        register_model(
            session, scenario.model_config(label_horizon_seconds=7200), scenario.reference(2)
        )
    referenced = load(scenario.MODEL_ID)
    assert isinstance(referenced, ModelRuntime) and referenced is not changed
    assert referenced.profile is not None and first.profile is not None
    assert referenced.profile.fingerprint != first.profile.fingerprint
    assert len(referenced.history) == 2 == len(first.history) + 1
    assert load(scenario.MODEL_ID) is referenced


def test_a_deleted_model_registered_again_loads_anew(sqlite_url: str) -> None:
    sessions = register(sqlite_url)
    load = sql_loader(sessions)
    first = load(scenario.MODEL_ID)
    with sessions.begin() as session:
        catalog.delete_model(session, scenario.MODEL_ID, DELETED_AT)
    assert load(scenario.MODEL_ID) == DeletedModel(scenario.MODEL_ID, DELETED_AT)
    with sessions.begin() as session:
        register_model(session, scenario.model_config())
    restored = load(scenario.MODEL_ID)
    assert isinstance(restored, ModelRuntime) and restored is not first
    assert load("ghost") is None
