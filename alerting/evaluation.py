"""Alerts of a window, recorded in the window's own transaction.

Stage 2 calls :func:`record_window` (finalized window) or :func:`record_revision` (quality
revised by late labels) inside the transaction that writes the window's results, so the
alerts and the results they are about are committed together or not at all, and the relay
never notifies about a window that is not stored. The model's :class:`AlertBook` is read
from SQL, advanced by the window and written back in that same transaction: a retried or
replayed window finds the book it left, and a window already counted is only a revision
(:meth:`AlertBook.advance`), so a replay never fires or resolves an alert twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from alerting.rules import (
    AlertState,
    Change,
    Rule,
    WindowEvidence,
    book_from_json,
    book_to_json,
    evaluate,
)
from storage import alerts as store
from storage.types import utcnow

# A revision brings new labels: only the rules that read quality can change their verdict.
REVISION_KINDS = frozenset({"metric", "anomaly", "retraining"})


def record_window(
    session: Session,
    rules: Sequence[Rule],
    evidence: WindowEvidence,
    labels: Mapping[str, str] | None = None,
) -> list[Change]:
    """Advance the model's alerts by one finalized window; return what fired or resolved."""
    return _record(session, rules, evidence, labels, revision=False)


def record_revision(
    session: Session,
    rules: Sequence[Rule],
    evidence: WindowEvidence,
    labels: Mapping[str, str] | None = None,
) -> list[Change]:
    """Evaluate a window's revised quality: it may raise alerts, never counts as a window."""
    quality_rules = [rule for rule in rules if rule.kind in REVISION_KINDS]
    return _record(session, quality_rules, evidence, labels, revision=True, all_rules=rules)


def _record(
    session: Session,
    rules: Sequence[Rule],
    evidence: WindowEvidence,
    labels: Mapping[str, str] | None,
    *,
    revision: bool,
    all_rules: Sequence[Rule] | None = None,
) -> list[Change]:
    model_id = evidence.model_id
    saved = store.load_book(session, model_id)
    book = book_from_json(all_rules if all_rules is not None else rules, saved)
    if not book.rules and not book.alerts:
        return []  # alerts disabled and nothing left firing: no book to keep
    start = evidence.window.window_start.timestamp()
    changes = book.advance(start, evaluate(rules, evidence, labels))
    last = None if book.last_window is None else datetime.fromtimestamp(book.last_window, UTC)
    store.save_book(session, model_id, book_to_json(book), last)
    changed = {change.alert.fingerprint for change in changes}
    # A finalized window rewrites every firing alert with its latest evidence; a revision
    # only what it changed. Pending alerts are not alerts yet and stay in the book only.
    firing = [] if revision else [a for a in book.alerts.values() if a.state == "firing"]
    written = {a.fingerprint for a in firing}
    for state in [*firing, *(c.alert for c in changes if c.alert.fingerprint not in written)]:
        record = _record_of(state, evidence)
        store.save_alert(session, record)
        if state.fingerprint in changed:
            store.add_event(session, record)
    return changes


def _record_of(state: AlertState, evidence: WindowEvidence) -> store.AlertRecord:
    signal = state.signal
    resolved = state.state == "resolved"
    window = evidence.window
    return store.AlertRecord(
        fingerprint=state.fingerprint,
        model_id=evidence.model_id,
        model_version=signal.labels.get("version") or evidence.model_version,
        rule=state.rule,
        subject=signal.labels.get("subject", ""),
        severity=signal.severity,
        status="resolved" if resolved else "firing",
        labels=dict(signal.labels),
        summary=signal.summary,
        evidence=_finite(signal.evidence),
        window_start=window.window_start if not resolved else _utc(state.last_seen),
        window_end=window.window_end if not resolved else None,
        starts_at=_utc(state.since),
        resolved_at=window.window_start if resolved else None,
        updated_at=utcnow(),
    )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _finite(value: Any) -> Any:
    """JSON-safe evidence: a non-finite score (an infinite PSI) is stored as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
