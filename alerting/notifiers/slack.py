"""Slack through an incoming webhook, with slack-sdk's async client and its retry handlers.

slack-sdk retries a rate limit (429, waiting for its ``Retry-After``), a server error (5xx)
and a broken connection, a bounded number of times; what is still failing after that is a
:class:`~alerting.notifiers.DeliveryError` the relay may retry later. A 4xx other than 429
(``invalid_payload``, ``no_service`` for a revoked webhook) is not retryable. The webhook URL
is the secret: it never appears in an error or a log line.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerting.notifiers import DeliveryError, Notification

# Slack's limits: a header's text, a section's text, blocks per message.
HEADER_CHARS = 150
SECTION_CHARS = 3000
MAX_LINES = 20


def blocks_of(notification: Notification) -> list[dict[str, object]]:
    """Block Kit for a notification, within Slack's limits (top lines, "and K more")."""
    lines = list(notification.lines[:MAX_LINES])
    if len(notification.lines) > MAX_LINES:
        lines.append(f"… and {len(notification.lines) - MAX_LINES} more")
    body = "\n".join(f"• {line}" for line in lines)
    if len(body) > SECTION_CHARS:
        body = body[: SECTION_CHARS - 1] + "…"
    blocks: list[Block] = [HeaderBlock(text=notification.title[:HEADER_CHARS])]
    if body:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=body)))
    context = [f"*{k}*: {v}" for k, v in notification.fields.items()]
    if notification.link:
        context.append(f"<{notification.link}|the window in Driftline>")
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(context))]))
    return [block.to_dict() for block in blocks]


class SlackWebhookNotifier:
    """Posts to one incoming webhook."""

    def __init__(self, url: str, *, retries: int = 2, timeout: int = 10) -> None:
        self._url = url
        self._retries = retries
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        async with aiohttp.ClientSession() as session:
            client = AsyncWebhookClient(
                self._url,
                timeout=self._timeout,
                session=session,
                retry_handlers=[
                    AsyncConnectionErrorRetryHandler(max_retry_count=self._retries),
                    AsyncRateLimitErrorRetryHandler(max_retry_count=self._retries),
                    AsyncServerErrorRetryHandler(max_retry_count=self._retries),
                ],
            )
            try:
                response = await client.send(
                    text=f"{notification.title}\n" + "\n".join(notification.lines[:MAX_LINES]),
                    blocks=blocks_of(notification),
                )
            except (aiohttp.ClientError, TimeoutError) as error:
                # Named by type only: aiohttp's messages carry the URL.
                raise DeliveryError(
                    f"Slack webhook unreachable ({type(error).__name__})", retryable=True
                ) from None
        if response.status_code == 200:
            return
        retryable = response.status_code == 429 or response.status_code >= 500
        body = (response.body or "")[:200]
        raise DeliveryError(
            f"Slack webhook answered {response.status_code}: {body}", retryable=retryable
        )
