"""Alert rules over a finalized window: which conditions hold, and what each alert is now.

Pure, like ``stream_app/retraining.py``: no I/O, no clock. Two steps, as in Prometheus:

1. :func:`evaluate` turns one window's results into the conditions that hold in it (an
   :class:`Signal` per alert: a drifted feature, a metric under its threshold, an anomalous
   series, ...), each with labels, a stable fingerprint and the evidence to act on.
2. :class:`AlertBook` advances each fingerprint's state by one window: ``pending`` until
   the condition held ``for_windows`` windows in a row, then ``firing``; after it stops
   holding it keeps firing ``keep_firing_windows`` more windows, then ``resolved``. Time is
   counted in windows of event time, never in wall-clock seconds, so a replay of the same
   windows gives the same alerts. A quality revision evaluates its window again: the book
   treats a window it has seen as a correction of that window, not as the next one.

The fingerprint hashes the model, the rule and the subject (the feature, metric or
series), not the model version: an alert that goes on across a deployment is the same
problem, and one about a version no longer served would otherwise never resolve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from schemas.alert_rules import AlertRuleSpec as Rule
from schemas.alert_rules import Severity
from storage.rows import AnomalyRow, DataQualityRow, DriftRow, MetricRow, TriggerRow, WindowRow

State = Literal["pending", "firing", "resolved"]

__all__ = [
    "AlertBook",
    "AlertState",
    "Change",
    "Rule",
    "Signal",
    "WindowEvidence",
    "book_from_json",
    "book_to_json",
    "evaluate",
    "fingerprint",
]


@dataclass(frozen=True)
class WindowEvidence:
    """One finalized window's results, as written to SQL."""

    model_id: str
    model_version: str | None
    window: WindowRow
    drift: Sequence[DriftRow] = ()
    data_quality: Sequence[DataQualityRow] = ()
    metrics: Sequence[MetricRow] = ()
    anomalies: Sequence[AnomalyRow] = ()
    triggers: Sequence[TriggerRow] = ()


@dataclass(frozen=True)
class Signal:
    """A condition that holds in a window."""

    rule: str
    severity: Severity
    labels: dict[str, str]
    fingerprint: str
    summary: str
    evidence: dict[str, Any]


def fingerprint(model_id: str, rule: str, subject: str) -> str:
    """Stable across processes and versions (see the module docstring)."""
    return hashlib.sha256(f"{model_id}\x1f{rule}\x1f{subject}".encode()).hexdigest()[:32]


def evaluate(
    rules: Iterable[Rule], window: WindowEvidence, labels: Mapping[str, str] | None = None
) -> list[Signal]:
    """Every condition of ``rules`` that holds in ``window``, in a stable order.

    ``labels`` (the model's own, for routing) are added to each alert's.
    """
    found: list[Signal] = []
    for rule in rules:
        for subject, summary, evidence in _CHECKS[rule.kind](rule, window):
            labels_ = {
                **(labels or {}),
                "model": window.model_id,
                "version": window.model_version or "",
                "rule": rule.name,
                "kind": rule.kind,
                "subject": subject,
                "severity": rule.severity,
            }
            found.append(
                Signal(
                    rule=rule.name,
                    severity=rule.severity,
                    labels=labels_,
                    fingerprint=fingerprint(window.model_id, rule.name, subject),
                    summary=summary,
                    evidence=evidence,
                )
            )
    return found


_Found = list[tuple[str, str, dict[str, Any]]]


def _feature_drift(rule: Rule, window: WindowEvidence) -> _Found:
    found: _Found = []
    for row in window.drift:
        if not row.is_primary or row.is_output or not row.drifted:
            continue
        if rule.features and row.feature not in rule.features:
            continue
        summary = f"{row.feature} drifted ({row.method} {_num(row.score)} > {_num(row.threshold)})"
        evidence = {
            "feature": row.feature,
            "method": row.method,
            "score": row.score,
            "threshold": row.threshold,
            "p_value": row.adjusted_p_value if row.adjusted_p_value is not None else row.p_value,
        }
        found.append((row.feature, summary, evidence))
    return found


def _dataset_drift(rule: Rule, window: WindowEvidence) -> _Found:
    share = window.window.share_drifted
    if rule.share_above is not None:
        holds = share is not None and share > rule.share_above
    else:
        holds = bool(window.window.dataset_drift)
    if not holds:
        return []
    drifted = sorted(
        r.feature for r in window.drift if r.is_primary and r.drifted and not r.is_output
    )
    summary = f"{window.window.n_drifted} features drifted (share {_num(share)})"
    return [("dataset", summary, {"share_drifted": share, "features": drifted})]


def _output_drift(rule: Rule, window: WindowEvidence) -> _Found:
    if not window.window.output_drift:
        return []
    rows = [r for r in window.drift if r.is_output and r.is_primary]
    evidence = {"method": rows[0].method, "score": rows[0].score} if rows else {}
    return [("output", "the model's output drifted", evidence)]


def _metric(rule: Rule, window: WindowEvidence) -> _Found:
    row = next((m for m in window.metrics if m.metric == rule.metric), None)
    if row is None or row.value is None:
        return []
    if row.n_labeled is not None and row.n_labeled < rule.min_labeled:
        return []
    if rule.below is not None and row.value < rule.below:
        bound = f"below {rule.below}"
    elif rule.above is not None and row.value > rule.above:
        bound = f"above {rule.above}"
    else:
        return []
    # The metric's own history (the center of its 3-sigma limits) is the baseline a person
    # compares with: "0.61 below 0.7" reads differently after 0.83 than after 0.64.
    series = next((a for a in window.anomalies if a.series == f"metric:{row.metric}"), None)
    baseline = series.mean if series is not None else None
    evidence = {
        "metric": row.metric,
        "value": row.value,
        "below": rule.below,
        "above": rule.above,
        "baseline": baseline,
        "n_labeled": row.n_labeled,
        "label_coverage": row.label_coverage,
    }
    summary = f"{row.metric} {_num(row.value)} {bound}"
    if baseline is not None:
        summary += f", baseline {_num(baseline)}"
    return [(row.metric, summary, evidence)]


def _anomaly(rule: Rule, window: WindowEvidence) -> _Found:
    found: _Found = []
    for row in window.anomalies:
        if not row.anomaly or (rule.series and row.series not in rule.series):
            continue
        if row.lower is None or row.upper is None:  # a change detector: no limits, a reason
            summary = f"{row.series} {_num(row.value)}: {row.reason}"
        else:
            summary = (
                f"{row.series} {_num(row.value)} outside its 3-sigma limits "
                f"[{_num(row.lower)}, {_num(row.upper)}]"
            )
        evidence = {
            "series": row.series,
            "value": row.value,
            "lower": row.lower,
            "upper": row.upper,
            "mean": row.mean,
            "n_history": row.n_history,
            "reason": row.reason,
        }
        found.append((row.series, summary, evidence))
    return found


def _data_quality(rule: Rule, window: WindowEvidence) -> _Found:
    limits = (
        ("missing", "missing_rate", rule.missing_above),
        ("unseen", "unseen_rate", rule.unseen_above),
        ("out of range", "out_of_range_rate", rule.out_of_range_above),
    )
    found: _Found = []
    for row in window.data_quality:
        if rule.features and row.feature not in rule.features:
            continue
        for what, attribute, limit in limits:
            rate = getattr(row, attribute)
            if limit is None or rate is None or rate <= limit:
                continue
            subject = f"{row.feature}:{attribute}"
            summary = f"{row.feature}: {rate:.1%} {what} (limit {limit:.1%})"
            evidence = {"feature": row.feature, attribute: rate, "limit": limit}
            found.append((subject, summary, evidence))
    return found


def _volume(rule: Rule, window: WindowEvidence) -> _Found:
    n_rows = window.window.n_rows
    if n_rows >= rule.min_rows:
        return []
    summary = "no data" if n_rows == 0 else f"{n_rows} rows (fewer than {rule.min_rows})"
    return [("volume", summary, {"n_rows": n_rows, "min_rows": rule.min_rows})]


def _retraining(rule: Rule, window: WindowEvidence) -> _Found:
    return [
        (
            "retraining",
            f"retraining triggered: {trigger.reason}",
            {"trigger_id": trigger.trigger_id, "reason": trigger.reason},
        )
        for trigger in window.triggers[:1]
    ]


_CHECKS = {
    "feature_drift": _feature_drift,
    "dataset_drift": _dataset_drift,
    "output_drift": _output_drift,
    "metric": _metric,
    "anomaly": _anomaly,
    "data_quality": _data_quality,
    "volume": _volume,
    "retraining": _retraining,
}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


@dataclass(frozen=True)
class AlertState:
    """Where one fingerprint stands after a window."""

    fingerprint: str
    rule: str
    state: State
    signal: Signal  # the last window's (for a resolved alert: the last that held)
    active_windows: int = 0  # consecutive windows the condition held
    quiet_windows: int = 0  # consecutive windows it did not, while still firing
    since: float = 0.0  # window start at which it began firing (pending: began holding)
    last_seen: float = 0.0  # window start of the last window the condition held in


@dataclass(frozen=True)
class Change:
    """A state change a notification may be about: ``firing`` or ``resolved``."""

    state: Literal["firing", "resolved"]
    alert: AlertState


@dataclass
class AlertBook:
    """The states of one model's alerts, advanced window by window (serializable)."""

    rules: dict[str, Rule]
    alerts: dict[str, AlertState] = field(default_factory=dict)
    last_window: float | None = None

    def advance(self, window_start: float, signals: Sequence[Signal]) -> list[Change]:
        """Apply the signals of the window starting at ``window_start``; what changed.

        A window at or before the last one seen is a revision of a window already
        counted: it can raise an alert (its labels arrived later) but does not count as
        one more window for the others.
        """
        if self.last_window is not None and window_start <= self.last_window:
            return self._revise(window_start, signals)
        self.last_window = window_start
        changes: list[Change] = []
        holding = {s.fingerprint: s for s in signals}
        for key in sorted(set(self.alerts) | set(holding)):
            signal = holding.get(key)
            before = self.alerts.get(key)
            after = self._step(before, signal, window_start)
            if after is None:
                self.alerts.pop(key, None)
                continue
            self.alerts[key] = after
            if after.state != (before.state if before else None) and after.state != "pending":
                changes.append(Change(after.state, after))
            if after.state == "resolved":
                del self.alerts[key]
        return changes

    def _step(
        self, before: AlertState | None, signal: Signal | None, window_start: float
    ) -> AlertState | None:
        if signal is not None:
            rule = self.rules.get(signal.rule)
            need = rule.for_windows if rule else 1
            active = (before.active_windows if before else 0) + 1
            firing = (before is not None and before.state == "firing") or active >= need
            since = before.since if before is not None else window_start
            if firing and (before is None or before.state != "firing"):
                since = window_start
            return AlertState(
                fingerprint=signal.fingerprint,
                rule=signal.rule,
                state="firing" if firing else "pending",
                signal=signal,
                active_windows=active,
                quiet_windows=0,
                since=since,
                last_seen=window_start,
            )
        if before is None or before.state == "pending":
            return None  # a pending alert that stops holding never fired
        rule = self.rules.get(before.rule)
        keep = rule.keep_firing_windows if rule else 0
        quiet = before.quiet_windows + 1
        state: State = "firing" if quiet <= keep else "resolved"
        return replace(before, state=state, active_windows=0, quiet_windows=quiet)

    def _revise(self, window_start: float, signals: Sequence[Signal]) -> list[Change]:
        changes: list[Change] = []
        for signal in signals:
            before = self.alerts.get(signal.fingerprint)
            if before is not None:
                continue  # already pending or firing: the revision changes nothing
            rule = self.rules.get(signal.rule)
            if rule is not None and rule.for_windows > 1:
                continue  # one revised window alone cannot satisfy for_windows
            after = AlertState(
                signal.fingerprint, signal.rule, "firing", signal, 1, 0, window_start, window_start
            )
            self.alerts[signal.fingerprint] = after
            changes.append(Change("firing", after))
        return changes


def book_to_json(book: AlertBook) -> dict[str, Any]:
    """The book's state as JSON values (its rules come from the model's configuration)."""
    return {
        "last_window": book.last_window,
        "alerts": [
            {
                "fingerprint": a.fingerprint,
                "rule": a.rule,
                "state": a.state,
                "active_windows": a.active_windows,
                "quiet_windows": a.quiet_windows,
                "since": a.since,
                "last_seen": a.last_seen,
                "signal": {
                    "rule": a.signal.rule,
                    "severity": a.signal.severity,
                    "labels": a.signal.labels,
                    "summary": a.signal.summary,
                    "evidence": a.signal.evidence,
                },
            }
            for a in book.alerts.values()
        ],
    }


def book_from_json(rules: Iterable[Rule], data: Mapping[str, Any] | None) -> AlertBook:
    """A book with ``rules`` and the state :func:`book_to_json` saved (None: a new book)."""
    book = AlertBook({rule.name: rule for rule in rules})
    if not data:
        return book
    book.last_window = data.get("last_window")
    for item in data.get("alerts", ()):
        raw = item["signal"]
        signal = Signal(
            rule=raw["rule"],
            severity=raw["severity"],
            labels=dict(raw["labels"]),
            fingerprint=item["fingerprint"],
            summary=raw["summary"],
            evidence=dict(raw["evidence"]),
        )
        book.alerts[item["fingerprint"]] = AlertState(
            fingerprint=item["fingerprint"],
            rule=item["rule"],
            state=item["state"],
            signal=signal,
            active_windows=item["active_windows"],
            quiet_windows=item["quiet_windows"],
            since=item["since"],
            last_seen=item.get("last_seen", item["since"]),
        )
    return book
