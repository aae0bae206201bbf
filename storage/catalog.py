"""Monitored models and their reference profiles.

Deleting a model is soft (:func:`delete_model`): the row stays with ``deleted_at`` set, and
with it the model's references, windows, results and alerts. A deleted model is left out of
:func:`list_models` (unless asked) and the worker treats it as unregistered
(``stream_app.model_loader``); :func:`get_model` still returns it, with its ``deleted_at``,
so its history stays readable. Registering it again (:func:`upsert_model`) restores it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.models import models, reference_profiles
from storage.rows import CurrentProfile, ModelRecord, ReferenceProfileInfo
from storage.types import require_aware, utcnow
from storage.upsert import insert_if_absent, upsert


class UnknownModelError(InvalidInputError, LookupError):
    """Results or profiles were written for a model that was never registered."""


def require_json(value: object, what: str) -> None:
    """Raise InvalidInputError unless ``value`` serializes to JSON (checked before the
    database driver would fail with a less helpful message)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be JSON-serializable: {exc}") from None


def require_model(session: Session, model_id: str) -> None:
    """Raise :class:`UnknownModelError` unless ``model_id`` is registered.

    Checked up front so the caller gets a message naming the model instead of a foreign-key
    violation (which on PostgreSQL also aborts the rest of the transaction).
    """
    found = session.execute(select(models.c.model_id).where(models.c.model_id == model_id))
    if found.first() is None:
        raise UnknownModelError(
            f"unknown model {model_id!r}: register it with upsert_model() first"
        )


def upsert_model(session: Session, model_id: str, config: Mapping[str, Any]) -> ModelRecord:
    """Register ``model_id`` or replace its configuration; return the stored model.

    The creation time and the current reference profile survive an update. A deleted model
    is restored: ``deleted_at`` is cleared, so the worker serves its configuration again
    (after its registry refresh) and listings show it.
    """
    if not isinstance(model_id, str) or not model_id:
        raise InvalidInputError(f"model_id must be a non-empty string, got {model_id!r}")
    if not isinstance(config, Mapping):
        raise InvalidInputError(f"config must be a mapping, got {type(config).__name__}")
    require_json(config, "config")
    now = utcnow()
    row = {
        "model_id": model_id,
        "config": dict(config),
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }
    upsert(
        session,
        models,
        [row],
        ["model_id"],
        update=lambda table, excluded: {
            "config": excluded.config,
            "updated_at": excluded.updated_at,
            "deleted_at": excluded.deleted_at,  # NULL: registering again restores a deleted one
        },
    )
    record = get_model(session, model_id)
    assert record is not None  # written just above, in this transaction
    return record


def get_model(session: Session, model_id: str) -> ModelRecord | None:
    """The model, or None if it was never registered.

    A deleted model is returned too, with its ``deleted_at``: the caller decides whether
    that counts (its history is readable; the worker does not serve it).
    """
    row = session.execute(select(models).where(models.c.model_id == model_id)).first()
    return None if row is None else ModelRecord(**row._mapping)


def list_models(session: Session, include_deleted: bool = False) -> list[ModelRecord]:
    """The registered models, by id; deleted ones only with ``include_deleted``."""
    query = select(models).order_by(models.c.model_id)
    if not include_deleted:
        query = query.where(models.c.deleted_at.is_(None))
    return [ModelRecord(**row._mapping) for row in session.execute(query)]


def delete_model(session: Session, model_id: str, at: datetime) -> bool:
    """Delete ``model_id`` softly at ``at``; return whether the model exists.

    Idempotent: a model deleted before keeps its first ``deleted_at``. Nothing else is
    removed (see the module docstring); :func:`upsert_model` restores the model.
    """
    require_aware("at", at)
    session.execute(
        models.update()
        .where(models.c.model_id == model_id, models.c.deleted_at.is_(None))
        .values(deleted_at=at)
    )
    found = session.execute(select(models.c.model_id).where(models.c.model_id == model_id))
    return found.first() is not None


def save_reference_profile(
    session: Session,
    model_id: str,
    fingerprint: str,
    profile_json: str,
    source: str,
    n_rows: int,
    make_current: bool = True,
) -> bool:
    """Store a reference profile of ``model_id``; return whether it was new.

    The fingerprint identifies the content, so saving the same fingerprint again keeps the
    first copy (its source and time) and only, if asked, makes it current again.

    Parameters
    ----------
    profile_json
        The profile as JSON text, stored verbatim (it may be hundreds of kilobytes).
    source
        Where it came from, for people: a file name, ``"baseline:windows 0-2"``.
    n_rows
        Rows of reference data it summarizes.
    make_current
        Compare the model's windows against this profile from now on.
    """
    require_model(session, model_id)
    if not isinstance(profile_json, str):
        raise InvalidInputError(f"profile_json must be str, got {type(profile_json).__name__}")
    try:
        json.loads(profile_json)
    except ValueError as exc:
        raise InvalidInputError(f"profile_json is not valid JSON: {exc}") from None
    row = {
        "model_id": model_id,
        "fingerprint": fingerprint,
        "profile": profile_json,
        "source": source,
        "n_rows": n_rows,
        "created_at": utcnow(),
    }
    created = insert_if_absent(session, reference_profiles, row, ["model_id", "fingerprint"])
    if make_current:
        session.execute(
            models.update()
            .where(models.c.model_id == model_id)
            .values(current_fingerprint=fingerprint, updated_at=utcnow())
        )
    return created


def get_current_profile(session: Session, model_id: str) -> CurrentProfile | None:
    """The fingerprint and JSON of the model's current reference profile, if it has one."""
    joined = models.join(
        reference_profiles,
        (reference_profiles.c.model_id == models.c.model_id)
        & (reference_profiles.c.fingerprint == models.c.current_fingerprint),
    )
    row = session.execute(
        select(reference_profiles.c.fingerprint, reference_profiles.c.profile)
        .select_from(joined)
        .where(models.c.model_id == model_id)
    ).first()
    return None if row is None else CurrentProfile(row.fingerprint, row.profile)


def get_reference_profile(session: Session, model_id: str, fingerprint: str) -> str | None:
    """The JSON of one stored profile of the model, current or not."""
    return session.execute(
        select(reference_profiles.c.profile).where(
            reference_profiles.c.model_id == model_id,
            reference_profiles.c.fingerprint == fingerprint,
        )
    ).scalar_one_or_none()


def list_reference_profiles(session: Session, model_id: str) -> list[ReferenceProfileInfo]:
    """The model's stored profiles without their bodies, oldest first."""
    current = select(models.c.current_fingerprint).where(models.c.model_id == model_id)
    current_fingerprint = session.execute(current).scalar_one_or_none()
    rows = session.execute(
        select(
            reference_profiles.c.model_id,
            reference_profiles.c.fingerprint,
            reference_profiles.c.source,
            reference_profiles.c.n_rows,
            reference_profiles.c.created_at,
        )
        .where(reference_profiles.c.model_id == model_id)
        .order_by(reference_profiles.c.created_at, reference_profiles.c.id)
    )
    return [
        ReferenceProfileInfo(**row._mapping, is_current=row.fingerprint == current_fingerprint)
        for row in rows
    ]
