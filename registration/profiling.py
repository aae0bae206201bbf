"""Profiling a model's reference (a file, a DataFrame, or the rows of its baseline windows).

The reference is a table with one column per feature and, optionally, the model's outputs
on those rows: ``prediction`` (the predicted class or value) and ``score`` (probability of
the positive class). A ``label`` column, ids and timestamps are left out of the profile.
When the configuration declares ``features``, only those are profiled, with the declared
kinds. Checks that need the reference happen here: declared features must be in it, drift
methods must exist and suit the features' kinds. A file that cannot be read as its format
(by its suffix: ``.csv``, ``.parquet``) is a :class:`~driftline.errors.ConfigurationError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from detectors import DriftConfig, ReferenceProfile, build_profile, default_registry
from detectors.profile import ProfileSettings, profile_file
from driftline.errors import ConfigurationError
from schemas.model_config import ModelConfig

OUTPUT_COLUMNS = ("prediction", "score")
NEVER_PROFILED = ("label", "prediction_id", "timestamp", "model_id", "model_version")


def profile_reference(
    config: ModelConfig, reference: pd.DataFrame | str | Path
) -> ReferenceProfile:
    """Profile a reference table for ``config`` (see the module docstring for the columns)."""
    frame = _read(reference)
    declared: dict[str, Any] = dict(config.features)
    missing = sorted(set(declared) - set(frame.columns))
    if missing:
        raise ConfigurationError(
            f"features {missing} are declared for model {config.model_id!r} but the reference "
            f"has no such columns (it has: {sorted(map(str, frame.columns))})"
        )
    outputs = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if "prediction" in outputs and config.task is not None:
        declared["prediction"] = "numeric" if config.task == "regression" else "categorical"
    keep = set(declared) | set(outputs) if config.features else None
    exclude = [
        str(c)
        for c in frame.columns
        if str(c) in NEVER_PROFILED or (keep is not None and str(c) not in keep)
    ]
    settings = ProfileSettings(value_bins_max=config.drift.value_bins_max)
    profile = build_profile(
        frame, schema=declared, output_columns=outputs, exclude=exclude, settings=settings
    )
    drift_config_of(config).validate(profile, default_registry())
    return profile


def window_alpha(alpha: float, per_day: float | None, window_seconds: int) -> float:
    """The per-window false-alarm level that keeps a model within ``per_day`` false alarms.

    Under no drift a calibrated window alarms with probability at most alpha (the null
    quantiles at that level, Benjamini-Hochberg across its features), so a day of
    ``86400 / window_seconds`` windows expects at most ``alpha * 86400 / window_seconds``
    of them. With 5-minute windows the default alpha of 1 % is 2.9 false alarms a day; a
    budget of 1 a day lowers alpha to 0.35 %. Without a budget, ``alpha`` stands.

    >>> round(window_alpha(0.01, 1.0, 300), 5), window_alpha(0.01, 1.0, 86400)
    (0.00347, 0.01)
    """
    if per_day is None:
        return alpha
    return min(alpha, per_day * window_seconds / 86400.0)


def drift_config_of(config: ModelConfig) -> DriftConfig:
    """The statistical core's drift configuration for a model's settings."""
    drift = config.drift
    return DriftConfig(
        numeric_method=drift.numeric_method,
        categorical_method=drift.categorical_method,
        feature_methods=dict(drift.feature_methods),
        also_report=tuple(drift.also_report),
        thresholds=dict(drift.thresholds),
        warning_thresholds=dict(drift.warning_thresholds),
        drift_share=drift.drift_share,
        verdicts=drift.verdicts,
        alpha=window_alpha(drift.alpha, drift.false_alarms_per_day, config.window_seconds),
        effect_floors=dict(drift.effect_floors),
    )


def _read(reference: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(reference, pd.DataFrame):
        return reference
    path = Path(reference)
    if not path.exists():
        raise ConfigurationError(f"reference file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        profile_file(path)  # raises the error that names the supported formats
        raise AssertionError("unreachable")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        kind = "CSV" if suffix == ".csv" else "Parquet"
        text = " ".join(str(exc).replace(str(path), path.name).split()) or type(exc).__name__
        raise ConfigurationError(
            f"reference file {path.name} is not readable {kind}: {text}"
        ) from None
