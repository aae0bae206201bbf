"""The local Slack of driftline.sinks.slack, spoken to with plain urllib: what it answers,
what it records, and its scripted faults (a queue of failures, latency, down)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from driftline.sinks.slack import SlackSink

TOKEN = "xoxb-local-token"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1: no proxy


@pytest.fixture
def slack() -> Iterator[SlackSink]:
    with SlackSink(token=TOKEN, channels={"#drift"}) as sink:
        yield sink


def post(
    url: str, body: dict[str, Any], token: str | None = TOKEN
) -> tuple[int, dict[str, str], str]:
    """POSTs JSON; the status, headers and text of the answer, whatever the status."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with DIRECT.open(request, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def bot(slack: SlackSink, token: str | None = TOKEN, channel: str = "#drift") -> Any:
    status, _, text = post(
        slack.base_url + "chat.postMessage", {"channel": channel, "text": "hi"}, token
    )
    return status, json.loads(text)


def test_it_answers_a_webhook_and_a_bot_like_slack_and_records_both(slack: SlackSink) -> None:
    assert slack.url_webhook.startswith(f"http://127.0.0.1:{slack.port}/services/")
    assert slack.base_url == f"http://127.0.0.1:{slack.port}/api/"
    status, _, text = post(slack.url_webhook, {"text": "hello"})
    assert (status, text) == (200, "ok")
    first, second = bot(slack), bot(slack)
    assert first[0] == 200 and first[1]["ok"] and first[1]["channel"] == "#drift"
    assert first[1]["ts"] != second[1]["ts"]
    webhook, *bots = slack.received
    assert webhook.kind == "webhook" and webhook.body == {"text": "hello"}
    assert webhook.path == slack.url_webhook.removeprefix(slack.url)
    assert [r.kind for r in bots] == ["bot", "bot"] and bots[0].body["text"] == "hi"
    assert webhook.received_at <= bots[0].received_at <= bots[1].received_at
    assert slack.delivered == slack.received


def test_slack_refusals_of_a_bot(slack: SlackSink) -> None:
    assert bot(slack, token="xoxb-other") == (200, {"ok": False, "error": "invalid_auth"})
    assert bot(slack, token=None) == (200, {"ok": False, "error": "not_authed"})
    assert bot(slack, channel="#nope") == (200, {"ok": False, "error": "channel_not_found"})
    assert [r.error for r in slack.received] == ["invalid_auth", "not_authed", "channel_not_found"]
    assert all(r.status == 200 for r in slack.received) and slack.delivered == []


def test_queued_failures_are_answered_in_order_then_success(slack: SlackSink) -> None:
    slack.fail(429, 2, retry_after=0.2)  # sent as whole seconds, as Slack does
    slack.fail(503, 1)
    slack.fail(200, 1, error="not_in_channel")
    first = post(slack.url_webhook, {"text": "x"})
    assert (first[0], first[1]["Retry-After"], first[2]) == (429, "1", "rate_limited")
    status, headers, text = post(slack.base_url + "chat.postMessage", {"channel": "#drift"})
    assert (status, headers["Retry-After"], json.loads(text)["error"]) == (429, "1", "ratelimited")
    assert bot(slack) == (503, {"ok": False, "error": "service_unavailable"})
    assert bot(slack) == (200, {"ok": False, "error": "not_in_channel"})
    assert bot(slack)[1]["ok"]
    assert [r.status for r in slack.received] == [429, 429, 503, 200, 200]
    assert len(slack.delivered) == 1


def test_latency_delays_every_answer(slack: SlackSink) -> None:
    # A delay long enough that an answer without it cannot take as long on a loaded machine.
    slack.set_latency(1.0)
    started = time.monotonic()
    assert post(slack.url_webhook, {"text": "x"})[0] == 200
    assert time.monotonic() - started >= 1.0
    slack.set_latency(0)
    started = time.monotonic()
    assert bot(slack)[1]["ok"]
    assert time.monotonic() - started < 1.0


def test_down_answers_500_to_everything_until_cleared(slack: SlackSink) -> None:
    slack.set_down(True)
    assert post(slack.url_webhook, {"text": "x"})[:3:2] == (500, "internal_error")
    assert bot(slack) == (500, {"ok": False, "error": "internal_error"})
    slack.set_down(False)
    assert bot(slack)[1]["ok"]
    assert [r.status for r in slack.received] == [500, 500, 200]


def test_faults_can_be_scripted_from_another_thread_while_it_serves(slack: SlackSink) -> None:
    scripted = threading.Thread(target=slack.fail, args=(500, 1))
    scripted.start()
    scripted.join(timeout=5)
    assert bot(slack)[0] == 500 and bot(slack)[0] == 200


def test_stopping_frees_the_port_and_keeps_the_record() -> None:
    sink = SlackSink().start()
    assert post(sink.url_webhook, {"text": "x"}, token=None)[0] == 200
    assert bot(sink, token="xoxb-anything")[1]["ok"], "any token without an expected one"
    sink.stop()
    with pytest.raises(urllib.error.URLError):
        DIRECT.open(sink.url_webhook, data=b"{}", timeout=2)
    assert len(sink.received) == 2
    sink.stop()  # twice is harmless
