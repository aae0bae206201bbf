"""The retraining policy: when the evidence of a model's recent windows asks for retraining.

A trigger fires when, at a finalized window,

- **drift** was found in at least ``min_drifted_windows`` of the last ``of_last_windows``
  windows, on any of the configured features (any feature when none are named) or, when
  ``include_output_drift``, on the model's output; or
- a **quality metric** is below ``metric_below`` (above ``metric_above`` for errors such as
  RMSE), or anomalous when ``on_metric_anomaly``;

and the previous trigger is at least ``cooldown_seconds`` of *event time* older (window
ends are compared, so a replay gives the same triggers as the original run).

The trigger id is a hash of the model, the rule and the windows of the evidence: the same
evidence always gives the same id, so a replayed window cannot publish a second trigger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.model_settings import RetrainPolicy
from schemas.outbound import RetrainTrigger


@dataclass(frozen=True)
class WindowSummary:
    """What the policy needs to know about one finalized window."""

    window_start: float
    window_end: float
    drifted: tuple[str, ...] = ()
    drift_scores: dict[str, float | None] = field(default_factory=dict)
    output_drift: bool | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    anomalous_metrics: tuple[str, ...] = ()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _drift_hits(policy: RetrainPolicy, window: WindowSummary) -> list[str]:
    watched = set(policy.features)
    hits = [f for f in window.drifted if not watched or f in watched]
    if policy.include_output_drift and window.output_drift:
        hits.append("<output>")
    return hits


def evaluate_policy(
    policy: RetrainPolicy,
    model_id: str,
    model_version: str,
    history: Sequence[WindowSummary],
    last_trigger_end: float | None,
) -> RetrainTrigger | None:
    """The trigger the newest window of ``history`` (sorted by start) calls for, if any."""
    if not policy.enabled or not history:
        return None
    current = history[-1]
    if (
        last_trigger_end is not None
        and current.window_end - last_trigger_end < policy.cooldown_seconds
    ):
        return None
    recent = list(history[-policy.of_last_windows :])
    hits = {w.window_start: _drift_hits(policy, w) for w in recent}
    drifted_windows = [w for w in recent if hits[w.window_start]]
    if len(drifted_windows) >= policy.min_drifted_windows:
        evidence: dict[str, Any] = {
            "rule": "drift",
            "windows": [
                {
                    "window_start": _utc(w.window_start).isoformat(),
                    "features": hits[w.window_start],
                    "scores": {f: w.drift_scores.get(f) for f in hits[w.window_start]},
                }
                for w in drifted_windows
            ],
        }
        reason = (
            f"drift in {len(drifted_windows)} of the last {len(recent)} windows "
            f"(policy: {policy.min_drifted_windows} of {policy.of_last_windows})"
        )
        return _trigger(model_id, model_version, reason, evidence, drifted_windows, current)
    metric_reason = _metric_reason(policy, current)
    if metric_reason is not None:
        metric_evidence = {
            "rule": "metric",
            "metric": policy.metric,
            "value": current.metrics.get(policy.metric or ""),
            "window_start": _utc(current.window_start).isoformat(),
        }
        return _trigger(model_id, model_version, metric_reason, metric_evidence, [current], current)
    return None


def _metric_reason(policy: RetrainPolicy, window: WindowSummary) -> str | None:
    if policy.metric is None:
        return None
    value = window.metrics.get(policy.metric)
    if value is None:
        return None
    if policy.metric_below is not None and value < policy.metric_below:
        return f"{policy.metric} {value:.4f} below {policy.metric_below}"
    if policy.metric_above is not None and value > policy.metric_above:
        return f"{policy.metric} {value:.4f} above {policy.metric_above}"
    if policy.on_metric_anomaly and policy.metric in window.anomalous_metrics:
        return f"{policy.metric} {value:.4f} outside its 3-sigma limits"
    return None


def _trigger(
    model_id: str,
    model_version: str,
    reason: str,
    evidence: dict[str, Any],
    evidence_windows: Sequence[WindowSummary],
    current: WindowSummary,
) -> RetrainTrigger:
    starts = ",".join(repr(w.window_start) for w in evidence_windows)
    digest = hashlib.sha256(f"{model_id}|{evidence['rule']}|{starts}".encode()).hexdigest()
    first = min(w.window_start for w in evidence_windows)
    return RetrainTrigger(
        trigger_id=digest[:32],
        model_id=model_id,
        model_version=model_version,
        reason=reason,
        evidence=evidence,
        window_start=_utc(current.window_start),
        window_end=_utc(current.window_end),
        created_at=datetime.now(tz=UTC),
        data_start=_utc(first),
        data_end=_utc(current.window_end),
    )
