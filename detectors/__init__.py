"""Pure statistics: reference profiles, mergeable window state, drift tests, quality
metrics and control limits. No I/O, no Kafka, no SQL: plain data in, plain data out.

The usual path through it::

    profile = build_profile(reference_df, output_columns=["score"])
    state = WindowState.empty(profile, task=QualityTask("binary", classes=("0", "1")))
    state.update(profile, {"age": ages, "plan": plans, "score": scores})   # any number of batches
    state = state.merge(state_from_another_partition)
    report = evaluate_window(profile, state)
"""

from detectors.control import ControlLimitResult, ControlLimits, FrozenBaseline
from detectors.data_quality import DataQualityResult
from detectors.drift import (
    DriftConfig,
    DriftResult,
    FeatureDrift,
    WindowReport,
    evaluate_window,
    revise_quality,
)
from detectors.profile import (
    FeatureKind,
    ProfileSettings,
    ReferenceProfile,
    build_profile,
    profile_file,
)
from detectors.quality import ClassificationMetrics, QualityTask, RegressionMetrics
from detectors.registry import (
    Direction,
    MethodRegistry,
    MethodSpec,
    UnknownDetectorError,
    default_registry,
)
from detectors.window import UnknownFeatureError, WindowState

__all__ = [
    "ClassificationMetrics",
    "ControlLimitResult",
    "ControlLimits",
    "DataQualityResult",
    "Direction",
    "DriftConfig",
    "DriftResult",
    "FeatureDrift",
    "FeatureKind",
    "FrozenBaseline",
    "MethodRegistry",
    "MethodSpec",
    "ProfileSettings",
    "QualityTask",
    "ReferenceProfile",
    "RegressionMetrics",
    "UnknownDetectorError",
    "UnknownFeatureError",
    "WindowReport",
    "WindowState",
    "build_profile",
    "default_registry",
    "evaluate_window",
    "profile_file",
    "revise_quality",
]
