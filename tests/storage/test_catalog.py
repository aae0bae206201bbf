"""Tests for storage.catalog: models and reference profiles."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import InvalidInputError
from storage.repository import (
    CurrentProfile,
    UnknownModelError,
    delete_model,
    get_current_profile,
    get_model,
    get_reference_profile,
    list_models,
    list_reference_profiles,
    save_reference_profile,
    upsert_model,
)


def _large_profile() -> str:
    """About 550 KB of JSON, with characters outside ASCII."""
    columns = {
        f"feature_{i:03d}": {
            "kind": "numeric",
            "edges": [j * 0.001 for j in range(200)],
            "counts": list(range(200)),
            "label": "âge µ ± σ – 測定",
        }
        for i in range(200)
    }
    return json.dumps({"version": 1, "columns": columns}, ensure_ascii=False)


def test_upsert_model_creates_then_updates(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        created = upsert_model(session, "churn", {"task": "binary", "window": "1h"})
    time.sleep(0.01)
    with sessions.begin() as session:
        updated = upsert_model(session, "churn", {"task": "binary", "window": "5m"})
    assert created.config == {"task": "binary", "window": "1h"}
    assert updated.config == {"task": "binary", "window": "5m"}
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    with sessions() as session:
        assert get_model(session, "churn") == updated
        assert get_model(session, "fraud") is None


def test_list_models_by_id(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for model_id in ("fraud", "churn", "ltv"):
            upsert_model(session, model_id, {"nested": {"list": [1, 2.5, None, "x"]}})
    with sessions() as session:
        listed = list_models(session)
    assert [m.model_id for m in listed] == ["churn", "fraud", "ltv"]
    assert listed[0].config == {"nested": {"list": [1, 2.5, None, "x"]}}


@pytest.mark.parametrize(
    ("model_id", "config", "message"),
    [
        ("", {}, "model_id must be a non-empty string"),
        ("churn", ["task"], "config must be a mapping"),
        ("churn", {"tags": {"a", "b"}}, "config must be JSON-serializable"),
        ("churn", {"threshold": float("nan")}, "config must be JSON-serializable"),
    ],
)
def test_upsert_model_refuses_bad_input(
    sessions: sessionmaker[Session], model_id: str, config: object, message: str
) -> None:
    with sessions() as session, pytest.raises(InvalidInputError, match=message):
        upsert_model(session, model_id, config)  # type: ignore[arg-type]


def test_a_large_profile_round_trips_exactly(sessions: sessionmaker[Session], model: str) -> None:
    profile = _large_profile()
    assert len(profile.encode()) > 500_000
    with sessions.begin() as session:
        assert get_current_profile(session, model) is None
        assert save_reference_profile(session, model, "fp-1", profile, "train.parquet", 50_000)
    with sessions() as session:
        current = get_current_profile(session, model)
    assert current == CurrentProfile("fp-1", profile)
    assert current is not None and current.profile_json == profile


def test_profiles_are_kept_by_fingerprint_and_one_is_current(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        assert save_reference_profile(session, model, "fp-1", '{"v": 1}', "train.csv", 100)
    with sessions.begin() as session:
        new = save_reference_profile(
            session, model, "fp-2", '{"v": 2}', "baseline:windows 0-2", 3000
        )
        assert new
        # The same content again: kept once, with its first source; made current again.
        assert not save_reference_profile(session, model, "fp-1", '{"v": 1}', "copy.csv", 100)
    with sessions.begin() as session:
        assert get_current_profile(session, model) == CurrentProfile("fp-1", '{"v": 1}')
        save_reference_profile(session, model, "fp-3", '{"v": 3}', "x", 1, make_current=False)
    with sessions() as session:
        assert get_current_profile(session, model) == CurrentProfile("fp-1", '{"v": 1}')
        assert get_reference_profile(session, model, "fp-3") == '{"v": 3}'
        assert get_reference_profile(session, model, "fp-9") is None
        infos = list_reference_profiles(session, model)
        model_record = get_model(session, model)
    assert [(i.fingerprint, i.source, i.n_rows, i.is_current) for i in infos] == [
        ("fp-1", "train.csv", 100, True),
        ("fp-2", "baseline:windows 0-2", 3000, False),
        ("fp-3", "x", 1, False),
    ]
    assert model_record is not None and model_record.current_fingerprint == "fp-1"


def test_profiles_need_a_registered_model_and_valid_json(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions() as session, pytest.raises(UnknownModelError, match="'nobody'"):
        save_reference_profile(session, "nobody", "fp", "{}", "x", 1)
    with sessions() as session, pytest.raises(InvalidInputError, match="not valid JSON"):
        save_reference_profile(session, model, "fp", "{columns: 1}", "x", 1)


def test_a_deleted_model_is_hidden_kept_and_restored(
    sessions: sessionmaker[Session], model: str
) -> None:
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    with sessions.begin() as session:
        upsert_model(session, "fraud", {"task": "binary"})
        save_reference_profile(session, model, "fp-1", '{"v": 1}', "train.csv", 100)
        assert delete_model(session, model, at)
        # Idempotent: the first time stays.
        assert delete_model(session, model, at + timedelta(hours=1))
        assert not delete_model(session, "nobody", at)
    with sessions() as session:
        assert [m.model_id for m in list_models(session)] == ["fraud"]
        listed = list_models(session, include_deleted=True)
        assert [(m.model_id, m.deleted_at) for m in listed] == [(model, at), ("fraud", None)]
        deleted = get_model(session, model)
        assert deleted is not None and deleted.deleted_at == at
        # Its history stays: the reference is still there and still current.
        assert get_current_profile(session, model) == CurrentProfile("fp-1", '{"v": 1}')
    with sessions.begin() as session:
        restored = upsert_model(session, model, {"task": "binary", "window": "5m"})
    assert restored.deleted_at is None and restored.current_fingerprint == "fp-1"
    with sessions() as session:
        assert [m.model_id for m in list_models(session)] == [model, "fraud"]


def test_delete_model_needs_an_aware_time(sessions: sessionmaker[Session], model: str) -> None:
    with sessions() as session, pytest.raises(InvalidInputError, match="timezone-aware"):
        delete_model(session, model, datetime(2026, 11, 30))
