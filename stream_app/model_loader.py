"""Loading a model's configuration and current reference profile from SQL for the registry."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from detectors import ReferenceProfile
from schemas.model_config import ModelConfig
from storage import catalog
from stream_app.registry import Loader, ModelRuntime

log = logging.getLogger(__name__)


def sql_loader(sessions: sessionmaker[Session]) -> Loader:
    """A loader for :class:`~stream_app.registry.ModelRegistry` reading the catalog tables.

    A model without a reference profile loads with ``profile=None``: its first windows
    become its baseline.
    """

    def load(model_id: str) -> ModelRuntime | None:
        with sessions() as session:
            record = catalog.get_model(session, model_id)
            if record is None:
                return None
            current = catalog.get_current_profile(session, model_id)
        config = ModelConfig.model_validate(record.config)
        if current is None:
            return ModelRuntime(config, None)
        return ModelRuntime(config, ReferenceProfile.from_json(current.profile_json))

    return load
