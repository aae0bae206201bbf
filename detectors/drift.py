"""Finalizing a window: drift per feature, the window verdict, data quality and metrics.

For every column a *primary* method decides the feature's status; other methods are
reported beside it (by default KS for numeric columns) and carry their own verdict but do
not change the status. PSI is the default primary method, judged by default with a
calibrated verdict (:mod:`detectors.calibration`): ``drift`` when its shift is
statistically real at the window's size (Benjamini-Hochberg across the window's features
at ``alpha``, 1 %) and at least the effect floor (0.05), ``warning`` when real but
smaller. With ``verdicts="fixed"`` it has two fixed levels: ``warning`` at 0.1 and
``drift`` at 0.2.

p-value methods test every feature of the window at once, so their p-values are adjusted
with Benjamini-Hochberg across the columns of the window (inputs and outputs together) and
the verdict uses the adjusted p-value: at the default 0.05 the expected share of false
drift verdicts among the drifted features stays at 5 %, however many features a model has.

The window verdict is the share of input features with status ``drift``
(``dataset_drift`` when it reaches ``drift_share``) and, separately, ``output_drift``:
whether any model-output column drifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy import stats

from detectors.calibration import CALIBRATED_METHODS, DEFAULT_NULL_MODELS, NullModels, is_squared
from detectors.data_quality import DataQualityResult, data_quality
from detectors.methods import FeatureDistributions, MethodScore
from detectors.profile import FeatureKind, ReferenceProfile
from detectors.quality import (
    ClassificationMetrics,
    ClassificationState,
    RegressionMetrics,
    classification_metrics,
    regression_metrics,
)
from detectors.registry import DriftMethod, MethodRegistry, MethodSpec, default_registry
from detectors.window import WindowState
from driftline.errors import ConfigurationError, IncompatibleStateError

Status = Literal["ok", "warning", "drift", "no data"]


@dataclass(frozen=True)
class DriftConfig:
    """Which methods judge which columns, and at what thresholds.

    Parameters
    ----------
    numeric_method, categorical_method
        Primary method per feature kind (a registry name).
    feature_methods
        Primary method for individual columns, overriding the kind's default.
    also_report
        Methods reported beside the primary one wherever they apply to the column's kind.
    thresholds
        Drift threshold per method name; the spec's default otherwise.
    warning_thresholds
        Warning level per method name (score methods only); PSI warns at 0.1.
    drift_share
        Share of drifted input features at which the whole window counts as drifted.
    verdicts
        ``"calibrated"`` (the default, :mod:`detectors.calibration`): PSI and
        Jensen-Shannon get a p-value from their spread under no drift at the window's size,
        adjusted across the window's features; a feature drifts when the adjusted p-value
        is at most ``alpha`` and the score at least its effect floor, and warns when only
        the first holds. A method named in ``thresholds`` keeps a fixed verdict.
        ``"fixed"``: a score method drifts at its threshold, whatever the window's size.
    alpha
        The false-alarm level of calibrated verdicts, for all of a window's features together.
    effect_floors
        Smallest score that counts as drift under calibrated verdicts, per method.
    """

    numeric_method: str = "psi"
    categorical_method: str = "psi"
    feature_methods: Mapping[str, str] = field(default_factory=dict)
    also_report: tuple[str, ...] = ("ks",)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    warning_thresholds: Mapping[str, float] = field(default_factory=lambda: {"psi": 0.1})
    drift_share: float = 0.5
    verdicts: Literal["fixed", "calibrated"] = "calibrated"
    alpha: float = 0.01
    effect_floors: Mapping[str, float] = field(
        default_factory=lambda: {"psi": 0.05, "jensenshannon": 0.1}
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.drift_share <= 1.0:
            raise ConfigurationError(f"drift_share must be in (0, 1], got {self.drift_share!r}")
        if self.verdicts not in ("fixed", "calibrated"):
            raise ConfigurationError(
                f"verdicts must be 'fixed' or 'calibrated', got {self.verdicts!r}"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ConfigurationError(f"alpha must be in (0, 1), got {self.alpha!r}")

    def calibrates(self, method: str) -> bool:
        """Whether ``method``'s verdict is calibrated to the window's size: under calibrated
        verdicts, PSI and Jensen-Shannon unless ``thresholds`` names them (an explicit
        threshold is a choice of a fixed verdict, and configurations written before
        calibrated verdicts keep their meaning)."""
        return (
            self.verdicts == "calibrated"
            and method in CALIBRATED_METHODS
            and method not in self.thresholds
        )

    def primary_for(self, feature: str, kind: FeatureKind) -> str:
        if feature in self.feature_methods:
            return self.feature_methods[feature]
        return self.numeric_method if kind is FeatureKind.NUMERIC else self.categorical_method

    def validate(self, profile: ReferenceProfile, registry: MethodRegistry) -> None:
        """Fail early, naming the valid choices, when a name or kind does not fit."""
        for name, column in profile.columns.items():
            registry.get(self.primary_for(name, column.kind), column.kind)
        for name in [*self.also_report, *self.thresholds, *self.warning_thresholds]:
            registry.get(name)
        unknown = sorted(set(self.feature_methods) - set(profile.columns))
        if unknown:
            raise ConfigurationError(f"feature_methods names columns not in the profile: {unknown}")


@dataclass(frozen=True)
class DriftResult:
    """One method's measurement of one column in one window."""

    method: str
    display_name: str
    score: float | None
    p_value: float | None
    adjusted_p_value: float | None
    threshold: float
    warning_threshold: float | None
    drifted: bool | None
    warning: bool | None


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column: the primary method's result decides ``status``."""

    feature: str
    kind: FeatureKind
    is_output: bool
    n_current: int
    status: Status
    primary: DriftResult
    others: tuple[DriftResult, ...]


@dataclass(frozen=True)
class WindowReport:
    """Everything finalized for one window."""

    n_rows: int
    features: tuple[FeatureDrift, ...]
    outputs: tuple[FeatureDrift, ...]
    data_quality: tuple[DataQualityResult, ...]
    n_drifted: int
    share_drifted: float | None
    dataset_drift: bool | None
    output_drift: bool | None
    quality: ClassificationMetrics | RegressionMetrics | None
    label_coverage: float | None

    def feature(self, name: str) -> FeatureDrift:
        for item in (*self.features, *self.outputs):
            if item.feature == name:
                return item
        raise KeyError(name)

    @property
    def drifted_features(self) -> list[str]:
        return [item.feature for item in self.features if item.status == "drift"]


@dataclass
class _Pending:
    feature: str
    method: DriftMethod
    outcome: MethodScore | None
    adjusted: float | None = None


def evaluate_window(
    profile: ReferenceProfile,
    state: WindowState,
    config: DriftConfig | None = None,
    registry: MethodRegistry | None = None,
    null_models: NullModels = DEFAULT_NULL_MODELS,
) -> WindowReport:
    """Compute drift, data quality and quality metrics of a window against its reference.

    Columns with no valid value in the window get status ``"no data"`` and ``None`` scores.

    Raises
    ------
    IncompatibleStateError
        When ``state`` was built on another reference than ``profile`` (its fingerprint
        differs): its bins cannot be compared with this profile's.
    """
    if state.fingerprint != profile.fingerprint:
        # Bins of one reference read against another's would give numbers that look right
        # and mean nothing.
        raise IncompatibleStateError(
            f"window state was built on reference {state.fingerprint}, "
            f"not {profile.fingerprint}: judge it against its own reference"
        )
    config = config or DriftConfig()
    registry = registry or default_registry()
    config.validate(profile, registry)
    pending: dict[str, list[_Pending]] = {}
    for name, column in profile.columns.items():
        dist = FeatureDistributions.of(column, state.columns[name])
        methods = [registry.get(config.primary_for(name, column.kind))]
        methods += [
            registry.get(other)
            for other in config.also_report
            if column.kind in registry.get(other).spec.kinds and other != methods[0].name
        ]
        has_data = dist.n_current > 0
        pending[name] = []
        for method in methods:
            outcome = method.compute(dist) if has_data else None
            if outcome is not None and config.calibrates(method.name):
                null = null_models.get(
                    profile.fingerprint, name, method.name, dist.reference, dist.n_current
                )
                squared = is_squared(method.name)
                outcome = MethodScore(outcome.score, null.p_value(outcome.score, squared=squared))
            pending[name].append(_Pending(name, method, outcome))
    _adjust_p_values([p for items in pending.values() for p in items])

    drifts = {
        name: _feature_drift(profile, state, name, items, config) for name, items in pending.items()
    }
    features = tuple(drifts[name] for name in profile.features)
    outputs = tuple(drifts[name] for name in profile.output_columns)
    judged = [f for f in features if f.status != "no data"]
    n_drifted = sum(f.status == "drift" for f in judged)
    share = n_drifted / len(judged) if judged else None
    output_verdicts = [f.status == "drift" for f in outputs if f.status != "no data"]
    quality, coverage = _quality(state)
    return WindowReport(
        n_rows=state.n_rows,
        features=features,
        outputs=outputs,
        data_quality=tuple(
            data_quality(name, state.columns[name], state.n_rows) for name in profile.columns
        ),
        n_drifted=n_drifted,
        share_drifted=share,
        dataset_drift=None if share is None else share >= config.drift_share,
        output_drift=any(output_verdicts) if output_verdicts else None,
        quality=quality,
        label_coverage=coverage,
    )


def revise_quality(report: WindowReport, state: WindowState) -> WindowReport:
    """:func:`evaluate_window`'s report of ``state``, given ``report``, that of a state with
    the same binned columns and rows against the same reference and settings (only the
    labeled pairs differ): its quality part is read again, nothing else changes.

    Labels revise a final window's quality many times; its drift, data quality and output
    drift are read from the binned columns alone, which labels do not touch.
    """
    quality, coverage = _quality(state)
    return replace(report, quality=quality, label_coverage=coverage)


def _adjust_p_values(items: list[_Pending]) -> None:
    by_method: dict[str, list[_Pending]] = {}
    for item in items:
        if item.outcome is not None and item.outcome.p_value is not None:
            by_method.setdefault(item.method.name, []).append(item)
    for group in by_method.values():
        p_values = np.array([item.outcome.p_value for item in group], dtype=np.float64)  # type: ignore[union-attr]
        adjusted = stats.false_discovery_control(p_values, method="bh")
        for item, value in zip(group, adjusted, strict=True):
            item.adjusted = float(value)


def _feature_drift(
    profile: ReferenceProfile,
    state: WindowState,
    name: str,
    items: list[_Pending],
    config: DriftConfig,
) -> FeatureDrift:
    results = [_result(item, config) for item in items]
    primary = results[0]
    status: Status
    if primary.drifted is None:
        status = "no data"
    elif primary.drifted:
        status = "drift"
    else:
        status = "warning" if primary.warning else "ok"
    return FeatureDrift(
        feature=name,
        kind=profile.columns[name].kind,
        is_output=name in profile.output_columns,
        n_current=state.columns[name].n,
        status=status,
        primary=primary,
        others=tuple(results[1:]),
    )


def _result(item: _Pending, config: DriftConfig) -> DriftResult:
    spec: MethodSpec = item.method.spec
    outcome = item.outcome
    drifted = warning = None
    warning_threshold: float | None
    if config.calibrates(spec.name):
        # Drift: statistically real (adjusted p-value <= alpha) and large enough (score >=
        # the effect floor); warning: real but smaller than the floor.
        threshold = config.effect_floors.get(spec.name, spec.default_threshold)
        warning_threshold = None
        if outcome is not None:
            assert item.adjusted is not None
            warning = item.adjusted <= config.alpha
            drifted = warning and outcome.score >= threshold
    else:
        threshold = config.thresholds.get(spec.name, spec.default_threshold)
        warning_threshold = config.warning_thresholds.get(spec.name)
        if outcome is not None:
            judged = item.adjusted if outcome.p_value is not None else outcome.score
            assert judged is not None
            drifted = spec.is_drift(judged, threshold)
            warning = (
                spec.is_drift(judged, warning_threshold)
                if warning_threshold is not None
                else drifted
            )
    return DriftResult(
        method=spec.name,
        display_name=spec.display_name,
        score=None if outcome is None else outcome.score,
        p_value=None if outcome is None else outcome.p_value,
        adjusted_p_value=item.adjusted,
        threshold=threshold,
        warning_threshold=warning_threshold,
        drifted=drifted,
        warning=warning,
    )


def _quality(
    state: WindowState,
) -> tuple[ClassificationMetrics | RegressionMetrics | None, float | None]:
    if state.quality is None:
        return None, None
    if isinstance(state.quality, ClassificationState):
        metrics: ClassificationMetrics | RegressionMetrics = classification_metrics(state.quality)
    else:
        metrics = regression_metrics(state.quality)
    coverage = state.quality.n_labeled / state.n_rows if state.n_rows else None
    return metrics, coverage
