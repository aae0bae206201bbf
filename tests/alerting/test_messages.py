"""What a group notification says: title, order, the cut at top_n, links, evidence, key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from alerting.dispatch import notification_from, payload_of
from alerting.grouping import GroupState, Notice, plan
from alerting.messages import notification_of
from alerting.notifiers import Notification
from alerting.notifiers.slack import MAX_LINES, blocks_of, text_of
from alerting.routing import Routing
from schemas.alert_routing import AlertRouting
from storage.alerts import AlertRecord

WINDOW = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 4, 5, tzinfo=UTC)


def alert(
    subject: str = "income",
    *,
    model: str = "churn",
    severity: str = "warning",
    kind: str = "feature_drift",
    summary: str | None = None,
    window_start: datetime = WINDOW,
    **evidence: Any,
) -> AlertRecord:
    rule = f"{kind}_{severity}"
    return AlertRecord(
        fingerprint=f"{model}/{rule}/{subject}",
        model_id=model,
        model_version="v3",
        rule=rule,
        subject=subject,
        severity=severity,
        status="firing",
        labels={"model": model, "subject": subject, "severity": severity, "kind": kind},
        summary=summary or f"{subject} drifted",
        evidence=evidence or {"score": 0.3, "threshold": 0.2},
        window_start=window_start,
        window_end=window_start + timedelta(hours=1),
        starts_at=window_start,
        resolved_at=None,
        updated_at=window_start,
    )


def routing(**top: Any) -> Routing:
    spec = {"route": {"receiver": "team", "group_wait": 0}, "receivers": [{"name": "team"}]}
    return Routing.of(AlertRouting.model_validate({**spec, **top}))


def notice(
    firing: tuple[AlertRecord, ...] = (),
    resolved: tuple[AlertRecord, ...] = (),
    *,
    status: Literal["firing", "resolved"] = "firing",
    repeat: bool = False,
    seq: int = 1,
) -> Notice:
    group = GroupState(
        receiver="team",
        group_key='0:{"model":"churn"}',
        group_labels={"model": "churn"},
        first_seen_at=NOW - timedelta(minutes=5),
        last_sent_at=NOW,
        notified=tuple(a.fingerprint for a in firing),
        seq=seq,
    )
    return Notice(group, status, firing, resolved, repeat)


def message(value: Notice, where: Routing | None = None) -> Notification:
    where = where or routing()
    return notification_of(value, dashboard_url=where.dashboard_url, top_n=where.top_n)


# --- title ------------------------------------------------------------------------------


def test_a_firing_title_counts_the_alerts_and_says_the_worst_severity() -> None:
    warnings = message(notice((alert("income"), alert("age"))))
    assert warnings.title == "[FIRING:2] churn: warning"
    assert warnings.status == "firing" and warnings.severity == "warning"
    mixed = message(notice((alert("income"), alert("age", severity="critical"), alert("x"))))
    assert mixed.title == "[FIRING:3] churn: critical" and mixed.severity == "critical"


def test_a_repeat_says_still_firing() -> None:
    again = message(notice((alert("income"),), repeat=True, seq=2))
    assert again.title == "[FIRING:1] churn: warning (still firing)"


def test_a_resolved_title_says_resolved_with_the_count() -> None:
    gone = (alert("income"), alert("age", severity="critical"))
    resolved = message(notice(resolved=gone, status="resolved", seq=2))
    assert resolved.title == "[RESOLVED] churn: 2 alerts cleared"
    assert resolved.status == "resolved" and resolved.severity == "resolved"
    assert [row.subject for row in resolved.alerts] == ["age", "income"]
    one = message(notice(resolved=gone[:1], status="resolved", seq=2))
    assert one.title == "[RESOLVED] churn: 1 alert cleared"


def test_a_title_names_up_to_three_models() -> None:
    three = tuple(alert(model=m) for m in ("c", "a", "b"))
    assert message(notice(three)).title == "[FIRING:3] a, b, c: warning"
    four = (*three, alert(model="d"))
    assert message(notice(four)).title == "[FIRING:4] 4 models: warning"


# --- order and cut ----------------------------------------------------------------------


def test_critical_comes_before_warning_and_the_stronger_drift_first() -> None:
    mild = alert("mild", score=0.5, threshold=0.4)  # 1.25x its threshold
    strong = alert("strong", score=0.3, threshold=0.05)  # 6x: first, though its score is lower
    middle = alert("middle", score=0.5, threshold=0.2)  # 2.5x
    critical = alert("weak", severity="critical", score=0.21, threshold=0.2)
    sent = message(notice((mild, strong, critical, middle)))
    assert [row.subject for row in sent.alerts] == ["weak", "strong", "middle", "mild"]
    assert [line.split(" · ")[0] for line in sent.lines] == [
        "critical",
        "warning",
        "warning",
        "warning",
    ]
    assert sent.lines[1] == "warning · churn · strong drifted"


def test_a_dataset_drift_ranks_by_its_share_of_drifted_features() -> None:
    wide = alert("b", kind="dataset_drift", share_drifted=0.8)
    narrow = alert("a", kind="dataset_drift", share_drifted=0.4)
    sent = message(notice((narrow, wide)))
    assert [row.subject for row in sent.alerts] == ["b", "a"]


def test_two_hundred_alerts_show_top_n_lines_then_how_many_more() -> None:
    many = tuple(alert(f"f{i:03d}", score=0.2 + i / 1000, threshold=0.2) for i in range(200))
    sent = message(notice(many))
    assert routing().top_n == 10
    assert len(sent.lines) == 10 and sent.unlisted == 190
    assert sent.text_lines()[-1] == "… and 190 more"
    assert sent.lines[0].endswith("f199 drifted")  # the strongest
    assert len(sent.alerts) == 200
    assert sent.title == "[FIRING:200] churn: warning"
    five = message(notice(many), routing(top_n=5))
    assert len(five.text_lines()) == 6 and five.text_lines()[-1] == "… and 195 more"
    assert len(five.alerts) == 200


def test_a_top_n_beyond_slacks_line_limit_still_counts_every_alert_left_out() -> None:
    many = tuple(alert(f"f{i:03d}", score=0.2 + i / 1000, threshold=0.2) for i in range(200))
    sent = message(notice(many), routing(top_n=30))
    assert len(sent.text_lines()) == 31 and sent.text_lines()[-1] == "… and 170 more"
    section = blocks_of(sent)[1]["text"]
    assert isinstance(section, dict)
    bullets = str(section["text"]).split("\n")
    assert len(bullets) == MAX_LINES + 1 and bullets[-1] == "• … and 180 more"
    assert text_of(sent).split("\n")[-1] == "… and 180 more"


def test_exactly_top_n_alerts_have_no_more_line() -> None:
    ten = tuple(alert(f"f{i}") for i in range(10))
    assert not any("more" in line for line in message(notice(ten)).text_lines())


def test_a_firing_notice_counts_what_resolved_since_the_last_message() -> None:
    sent = message(notice((alert("income"),), (alert("age"), alert("tenure")), seq=3))
    assert sent.text_lines() == (
        "warning · churn · income drifted",
        "resolved since the last message: 2",
    )
    assert [row.subject for row in sent.alerts] == ["income"]


# --- evidence, fields and links ---------------------------------------------------------


def test_a_metric_alert_line_carries_the_labeled_count_and_coverage() -> None:
    auc = alert(
        "auc",
        kind="metric",
        summary="auc 0.61 < 0.7",
        value=0.61,
        bound=0.7,
        n_labeled=412,
        label_coverage=0.37,
    )
    without_coverage = alert("f1", kind="metric", summary="f1 0.4 < 0.5", n_labeled=80)
    sent = message(notice((auc, without_coverage)))
    assert sent.lines == (
        "warning · churn · auc 0.61 < 0.7 (412 labeled, coverage 37%)",
        "warning · churn · f1 0.4 < 0.5 (80 labeled)",
    )


def test_the_link_points_at_the_latest_window_in_the_dashboard() -> None:
    early = alert("income")
    late = alert("age", window_start=WINDOW + timedelta(hours=2))
    where = routing(dashboard_url="https://driftline.example.com/")
    sent = message(notice((early, late)), where)
    assert sent.link == "https://driftline.example.com/models/churn/windows/2026-11-01T05:00:00Z"
    assert {row.subject: row.link for row in sent.alerts} == {
        "income": "https://driftline.example.com/models/churn/windows/2026-11-01T03:00:00Z",
        "age": "https://driftline.example.com/models/churn/windows/2026-11-01T05:00:00Z",
    }
    assert sent.fields["window"] == "2026-11-01 05:00–06:00 UTC"
    odd = message(notice((alert(model="credit/risk v2"),)), where)
    assert odd.link == (
        "https://driftline.example.com/models/credit%2Frisk%20v2/windows/2026-11-01T03:00:00Z"
    )


def test_without_a_dashboard_url_there_are_no_links() -> None:
    sent = message(notice((alert("income"), alert("age"))))
    assert sent.link is None
    assert all(row.link is None for row in sent.alerts)


def test_fields_name_the_group_window_and_version() -> None:
    sent = message(notice((alert("income"),)))
    assert sent.fields == {
        "group": "model=churn",
        "window": "2026-11-01 03:00–04:00 UTC",
        "version": "v3",
    }
    row = sent.alerts[0]
    assert (row.severity, row.model, row.version, row.subject, row.summary) == (
        "warning",
        "churn",
        "v3",
        "income",
        "income drifted",
    )


# --- key --------------------------------------------------------------------------------


def test_two_notices_of_one_group_have_different_keys() -> None:
    """The first notice and its repeat, as :func:`plan` makes them."""
    where = Routing.of(
        AlertRouting.model_validate(
            {
                "route": {"receiver": "team", "group_wait": 0, "repeat_interval": "1h"},
                "receivers": [{"name": "team"}],
            }
        )
    )
    firing = [alert("income")]
    first = plan(firing, {}, [], {}, where, NOW)
    [state] = first.save
    again = plan(
        firing, {}, [], {(state.receiver, state.group_key): state}, where, NOW + timedelta(hours=1)
    )
    [one], [two] = first.notices, again.notices
    assert two.repeat
    keys = [message(n, where).key for n in (one, two)]
    assert keys[0] != keys[1]
    assert message(one, where).key == keys[0]  # the same notice, the same key
    assert all(k.startswith(f"team/{state.group_key}/") for k in keys)


def test_a_notification_survives_the_outbox_as_json() -> None:
    many = tuple(alert(f"f{i:03d}") for i in range(30))
    sent = message(notice(many, (alert("age"),), seq=2))
    stored = json.loads(json.dumps(payload_of(sent)))
    assert notification_from(stored) == sent
    assert notification_from(stored).text_lines()[-2:] == (
        "… and 20 more",
        "resolved since the last message: 1",
    )
