"""The Slack bot notifier (chat.postMessage) against the local Slack of driftline.sinks.slack:
real HTTP on 127.0.0.1, no mocks. Delivered, 429 waited out, 500 retried, Slack's refusals
(with what to do), an unreachable or slow Slack; the token never in an error or a log line."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import traceback
from collections.abc import Iterator

import pytest

from alerting.notifiers import DeliveryError, Notification
from alerting.notifiers.slack import SDK_LOGGER, SlackBotNotifier, blocks_of
from driftline.sinks.slack import SlackSink

TOKEN = "xoxb-1111-2222-s3cr3tB0tT0k3n"
CHANNEL = "C0DRIFT001"
NOTE = Notification(
    title="churn v3: 2 features drifted",
    lines=("income drifted (psi 0.31 > 0.2)", "region drifted (psi 0.25 > 0.2)"),
    link="http://127.0.0.1:8000/models/churn/windows/2026-11-01T00:00:00Z",
    fields={"model": "churn", "window": "2026-11-01 00:00–01:00"},
)


@pytest.fixture
def slack() -> Iterator[SlackSink]:
    with SlackSink(token=TOKEN, channels={CHANNEL}) as sink:
        yield sink


def send(
    base_url: str,
    *,
    token: str = TOKEN,
    channel: str = CHANNEL,
    retries: int = 2,
    timeout: float = 3,
) -> DeliveryError | None:
    """One send, bounded; the DeliveryError it raised, if any."""
    notifier = SlackBotNotifier(token, channel, retries=retries, timeout=timeout, base_url=base_url)

    async def run() -> DeliveryError | None:
        try:
            await asyncio.wait_for(notifier.send(NOTE), timeout=15)
        except DeliveryError as error:
            return error
        return None

    return asyncio.run(run())


def test_a_notification_is_posted_to_the_channel_as_text_and_blocks(slack: SlackSink) -> None:
    assert send(slack.base_url) is None
    [request] = slack.delivered  # the sink checked the bearer token
    assert request.kind == "bot" and request.path == "/api/chat.postMessage"
    assert request.body["channel"] == CHANNEL
    assert request.body["text"].startswith(NOTE.title + "\n" + NOTE.lines[0])
    assert request.body["blocks"] == json.loads(json.dumps(blocks_of(NOTE)))


@pytest.mark.integration  # waits out slack-sdk's retry backoff: seconds
def test_a_rate_limit_is_waited_out_as_slack_asks(slack: SlackSink) -> None:
    slack.fail(429, 1, retry_after=1)
    assert send(slack.base_url) is None
    first, second = slack.received
    assert (first.status, second.status) == (429, 200) and len(slack.delivered) == 1
    assert second.received_at - first.received_at >= 0.9, "Retry-After was honoured"


def test_a_rate_limit_that_persists_is_retryable_and_says_when(slack: SlackSink) -> None:
    slack.fail(429, 5, retry_after=7)
    error = send(slack.base_url, retries=0)
    assert isinstance(error, DeliveryError) and error.retryable
    assert "ratelimited" in str(error) and "7 s" in str(error)
    assert len(slack.received) == 1


def test_a_server_error_is_retried_then_delivered(slack: SlackSink) -> None:
    slack.fail(500, 1)
    assert send(slack.base_url) is None
    assert [r.status for r in slack.received] == [500, 200] and len(slack.delivered) == 1


@pytest.mark.integration  # waits out slack-sdk's retry backoff: seconds
def test_a_server_error_that_persists_is_retryable_and_bounded(slack: SlackSink) -> None:
    slack.set_down(True)
    error = send(slack.base_url, retries=2)
    assert isinstance(error, DeliveryError) and error.retryable
    assert len(slack.received) == 3, "one attempt and two retries, no more"
    assert "500" in str(error) and "internal_error" in str(error)
    assert not slack.delivered


def test_an_unknown_channel_is_not_retried_and_says_what_to_do(slack: SlackSink) -> None:
    error = send(slack.base_url, channel="C0NOSUCH")
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "channel_not_found" in str(error) and "C0NOSUCH" in str(error)
    assert "invite the bot" in str(error)
    assert len(slack.received) == 1


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("not_in_channel", "/invite"),
        ("account_inactive", "reinstall"),
        ("token_revoked", "reinstall"),
        ("invalid_blocks", "report"),
        ("msg_too_long", "report"),
    ],
)
def test_slack_refusals_are_not_retried(slack: SlackSink, code: str, hint: str) -> None:
    slack.fail(200, 1, error=code)
    error = send(slack.base_url)
    assert isinstance(error, DeliveryError) and not error.retryable
    assert code in str(error) and hint in str(error)
    assert len(slack.received) == 1


@pytest.mark.parametrize(
    "code", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"]
)
def test_slack_trouble_is_retryable(slack: SlackSink, code: str) -> None:
    slack.fail(200, 1, error=code)
    error = send(slack.base_url)
    assert isinstance(error, DeliveryError) and error.retryable
    assert code in str(error)


def test_a_wrong_token_is_not_retried_and_no_token_is_shown_or_logged(
    slack: SlackSink, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "xoxb-9999-8888-wr0ngT0k3n"
    caplog.set_level(logging.DEBUG)
    error = send(slack.base_url, token=wrong)
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "invalid_auth" in str(error) and "check the bot token" in str(error)
    assert error.__cause__ is None
    # slack-sdk's own DEBUG/INFO lines (requests, retries with URLs) are held back.
    assert SDK_LOGGER.getEffectiveLevel() == logging.WARNING
    shown = "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error)), caplog.text]
        + [record.getMessage() for record in caplog.records]
    )
    assert "wr0ngT0k3n" not in shown and "s3cr3tB0tT0k3n" not in shown
    assert "s3cr3t" not in repr(SlackBotNotifier(TOKEN, CHANNEL))


def test_a_token_logged_through_the_sdk_logger_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    SDK_LOGGER.warning("headers: %s", {"Authorization": f"Bearer {TOKEN}"})
    SDK_LOGGER.warning(f"token={TOKEN}")
    SDK_LOGGER.warning("POST http://127.0.0.1:9/services/T0/B0/s3cr3t-path - status: 500")
    assert "s3cr3t" not in caplog.text and caplog.text.count("(redacted)") == 3


@pytest.mark.integration  # waits out slack-sdk's retry backoff: seconds
def test_an_unreachable_slack_is_retryable() -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        error = send(f"http://127.0.0.1:{port}/api/", retries=1)
    assert isinstance(error, DeliveryError) and error.retryable
    assert "unreachable" in str(error) and "s3cr3t" not in str(error)


def test_a_slow_slack_times_out_and_is_retryable(slack: SlackSink) -> None:
    slack.set_latency(2)
    error = send(slack.base_url, retries=0, timeout=0.5)
    assert isinstance(error, DeliveryError) and error.retryable
    assert "did not answer within 0.5 s" in str(error)
