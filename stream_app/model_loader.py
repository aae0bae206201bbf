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

    A model without a reference profile is not ready to judge windows and loads as
    ``None``, like an unknown one; its events go to the dead-letter topic with the reason.
    """

    def load(model_id: str) -> ModelRuntime | None:
        with sessions() as session:
            record = catalog.get_model(session, model_id)
            if record is None:
                return None
            current = catalog.get_current_profile(session, model_id)
        if current is None:
            log.warning("model %s has no reference profile; attach one to monitor it", model_id)
            return None
        config = ModelConfig.model_validate(record.config)
        return ModelRuntime(config, ReferenceProfile.from_json(current.profile_json))

    return load
