"""Registering a model and attaching its reference: configuration + profile, stored in SQL.

What the reference must look like, and which checks it must pass, is in
:mod:`registration.profiling`. A model registered without a reference takes its first
``baseline_windows`` windows of the stream as its reference.

Profiling (:func:`profile_for_model`) needs no database and storing (:func:`store_profile`)
no profiling, so a caller can keep its transaction short; :func:`register_model` does both.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session

from detectors import ReferenceProfile
from driftline.errors import ConfigurationError
from registration.profiling import profile_reference
from schemas.model_config import ModelConfig
from storage import catalog


def register_model(
    session: Session,
    config: ModelConfig,
    reference: pd.DataFrame | str | Path | None = None,
    source: str | None = None,
) -> ReferenceProfile | None:
    """Store ``config`` (insert or update) and, when given, the reference's profile.

    Registering a model that was deleted restores it (see :func:`storage.catalog.upsert_model`).
    """
    catalog.upsert_model(session, config.model_id, config.model_dump(mode="json"))
    if reference is None:
        return None
    profile = profile_for_model(config, reference)
    name = source or (str(reference) if not isinstance(reference, pd.DataFrame) else "dataframe")
    store_profile(session, config.model_id, profile, name)
    return profile


def profile_for_model(
    config: ModelConfig, reference: pd.DataFrame | str | Path
) -> ReferenceProfile:
    """The reference's profile for ``config``, checked against it (alert rules included).

    Raises :class:`~driftline.errors.ConfigurationError` for a reference the configuration
    cannot use (or a file that cannot be read) and
    :class:`~driftline.errors.ProfileError` for data that cannot be profiled.
    """
    profile = profile_reference(config, reference)
    _check_alert_features(config, set(profile.columns))
    return profile


def store_profile(session: Session, model_id: str, profile: ReferenceProfile, source: str) -> bool:
    """Store ``profile`` as the model's current reference; return whether it was new (the
    same content stored before keeps its first source and time and becomes current again)."""
    return catalog.save_reference_profile(
        session,
        model_id,
        profile.fingerprint,
        profile.to_json(),
        source=source,
        n_rows=profile.n_rows,
    )


def _check_alert_features(config: ModelConfig, columns: set[str]) -> None:
    """Rules naming features the reference does not have would never fire: refuse them."""
    for index, rule in enumerate(config.alerts.rules or ()):
        unknown = sorted(set(rule.features) - columns)
        if unknown:
            raise ConfigurationError(
                f"alerts.rules[{index}].features: {unknown} are not columns of the reference "
                f"(it has {sorted(columns)})"
            )
