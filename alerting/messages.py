"""What a group notification says: the channel-free :class:`Notification` of a notice.

The most severe and the strongest alerts first (a drifted feature by how far its score is
past its threshold), at most ``top_n`` lines, then "… and K more"; each line carries the
evidence a person acts on: the score against its threshold, the metric against its bound
with the label coverage behind it, the value against its 3-sigma limits. Links go to the
window in the dashboard when its base URL is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from alerting.grouping import Notice
from alerting.notifiers import AlertLine, Notification
from storage.alerts import AlertRecord

_SEVERITY_ORDER = {"critical": 0, "warning": 1}


def notification_of(notice: Notice, *, dashboard_url: str | None, top_n: int) -> Notification:
    group = notice.group
    shown = notice.firing if notice.status == "firing" else notice.resolved
    ordered = sorted(shown, key=_importance)
    severity = "critical" if any(a.severity == "critical" for a in shown) else "warning"
    models = sorted({a.model_id for a in shown})
    lines = tuple(_line(a) for a in ordered[:top_n])
    notes: tuple[str, ...] = ()
    if notice.status == "firing" and notice.resolved:
        notes = (f"resolved since the last message: {len(notice.resolved)}",)
    fields = {"group": ", ".join(f"{k}={v}" for k, v in group.group_labels.items()) or "all"}
    latest = max(shown, key=lambda a: a.window_start) if shown else None
    if latest is not None:
        fields["window"] = _window_text(latest)
        if latest.model_version:
            fields["version"] = latest.model_version
    title = _title(notice, len(shown), severity, models)
    return Notification(
        title=title,
        lines=lines,
        unlisted=len(ordered) - len(lines),
        notes=notes,
        link=_link(dashboard_url, latest) if latest is not None else None,
        severity=severity if notice.status == "firing" else "resolved",
        fields=fields,
        status=notice.status,
        alerts=tuple(_row(a, dashboard_url) for a in ordered),
        # Unique per notice: a group forgotten and formed again restarts its seq.
        key=f"{group.receiver}/{group.group_key}/{group.first_seen_at.timestamp():.0f}/{group.seq}",
    )


def _title(notice: Notice, count: int, severity: str, models: Sequence[str]) -> str:
    about = ", ".join(models) if len(models) <= 3 else f"{len(models)} models"
    if notice.status == "resolved":
        return f"[RESOLVED] {about}: {count} alert{'s' if count != 1 else ''} cleared"
    again = " (still firing)" if notice.repeat else ""
    return f"[FIRING:{count}] {about}: {severity}{again}"


def _importance(alert: AlertRecord) -> tuple[int, float, str]:
    evidence = alert.evidence
    score, threshold = evidence.get("score"), evidence.get("threshold")
    strength = 0.0
    if isinstance(score, int | float) and isinstance(threshold, int | float) and threshold:
        strength = float(score) / float(threshold)
    elif isinstance(evidence.get("share_drifted"), int | float):
        strength = float(evidence["share_drifted"])
    return (_SEVERITY_ORDER.get(alert.severity, 2), -strength, alert.subject)


def _line(alert: AlertRecord) -> str:
    text = f"{alert.severity} · {alert.model_id} · {alert.summary}"
    coverage = alert.evidence.get("label_coverage")
    labeled = alert.evidence.get("n_labeled")
    if isinstance(labeled, int):
        share = f", coverage {coverage:.0%}" if isinstance(coverage, int | float) else ""
        text += f" ({labeled} labeled{share})"
    return text


def _row(alert: AlertRecord, dashboard_url: str | None) -> AlertLine:
    return AlertLine(
        severity=alert.severity,
        model=alert.model_id,
        version=alert.model_version or "",
        window=_window_text(alert),
        subject=alert.subject,
        summary=alert.summary,
        link=_link(dashboard_url, alert),
    )


def _window_text(alert: AlertRecord) -> str:
    start = alert.window_start
    if alert.window_end is None:
        return f"{_clock(start)} UTC"
    end = alert.window_end
    same_day = end.date() == start.date()
    return f"{_clock(start)}–{end:%H:%M} UTC" if same_day else f"{_clock(start)}–{_clock(end)} UTC"


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _link(dashboard_url: str | None, alert: AlertRecord) -> str | None:
    if not dashboard_url:
        return None
    start = alert.window_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{dashboard_url}/models/{quote(alert.model_id, safe='')}/windows/{start}"
