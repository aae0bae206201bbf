"""The alert relay against a real database, a local Slack-speaking server and a real SMTP
server: grouping, repeat and resolve, outages, two relays, a dead relay, silences, secrets.

Windows are written the way stage 2 writes them (results and alerts in one transaction);
the broker plays no part here (tests/integration/test_alert_delivery.py adds it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.sinks.slack import SlackSink
from driftline.sinks.smtp import SmtpSink
from schemas.alert_rules import AlertRuleSpec
from storage import notifications as outbox
from storage.alerts import SilenceRecord, add_silence, expire_silence
from storage.types import utcnow
from tests.alerting.relay_kit import (
    DRIFT,
    SMTP_PASSWORD,
    WEBHOOK_SECRET,
    Sinks,
    attempts,
    database,
    notifications,
    relay,
    rounds,
    routing_file,
    window,
)

# Real servers and real waits (group intervals, backoff): minutes together, so not part of
# `make test-unit`.
pytestmark = pytest.mark.integration


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    with SlackSink() as slack, SmtpSink(auth=("driftline", SMTP_PASSWORD)) as smtp:
        yield Sinks(slack, smtp)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def titles(sinks: Sinks) -> list[str]:
    return [request.body["blocks"][0]["text"]["text"] for request in sinks.slack.delivered]


def slack_rows(sessions: sessionmaker[Session]) -> list[outbox.NotificationRecord]:
    return [r for r in notifications(sessions) if r.integration == "slack[0]"]


def all_failed(sessions: sessionmaker[Session]) -> bool:
    rows = notifications(sessions)
    return len(rows) == 2 and all(row.failed_at is not None for row in rows)


def all_sent(sessions: sessionmaker[Session]) -> bool:
    rows = notifications(sessions)
    return bool(rows) and all(row.sent_at is not None for row in rows)


def test_a_drifting_model_gets_one_grouped_message_per_receiver_then_a_resolved_one(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    sessions = database(sqlite_url, ["churn", "fraud"])
    one = relay(routing_file(tmp_path, sinks), sessions, sinks)
    window(sessions, "churn", 0, ["age", "income"])
    window(sessions, "fraud", 0, ["region"])
    rounds([one], lambda: len(sinks.slack.delivered) >= 2 and len(sinks.smtp.messages) >= 2, 10)
    assert sorted(titles(sinks)) == ["[FIRING:1] fraud: warning", "[FIRING:2] churn: warning"]
    churn = next(r for r in sinks.slack.delivered if "churn" in r.body["text"])
    assert "age drifted (psi 0.4 > 0.2)" in churn.body["text"]
    assert "http://127.0.0.1:8000/models/churn/windows/2026-11-01T00:00:00Z" in str(churn.body)
    mails = sinks.smtp.messages
    assert sorted(m.subject for m in mails) == [
        "[driftline] [FIRING:1] fraud: warning",
        "[driftline] [FIRING:2] churn: warning",
    ]
    assert all(set(m.recipients) == {"ml@example.com", "oncall@example.com"} for m in mails)
    assert all(m.html and m.html.count("<tr") >= 2 for m in mails)

    # The same drift in the next window: still firing, nothing new to say within the hour.
    window(sessions, "churn", 1, ["age", "income"])
    for _ in range(5):
        time_before = len(sinks.slack.delivered)
        rounds([one], lambda: True, 1)
        assert len(sinks.slack.delivered) == time_before
    # Drift stops: one resolved notice per channel, after group_interval, and then silence.
    window(sessions, "churn", 2, [])
    rounds([one], lambda: len(sinks.slack.delivered) == 3 and len(sinks.smtp.messages) == 3, 10)
    assert titles(sinks)[-1] == "[RESOLVED] churn: 2 alerts cleared"
    rounds([one], lambda: True, 1)
    time.sleep(1.2)
    rounds([one], lambda: True, 1)
    assert len(sinks.slack.delivered) == 3 and len(sinks.smtp.messages) == 3


def test_repeats_come_only_after_repeat_interval(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    sessions = database(sqlite_url, ["churn"])
    one = relay(routing_file(tmp_path, sinks, repeat_interval="2s"), sessions, sinks)
    window(sessions, "churn", 0, ["age"])
    # Bounded, not timed: under load the relay's rounds come late, never early.
    rounds([one], lambda: len(sinks.slack.delivered) == 2, 30)
    # The interval runs from the relay's decision to send, which is when each notice enters
    # the outbox; arrival times at the sink would shrink the gap whenever the first delivery
    # runs late on a loaded machine, without the relay having repeated early.
    told, repeated = sorted(slack_rows(sessions), key=lambda row: row.seq)
    assert repeated.created_at - told.created_at >= timedelta(seconds=2)
    first, second = sinks.slack.delivered
    assert second.received_at > first.received_at
    assert titles(sinks) == [
        "[FIRING:1] churn: warning",
        "[FIRING:1] churn: warning (still firing)",
    ]


def test_one_noisy_window_with_for_windows_two_sends_nothing(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    sessions = database(sqlite_url, ["churn"])
    one = relay(routing_file(tmp_path, sinks), sessions, sinks)
    twice = [AlertRuleSpec(name="feature-drift", kind="feature_drift", for_windows=2)]
    assert window(sessions, "churn", 0, ["age"], rules=twice) == []
    assert window(sessions, "churn", 1, [], rules=twice) == []
    rounds([one], lambda: True, 1)
    time.sleep(1.1)
    rounds([one], lambda: True, 1)
    assert sinks.slack.received == [] and sinks.smtp.messages == []
    # Two windows in a row do fire.
    window(sessions, "churn", 2, ["age"], rules=twice)
    window(sessions, "churn", 3, ["age"], rules=twice)
    rounds([one], lambda: len(sinks.slack.delivered) == 1, 10)


def test_slack_down_then_rate_limited_then_back_delivers_everything_once_in_order(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    sessions = database(sqlite_url, ["churn", "fraud"])
    one = relay(routing_file(tmp_path, sinks, group_interval="0s"), sessions, sinks)
    sinks.slack.set_down(True)
    window(sessions, "churn", 0, ["age"])
    window(sessions, "fraud", 0, ["age"])
    rounds([one], lambda: len(sinks.smtp.messages) == 2, 10)  # e-mail is not held up
    window(sessions, "churn", 1, ["age", "income"])  # a second notice in the churn group
    rounds(
        [one],
        lambda: len([r for r in notifications(sessions) if r.integration == "slack[0]"]) == 3,
        10,
    )
    failed_while_down = len(sinks.slack.received)
    assert failed_while_down >= 2 and sinks.slack.delivered == []
    sinks.slack.set_down(False)
    sinks.slack.fail(429, times=2, retry_after=1)
    rounds([one], lambda: all_sent(sessions), 30)

    delivered = titles(sinks)
    assert len(delivered) == 3, "each notification once"
    churn = [t for t in delivered if "churn" in t]
    assert churn == ["[FIRING:1] churn: warning", "[FIRING:2] churn: warning"], "order kept"
    tried = attempts(sessions)
    slack_ids = {r.id for r in slack_rows(sessions)}
    failures = [a for a in tried if a.notification_id in slack_ids and not a.ok]
    assert failures and all(a.retryable and a.error for a in failures)
    assert sum(a.ok for a in tried if a.notification_id in slack_ids) == 3


def test_two_relays_at_once_send_nothing_twice(
    database_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    models = [f"model-{i}" for i in range(12)]
    sessions = database(database_url, models)
    path = routing_file(tmp_path, sinks)
    # Small batches, so both relays claim while the other is sending.
    relays = [relay(path, sessions, sinks, batch=3), relay(path, sessions, sinks, batch=3)]
    sinks.slack.set_latency(0.1)  # both relays busy at once
    for model in models:
        window(sessions, model, 0, ["age"])
    rounds(relays, lambda: all_sent(sessions), 60)
    counts = Counter(titles(sinks))
    assert len(counts) == len(models) and set(counts.values()) == {1}
    assert len(sinks.smtp.messages) == len(models)
    assert relays[0].sent > 0 and relays[1].sent > 0, "both relays delivered some"


def test_a_relay_that_dies_after_claiming_leaves_its_notifications_to_another(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    sessions = database(sqlite_url, ["churn"])
    path = routing_file(tmp_path, sinks)
    dying = relay(path, sessions, sinks, lease_seconds=1.0)
    window(sessions, "churn", 0, ["age"])
    asyncio.run(dying.plan())
    with sessions.begin() as session:  # what a relay does just before it would send
        claimed = outbox.claim_due(
            session, owner=dying.owner, now=utcnow(), lease_seconds=1.0, limit=10
        )
    assert len(claimed) == 2
    other = relay(path, sessions, sinks)
    asyncio.run(other.deliver())
    assert sinks.slack.received == [], "the lease holds"
    time.sleep(1.1)
    rounds([other], lambda: all_sent(sessions), 10)
    assert len(sinks.slack.delivered) == 1 and len(sinks.smtp.messages) == 1


def test_silences_mute_what_they_match_and_nothing_else(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    sessions = database(sqlite_url, ["churn", "fraud"])
    one = relay(routing_file(tmp_path, sinks), sessions, sinks)
    now = utcnow()
    silence = SilenceRecord(
        id="s1",
        matchers=['model="churn"', 'subject=~"a.*"'],
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        created_by="test",
        comment="known drift in age",
        created_at=now,
    )
    with sessions.begin() as session:
        add_silence(session, silence)
    window(sessions, "churn", 0, ["age", "income"])
    window(sessions, "fraud", 0, ["age"])
    rounds([one], lambda: len(sinks.slack.delivered) == 2, 10)
    churn = next(r for r in sinks.slack.delivered if "churn" in r.body["text"])
    assert "income drifted" in churn.body["text"] and "age drifted" not in churn.body["text"]
    assert sorted(titles(sinks)) == ["[FIRING:1] churn: warning", "[FIRING:1] fraud: warning"]
    with sessions.begin() as session:
        assert expire_silence(session, "s1", utcnow())
    rounds([one], lambda: len(sinks.slack.delivered) == 3, 10)
    assert titles(sinks)[-1] == "[FIRING:2] churn: warning"


def test_inhibition_mutes_what_its_rules_match_and_nothing_else(
    sqlite_url: str, sinks: Sinks, tmp_path: Path
) -> None:
    # The default inhibition rules: a critical alert mutes the warning about the same model
    # and subject; a volume alert mutes its own model's drift alerts.
    sessions = database(sqlite_url, ["churn", "fraud", "quiet"])
    one = relay(routing_file(tmp_path, sinks), sessions, sinks)
    critical = AlertRuleSpec(
        name="income-critical", kind="feature_drift", severity="critical", features=["income"]
    )
    volume = AlertRuleSpec(name="too-few", kind="volume", min_rows=1000)  # windows hold 500
    window(sessions, "churn", 0, ["age", "income"], rules=(DRIFT, critical))
    window(sessions, "fraud", 0, ["income"])
    window(sessions, "quiet", 0, ["age"], rules=(DRIFT, volume))
    rounds([one], lambda: len(sinks.slack.delivered) == 3, 10)
    by_model = {
        model: next(
            r.body["text"] for r in sinks.slack.delivered if f"· {model} ·" in r.body["text"]
        )
        for model in ("churn", "fraud", "quiet")
    }
    churn = by_model["churn"].split("\n")
    assert churn[0] == "[FIRING:2] churn: critical"
    assert sorted(churn[1:]) == [
        "critical · churn · income drifted (psi 0.4 > 0.2)",
        "warning · churn · age drifted (psi 0.4 > 0.2)",
    ], "the warning about income is muted, the one about age is not"
    assert "income drifted" in by_model["fraud"], "another model's warning is not muted"
    quiet = by_model["quiet"].split("\n")
    assert quiet[0] == "[FIRING:1] quiet: warning" and "drifted" not in by_model["quiet"]
    rounds([one], lambda: len(sinks.smtp.messages) == 3, 10)  # e-mail: the same three
    mail = " ".join(message.text for message in sinks.smtp.messages)
    assert "critical · churn · income drifted" in mail
    assert "warning · churn · income drifted" not in mail


def test_a_secret_never_appears_in_logs_or_recorded_errors(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Slack answers 404 (a revoked webhook), the SMTP server refuses the password.
    with SlackSink() as slack, SmtpSink(auth=("driftline", "another-password")) as smtp:
        sinks = Sinks(slack, smtp)
        sessions = database(sqlite_url, ["churn"])
        one = relay(routing_file(tmp_path, sinks), sessions, sinks)
        slack.fail(404, times=5, error="no_service")
        window(sessions, "churn", 0, ["age"])
        with caplog.at_level(logging.DEBUG):
            rounds(
                [one],
                lambda: all_failed(sessions),
                15,
            )
    recorded = " ".join(str(a.error) for a in attempts(sessions))
    for secret in (WEBHOOK_SECRET, SMTP_PASSWORD):
        assert secret not in caplog.text
        assert secret not in recorded
    assert "404" in recorded and ("535" in recorded or "authentication" in recorded.lower())
    assert "failed for good" in caplog.text
