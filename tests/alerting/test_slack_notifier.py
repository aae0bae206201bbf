"""The Slack notifier against a local HTTP server that answers like Slack's webhook:
"ok", 429 with Retry-After, 500, and a revoked webhook's 404."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from alerting.notifiers import DeliveryError, Notification
from alerting.notifiers.slack import SlackWebhookNotifier

SECRET_PATH = "/services/T000/B000/s3cr3t-t0k3n"
NOTE = Notification(
    title="churn v3: 2 features drifted",
    lines=("income drifted (psi 0.31 > 0.2)", "region drifted (psi 0.25 > 0.2)"),
    link="http://127.0.0.1:8000/models/churn/windows/2026-11-01T00:00:00Z",
    fields={"model": "churn", "window": "2026-11-01 00:00–01:00"},
)

Answer = Callable[[int], tuple[int, dict[str, str], str]]


async def with_slack(answer: Answer, run: Callable[[str], Awaitable[Any]]) -> tuple[Any, list]:
    """Run ``run(url)`` against a local Slack webhook; returns its result and the requests."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append({"at": time.monotonic(), "body": await request.json()})
        status, headers, text = answer(len(received))
        return web.Response(status=status, headers=headers, text=text)

    app = web.Application()
    app.router.add_post(SECRET_PATH, hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        result = await run(f"http://127.0.0.1:{port}{SECRET_PATH}")
    finally:
        await runner.cleanup()
    return result, received


def send(retries: int = 2) -> Callable[[str], Awaitable[Any]]:
    async def run(url: str) -> Any:
        try:
            await SlackWebhookNotifier(url, retries=retries, timeout=5).send(NOTE)
        except DeliveryError as error:
            return error
        return None

    return run


def test_a_notification_is_posted_as_text_and_blocks() -> None:
    error, received = asyncio.run(with_slack(lambda n: (200, {}, "ok"), send()))
    assert error is None and len(received) == 1
    body = received[0]["body"]
    assert body["text"].startswith("churn v3: 2 features drifted")
    header, section, context = body["blocks"]
    assert header["text"]["text"] == NOTE.title
    assert "income drifted" in section["text"]["text"]
    assert NOTE.link in context["elements"][0]["text"]


def test_a_rate_limit_is_waited_out_as_slack_asks() -> None:
    def answer(n: int) -> tuple[int, dict[str, str], str]:
        return (429, {"Retry-After": "1"}, "rate_limited") if n == 1 else (200, {}, "ok")

    error, received = asyncio.run(with_slack(answer, send()))
    assert error is None and len(received) == 2
    assert received[1]["at"] - received[0]["at"] >= 0.9, "Retry-After was honoured"


def test_a_server_error_that_persists_is_retryable_and_bounded() -> None:
    error, received = asyncio.run(with_slack(lambda n: (500, {}, "oops"), send(retries=2)))
    assert isinstance(error, DeliveryError) and error.retryable
    assert len(received) == 3, "one attempt and two retries, no more"
    assert "500" in str(error)


def test_a_revoked_webhook_is_not_retried_and_the_url_stays_secret() -> None:
    error, received = asyncio.run(with_slack(lambda n: (404, {}, "no_service"), send()))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert len(received) == 1
    assert "no_service" in str(error)
    assert "s3cr3t" not in str(error) and "s3cr3t" not in repr(error.__cause__)


def test_an_unreachable_webhook_is_retryable_and_named_without_its_url() -> None:
    async def run(_: str) -> Any:
        url = "http://127.0.0.1:9" + SECRET_PATH  # the discard port: nothing listens
        try:
            await SlackWebhookNotifier(url, retries=0, timeout=2).send(NOTE)
        except DeliveryError as error:
            return error
        return None

    error = asyncio.run(run(""))
    assert isinstance(error, DeliveryError) and error.retryable
    assert "s3cr3t" not in str(error)


def test_two_hundred_lines_fit_slack_limits() -> None:
    many = Notification(title="x" * 400, lines=tuple(f"feature_{i} drifted" for i in range(200)))
    error, received = asyncio.run(with_slack(lambda n: (200, {}, "ok"), send_many(many)))
    assert error is None
    header, section = received[0]["body"]["blocks"]
    assert len(header["text"]["text"]) <= 150
    assert len(section["text"]["text"]) <= 3000
    assert section["text"]["text"].endswith("… and 180 more")


def send_many(note: Notification) -> Callable[[str], Awaitable[Any]]:
    async def run(url: str) -> Any:
        await SlackWebhookNotifier(url, retries=0).send(note)

    return run


@pytest.mark.parametrize("status", [400, 403])
def test_other_client_errors_are_not_retryable(status: int) -> None:
    error, received = asyncio.run(with_slack(lambda n: (status, {}, "invalid_payload"), send()))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert len(received) == 1
    assert json.dumps(received[0]["body"])  # a JSON payload was sent
