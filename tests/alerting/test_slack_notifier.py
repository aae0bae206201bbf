"""The Slack webhook notifier against the local Slack of driftline.sinks.slack:
"ok", 429 with Retry-After, 500, and a revoked webhook's 404."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from alerting.notifiers import DeliveryError, Notification
from alerting.notifiers.slack import SlackWebhookNotifier
from driftline.sinks.slack import SlackSink

SECRET_PATH = "/services/T000/B000/s3cr3t-t0k3n"
NOTE = Notification(
    title="churn v3: 2 features drifted",
    lines=("income drifted (psi 0.31 > 0.2)", "region drifted (psi 0.25 > 0.2)"),
    link="http://127.0.0.1:8000/models/churn/windows/2026-11-01T00:00:00Z",
    fields={"model": "churn", "window": "2026-11-01 00:00–01:00"},
)


@pytest.fixture
def slack() -> Iterator[SlackSink]:
    with SlackSink() as sink:
        yield sink


def send(
    url: str, note: Notification = NOTE, *, retries: int = 2, timeout: int = 5
) -> DeliveryError | None:
    """One send, bounded; the DeliveryError it raised, if any."""

    async def run() -> DeliveryError | None:
        notifier = SlackWebhookNotifier(url, retries=retries, timeout=timeout)
        try:
            await asyncio.wait_for(notifier.send(note), timeout=15)
        except DeliveryError as error:
            return error
        return None

    return asyncio.run(run())


def test_a_notification_is_posted_as_text_and_blocks(slack: SlackSink) -> None:
    error, received = send(slack.url + SECRET_PATH), slack.received
    assert error is None and len(received) == 1
    body = received[0].body
    assert body["text"].startswith("churn v3: 2 features drifted")
    header, section, context = body["blocks"]
    assert header["text"]["text"] == NOTE.title
    assert "income drifted" in section["text"]["text"]
    assert NOTE.link in context["elements"][0]["text"]


@pytest.mark.integration  # waits out slack-sdk's retry backoff: seconds
def test_a_rate_limit_is_waited_out_as_slack_asks(slack: SlackSink) -> None:
    slack.fail(429, 1, retry_after=1)
    error, received = send(slack.url + SECRET_PATH), slack.received
    assert error is None and len(received) == 2
    assert received[1].received_at - received[0].received_at >= 0.9, "Retry-After was honoured"


@pytest.mark.integration  # waits out slack-sdk's retry backoff: seconds
def test_a_server_error_that_persists_is_retryable_and_bounded(slack: SlackSink) -> None:
    slack.set_down(True)
    error, received = send(slack.url + SECRET_PATH, retries=2), slack.received
    assert isinstance(error, DeliveryError) and error.retryable
    assert len(received) == 3, "one attempt and two retries, no more"
    assert "500" in str(error)


def test_a_revoked_webhook_is_not_retried_and_the_url_stays_secret(slack: SlackSink) -> None:
    slack.fail(404, 1)  # Slack's "no_service"
    error, received = send(slack.url + SECRET_PATH), slack.received
    assert isinstance(error, DeliveryError) and not error.retryable
    assert len(received) == 1
    assert "no_service" in str(error)
    assert "s3cr3t" not in str(error) and "s3cr3t" not in repr(error.__cause__)


def test_an_unreachable_webhook_is_retryable_and_named_without_its_url() -> None:
    url = "http://127.0.0.1:9" + SECRET_PATH  # the discard port: nothing listens
    error = send(url, retries=0, timeout=2)
    assert isinstance(error, DeliveryError) and error.retryable
    assert "s3cr3t" not in str(error)


def test_two_hundred_lines_fit_slack_limits(slack: SlackSink) -> None:
    many = Notification(title="x" * 400, lines=tuple(f"feature_{i} drifted" for i in range(200)))
    error = send(slack.url + SECRET_PATH, many, retries=0)
    assert error is None
    header, section = slack.received[0].body["blocks"]
    assert len(header["text"]["text"]) <= 150
    assert len(section["text"]["text"]) <= 3000
    assert section["text"]["text"].endswith("… and 180 more")


@pytest.mark.parametrize("status", [400, 403])
def test_other_client_errors_are_not_retryable(slack: SlackSink, status: int) -> None:
    slack.fail(status, 1, error="invalid_payload")
    error, received = send(slack.url + SECRET_PATH), slack.received
    assert isinstance(error, DeliveryError) and not error.retryable
    assert len(received) == 1
    assert json.dumps(received[0].body)  # a JSON payload was sent
