"""Loading a model's configuration and current reference profile from SQL for the registry."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from detectors import ReferenceProfile
from schemas.model_config import ModelConfig
from storage import catalog
from stream_app.registry import DeletedModel, Loader, ModelRuntime, ProfileLoader

log = logging.getLogger(__name__)

# What a model was loaded from: its stored configuration, current reference, references.
_Source = tuple[dict[str, Any], str | None, tuple[tuple[float, str], ...]]


def sql_loader(sessions: sessionmaker[Session]) -> Loader:
    """A loader for :class:`~stream_app.registry.ModelRegistry` reading the catalog tables.

    A model without a reference profile loads with ``profile=None``: its first windows
    become its baseline. A deleted model loads as :class:`~stream_app.registry.DeletedModel`:
    the registry serves no configuration for it, as for an unregistered one.

    A model found as it was loaded last (the same configuration and references) is that
    very :class:`~stream_app.registry.ModelRuntime`: the registry reloads every model each
    ``refresh_seconds``, sometimes on the event loop, and parsing the reference profile
    again (tens of milliseconds for a wide model) and rebuilding what a runtime derives on
    first use (its envelope decoder, its task check, its profile's fingerprint) would buy
    nothing. A reference's body never changes under its fingerprint (its content hash).
    """
    known: dict[str, tuple[_Source, ModelRuntime]] = {}

    def load(model_id: str) -> ModelRuntime | DeletedModel | None:
        with sessions() as session:
            record = catalog.get_model(session, model_id)
            if record is None or record.deleted_at is not None:
                known.pop(model_id, None)
            if record is None:
                return None
            if record.deleted_at is not None:
                return DeletedModel(model_id, record.deleted_at)
            history = tuple(
                (info.created_at.timestamp(), info.fingerprint)
                for info in catalog.list_reference_profiles(session, model_id)
            )
            source = (record.config, record.current_fingerprint, history)
            found = known.get(model_id)
            if found is not None and found[0] == source:
                return found[1]
            current = catalog.get_current_profile(session, model_id)
        config = ModelConfig.model_validate(record.config)
        if current is None:
            runtime = ModelRuntime(config, None)
        else:
            runtime = ModelRuntime(
                config, ReferenceProfile.from_json(current.profile_json), history
            )
        known[model_id] = (source, runtime)
        return runtime

    return load


def sql_profile_loader(sessions: sessionmaker[Session]) -> ProfileLoader:
    """Loads any stored reference of a model by fingerprint (windows bound to an old one)."""

    def load(model_id: str, fingerprint: str) -> ReferenceProfile | None:
        with sessions() as session:
            body = catalog.get_reference_profile(session, model_id, fingerprint)
        return None if body is None else ReferenceProfile.from_json(body)

    return load
