"""Registering a model and attaching its reference: configuration + profile, stored in SQL.

What the reference must look like, and which checks it must pass, is in
:mod:`stream_app.profiling`. A model registered without a reference takes its first
``baseline_windows`` windows of the stream as its reference.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session

from detectors import ReferenceProfile
from driftline.errors import ConfigurationError
from schemas.model_config import ModelConfig
from storage import catalog
from stream_app.profiling import profile_reference

__all__ = ["profile_reference", "register_model"]


def register_model(
    session: Session,
    config: ModelConfig,
    reference: pd.DataFrame | str | Path | None = None,
    source: str | None = None,
) -> ReferenceProfile | None:
    """Store ``config`` (insert or update) and, when given, the reference's profile."""
    catalog.upsert_model(session, config.model_id, config.model_dump(mode="json"))
    if reference is None:
        return None
    profile = profile_reference(config, reference)
    _check_alert_features(config, set(profile.columns))
    name = source or (str(reference) if not isinstance(reference, pd.DataFrame) else "dataframe")
    catalog.save_reference_profile(
        session,
        config.model_id,
        profile.fingerprint,
        profile.to_json(),
        source=name,
        n_rows=profile.n_rows,
    )
    return profile


def _check_alert_features(config: ModelConfig, columns: set[str]) -> None:
    """Rules naming features the reference does not have would never fire: refuse them."""
    for index, rule in enumerate(config.alerts.rules or ()):
        unknown = sorted(set(rule.features) - columns)
        if unknown:
            raise ConfigurationError(
                f"alerts.rules[{index}].features: {unknown} are not columns of the reference "
                f"(it has {sorted(columns)})"
            )
