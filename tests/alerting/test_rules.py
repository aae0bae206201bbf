"""Alert rules on a finalized window, and the pending/firing/resolved states window by window."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.rules import AlertBook, Signal, WindowEvidence, evaluate, fingerprint
from schemas.alert_rules import AlertRuleSpec
from storage.rows import AnomalyRow, DataQualityRow, DriftRow, MetricRow, TriggerRow, WindowRow

START = datetime(2026, 11, 1, tzinfo=UTC)


def Rule(name: str, kind: str, **fields: Any) -> AlertRuleSpec:  # noqa: N802 - reads like a class
    lists = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return AlertRuleSpec.model_validate({"name": name, "kind": kind, **lists})


def window(**fields: Any) -> WindowRow:
    values: dict[str, Any] = {
        "model_id": "churn",
        "window_start": START,
        "window_end": START.replace(hour=1),
        "n_rows": 5000,
    }
    values.update(fields)
    return WindowRow(**values)


def drift(feature: str, drifted: bool, **fields: Any) -> DriftRow:
    values: dict[str, Any] = {
        "feature": feature,
        "method": "psi",
        "score": 0.31 if drifted else 0.02,
        "threshold": 0.2,
        "drifted": drifted,
        "status": "drift" if drifted else "ok",
        "is_primary": True,
    }
    values.update(fields)
    return DriftRow(**values)


def evidence(**fields: Any) -> WindowEvidence:
    values: dict[str, Any] = {"model_id": "churn", "model_version": "v3", "window": window()}
    values.update(fields)
    return WindowEvidence(**values)


def subjects(signals: list[Signal]) -> list[str]:
    return [s.labels["subject"] for s in signals]


def test_one_alert_per_drifted_primary_feature() -> None:
    rows = [
        drift("income", True),
        drift("age", False),
        drift("tenure", True, is_primary=False),  # a secondary method's verdict
        drift("<output>", True, is_output=True),
        drift("region", True),
    ]
    rule = Rule("feature-drift", "feature_drift")
    found = evaluate([rule], evidence(drift=rows))
    assert subjects(found) == ["income", "region"]
    income = found[0]
    assert income.labels == {
        "model": "churn",
        "version": "v3",
        "rule": "feature-drift",
        "kind": "feature_drift",
        "subject": "income",
        "severity": "warning",
    }
    assert income.evidence["score"] == 0.31 and income.evidence["threshold"] == 0.2
    assert income.summary == "income drifted (psi 0.31 > 0.2)"
    only = Rule("watched", "feature_drift", features=("region",))
    assert subjects(evaluate([only], evidence(drift=rows))) == ["region"]


def test_the_fingerprint_names_model_rule_and_subject_not_the_version() -> None:
    rule = Rule("feature-drift", "feature_drift")
    v3 = evaluate([rule], evidence(drift=[drift("income", True)]))[0]
    v4 = evaluate([rule], evidence(model_version="v4", drift=[drift("income", True)]))[0]
    assert v3.fingerprint == v4.fingerprint == fingerprint("churn", "feature-drift", "income")
    assert fingerprint("churn", "feature-drift", "age") != v3.fingerprint
    assert fingerprint("fraud", "feature-drift", "income") != v3.fingerprint


def test_dataset_output_volume_and_retraining_rules() -> None:
    drifted = evidence(
        window=window(n_drifted=3, share_drifted=0.6, dataset_drift=True, output_drift=True),
        drift=[drift("a", True), drift("b", True), drift("c", True), drift("d", False)],
    )
    assert subjects(evaluate([Rule("d", "dataset_drift")], drifted)) == ["dataset"]
    assert evaluate([Rule("d", "dataset_drift", share_above=0.7)], drifted) == []
    assert evaluate([Rule("d", "dataset_drift", share_above=0.5)], drifted)[0].evidence == {
        "share_drifted": 0.6,
        "features": ["a", "b", "c"],
    }
    assert subjects(evaluate([Rule("o", "output_drift")], drifted)) == ["output"]
    assert evaluate([Rule("o", "output_drift")], evidence()) == []

    empty = evidence(window=window(n_rows=0))
    assert [s.summary for s in evaluate([Rule("v", "volume")], empty)] == ["no data"]
    assert evaluate([Rule("v", "volume")], evidence()) == []
    assert subjects(evaluate([Rule("v", "volume", min_rows=6000)], evidence())) == ["volume"]

    trigger = TriggerRow(
        trigger_id="t1",
        model_id="churn",
        model_version="v3",
        reason="drift in 2 of the last 3 windows",
        evidence={},
        window_start=START,
        window_end=START.replace(hour=1),
        created_at=START,
    )
    retrain = evaluate([Rule("r", "retraining")], evidence(triggers=[trigger]))
    assert [s.evidence["trigger_id"] for s in retrain] == ["t1"]


def test_a_metric_rule_needs_enough_labels_and_its_bound() -> None:
    rule = Rule("f1-low", "metric", severity="critical", metric="f1", below=0.8, min_labeled=50)
    low = MetricRow(metric="f1", value=0.71, n_labeled=400, label_coverage=0.4)
    found = evaluate([rule], evidence(metrics=[low]))
    assert [s.summary for s in found] == ["f1 0.71 below 0.8"]
    assert found[0].labels["severity"] == "critical"
    assert found[0].evidence["label_coverage"] == 0.4
    few = MetricRow(metric="f1", value=0.2, n_labeled=10, label_coverage=0.01)
    assert evaluate([rule], evidence(metrics=[few])) == []
    assert evaluate([rule], evidence(metrics=[MetricRow(metric="f1", value=None)])) == []
    assert evaluate([rule], evidence(metrics=[MetricRow(metric="f1", value=0.9)])) == []
    rmse = Rule("rmse-high", "metric", metric="rmse", above=3.0)
    assert evaluate([rmse], evidence(metrics=[MetricRow(metric="rmse", value=3.5)]))
    with pytest.raises(ValueError, match="needs metric and below or above"):
        Rule("bad", "metric", metric="f1")
    with pytest.raises(ValueError, match="for_windows"):
        Rule("bad", "volume", for_windows=0)


def test_a_metric_alert_quotes_the_metrics_baseline_when_it_has_a_history() -> None:
    rule = Rule("auc-low", "metric", metric="auc", below=0.7)
    low = MetricRow(metric="auc", value=0.61, n_labeled=400, label_coverage=0.4)
    history = AnomalyRow(
        series="metric:auc", value=0.61, lower=0.78, upper=0.88, mean=0.83, anomaly=True, reason=""
    )
    found = evaluate([rule], evidence(metrics=[low], anomalies=[history]))
    assert [s.summary for s in found] == ["auc 0.61 below 0.7, baseline 0.83"]
    assert found[0].evidence["baseline"] == 0.83
    alone = evaluate([rule], evidence(metrics=[low]))
    assert alone[0].summary == "auc 0.61 below 0.7" and alone[0].evidence["baseline"] is None


def test_a_volume_spike_fires_the_anomaly_rule_like_a_drop() -> None:
    spike = AnomalyRow(
        series="volume", value=950.0, lower=100.0, upper=200.0, mean=150.0, anomaly=True, reason=""
    )
    found = evaluate([Rule("a", "anomaly", series=("volume",))], evidence(anomalies=[spike]))
    assert [s.summary for s in found] == ["volume 950 outside its 3-sigma limits [100, 200]"]
    assert found[0].labels["subject"] == "volume"


def test_anomaly_and_data_quality_rules() -> None:
    anomalies = [
        AnomalyRow(series="volume", value=90.0, lower=100.0, upper=200.0, anomaly=True, reason=""),
        AnomalyRow(series="f1", value=0.8, anomaly=False, reason=""),
        AnomalyRow(series="prediction_mean", value=None, anomaly=None, reason="too short"),
    ]
    found = evaluate([Rule("a", "anomaly")], evidence(anomalies=anomalies))
    assert [s.summary for s in found] == ["volume 90 outside its 3-sigma limits [100, 200]"]
    assert evaluate([Rule("a", "anomaly", series=("f1",))], evidence(anomalies=anomalies)) == []
    decay = AnomalyRow(
        series="metric:accuracy",
        value=0.81,
        anomaly=True,
        reason="page-hinkley: level fell (7.2 sigma)",
    )
    found = evaluate([Rule("a", "anomaly")], evidence(anomalies=[decay]))
    assert [s.summary for s in found] == [
        "metric:accuracy 0.81: page-hinkley: level fell (7.2 sigma)"
    ], "a change detector has no limits to quote"

    quality = [
        DataQualityRow(
            feature="income",
            n_rows=100,
            n_valid=80,
            missing_rate=0.2,
            invalid_rate=0.0,
            unseen_rate=None,
            out_of_range_rate=0.15,
        ),
        DataQualityRow(feature="age", n_rows=100, n_valid=99, missing_rate=0.01, invalid_rate=0.0),
    ]
    rule = Rule("dq", "data_quality", missing_above=0.05, out_of_range_above=0.1)
    found = evaluate([rule], evidence(data_quality=quality))
    assert subjects(found) == ["income:missing_rate", "income:out_of_range_rate"]
    assert found[0].summary == "income: 20.0% missing (limit 5.0%)"


def signal_for(subject: str, rule: str = "drift") -> Signal:
    return Signal(
        rule=rule,
        severity="warning",
        labels={"model": "churn", "rule": rule, "subject": subject},
        fingerprint=fingerprint("churn", rule, subject),
        summary=subject,
        evidence={},
    )


def test_a_single_noisy_window_never_fires_with_for_windows_two() -> None:
    book = AlertBook({"drift": Rule("drift", "feature_drift", for_windows=2)})
    income = signal_for("income")
    assert book.advance(0, [income]) == []  # pending
    assert book.advance(60, []) == []  # it stopped: never fired, nothing to resolve
    assert book.alerts == {}
    assert book.advance(120, [income]) == []
    fired = book.advance(180, [income])
    assert [(c.state, c.alert.since) for c in fired] == [("firing", 180)]
    assert book.advance(240, [income]) == [], "firing already: no second notification"
    resolved = book.advance(300, [])
    assert [c.state for c in resolved] == ["resolved"]
    assert book.alerts == {}


def test_keep_firing_windows_bridges_short_gaps() -> None:
    book = AlertBook({"drift": Rule("drift", "feature_drift", keep_firing_windows=1)})
    income = signal_for("income")
    assert [c.state for c in book.advance(0, [income])] == ["firing"]
    assert book.advance(60, []) == []  # one quiet window kept firing
    assert book.advance(120, [income]) == []  # back: still the same firing alert
    assert book.advance(180, []) == []
    assert [c.state for c in book.advance(240, [])] == ["resolved"]


def test_a_revised_window_raises_a_new_alert_without_counting_a_window() -> None:
    rules = {
        "f1-low": Rule("f1-low", "metric", metric="f1", below=0.8),
        "drift": Rule("drift", "feature_drift", for_windows=2),
    }
    book = AlertBook(rules)
    income = signal_for("income")
    book.advance(0, [income])
    book.advance(60, [])
    # Labels for window 0 arrive later: its revision finds f1 low.
    revised = book.advance(0, [signal_for("f1", rule="f1-low"), income])
    assert [(c.state, c.alert.rule) for c in revised] == [("firing", "f1-low")]
    assert book.last_window == 60
    assert book.advance(0, [signal_for("f1", rule="f1-low")]) == [], "once"


@given(
    st.lists(st.booleans(), max_size=40),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=3),
)
def test_states_follow_the_windows_like_a_counter_would(
    holds: list[bool], for_windows: int, keep: int
) -> None:
    """Against a direct reading of the rule: fire after ``for_windows`` windows in a row,
    resolve after more than ``keep`` quiet ones; notifications alternate, firing first."""
    book = AlertBook(
        {"drift": Rule("drift", "feature_drift", for_windows=for_windows, keep_firing_windows=keep)}
    )
    income = signal_for("income")
    expected: list[tuple[int, str]] = []
    run = quiet = 0
    firing = False
    got: list[tuple[int, str]] = []
    for index, held in enumerate(holds):
        got += [(index, c.state) for c in book.advance(index * 60.0, [income] if held else [])]
        if held:
            run, quiet = run + 1, 0
            if not firing and run >= for_windows:
                firing = True
                expected.append((index, "firing"))
        else:
            run = 0
            if firing:
                quiet += 1
                if quiet > keep:
                    firing, quiet = False, 0
                    expected.append((index, "resolved"))
    assert got == expected
    states = [state for _, state in got]
    assert states == ["firing", "resolved"] * (len(states) // 2) + ["firing"] * (len(states) % 2)


def test_a_book_survives_its_json_round_trip() -> None:
    from alerting.rules import book_from_json, book_to_json

    rules = [Rule("drift", "feature_drift", for_windows=2, keep_firing_windows=1)]
    book = book_from_json(rules, None)
    income, region = signal_for("income"), signal_for("region")
    book.advance(0, [income, region])
    book.advance(60, [income])
    restored = book_from_json(rules, json.loads(json.dumps(book_to_json(book))))
    assert restored.alerts == book.alerts and restored.last_window == 60
    assert [c.state for c in restored.advance(120, [])] == book_to_states(book.advance(120, []))


def book_to_states(changes: list[Any]) -> list[str]:
    return [c.state for c in changes]
