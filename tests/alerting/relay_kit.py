"""What the relay tests share: a database with a model, windows that fire alerts through the
real evaluation path, a routing file pointing at the local Slack and SMTP sinks."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from alerting import evaluation
from alerting.dispatch import AlertRelay
from alerting.relay_setup import build_alert_relay
from alerting.rules import WindowEvidence
from driftline.sinks.slack import SlackSink
from driftline.sinks.smtp import SmtpSink
from schemas.alert_rules import AlertRuleSpec
from storage import notifications as outbox
from storage.catalog import upsert_model
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from storage.results import write_window_results
from storage.rows import DriftRow, WindowRow

START = datetime(2026, 11, 1, tzinfo=UTC)
WEBHOOK_SECRET = "s3cr3t-webhook-path-XYZ"
SMTP_PASSWORD = "hunter2-smtp-pw-QQQ"
DRIFT = AlertRuleSpec(name="feature-drift", kind="feature_drift")


def database(url: str, models: Sequence[str]) -> sessionmaker[Session]:
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for model in models:
            upsert_model(session, model, {"model_id": model})
    return sessions


def window(
    sessions: sessionmaker[Session],
    model: str,
    index: int,
    drifted: Sequence[str],
    *,
    rules: Sequence[AlertRuleSpec] = (DRIFT,),
    features: Sequence[str] = ("age", "income", "region"),
) -> list[Any]:
    """Write window ``index`` of ``model`` (hourly) with ``drifted`` features, as stage 2
    does: results and alerts in one transaction. Returns the alert changes."""
    start = START + timedelta(hours=index)
    row = WindowRow(
        model_id=model, window_start=start, window_end=start + timedelta(hours=1), n_rows=500
    )
    drift = [
        DriftRow(
            feature=name,
            method="psi",
            score=0.4 if name in drifted else 0.01,
            threshold=0.2,
            drifted=name in drifted,
            status="drift" if name in drifted else "ok",
            is_primary=True,
        )
        for name in features
    ]
    with sessions.begin() as session:
        write_window_results(session, row, drift)
        evidence = WindowEvidence(model_id=model, model_version="v1", window=row, drift=drift)
        return evaluation.record_window(session, list(rules), evidence)


@dataclass
class Sinks:
    slack: SlackSink
    smtp: SmtpSink

    @property
    def environ(self) -> dict[str, str]:
        url = self.slack.url_webhook.rsplit("/", 1)[0] + "/" + WEBHOOK_SECRET
        return {"SLACK_URL": url, "SMTP_PASSWORD": SMTP_PASSWORD}


def routing_file(
    tmp_path: Path,
    sinks: Sinks,
    *,
    group_wait: str = "0s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    extra: str = "",
) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            dashboard_url: http://127.0.0.1:8000
            route:
              receiver: ml-team
              group_by: [model]
              group_wait: {group_wait}
              group_interval: {group_interval}
              repeat_interval: {repeat_interval}
            receivers:
              - name: ml-team
                slack:
                  - webhook_url_env: SLACK_URL
                email:
                  - to: [ml@example.com, oncall@example.com]
                    from: driftline@example.com
                    host: 127.0.0.1
                    port: {sinks.smtp.port}
                    security: none
                    username: driftline
                    password_env: SMTP_PASSWORD
            """
        )
        + extra
    )
    return path


def relay(path: Path, sessions: sessionmaker[Session], sinks: Sinks, **settings: Any) -> AlertRelay:
    built = build_alert_relay(path, sessions, environ=sinks.environ)
    built.max_retry_seconds = 0.5  # the tests wait for recoveries; production caps at 60 s
    for name, value in settings.items():
        setattr(built, name, value)
    return built


def rounds(relays: Sequence[AlertRelay], until: Callable[[], bool], timeout: float) -> None:
    """Run the relays' rounds concurrently (as timers would) until ``until()`` or timeout."""

    async def loop(one: AlertRelay) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until():
            await one.run_once()
            await asyncio.sleep(0.05)

    async def all_of() -> None:
        await asyncio.gather(*(loop(one) for one in relays))

    asyncio.run(all_of())
    assert until(), f"not reached within {timeout} s"


def notifications(sessions: sessionmaker[Session]) -> list[outbox.NotificationRecord]:
    with sessions() as session:
        return outbox.list_notifications(session)


def attempts(sessions: sessionmaker[Session]) -> list[outbox.AttemptRecord]:
    with sessions() as session:
        return outbox.list_attempts(session)
