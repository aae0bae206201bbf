"""Slack, two ways, both on slack-sdk's async clients and their retry handlers.

- :class:`SlackWebhookNotifier` posts to an incoming webhook (``AsyncWebhookClient``); the
  webhook URL is the secret.
- :class:`SlackBotNotifier` posts as a bot with the Web API's ``chat.postMessage``
  (``AsyncWebClient``) to a channel; the bot token (``xoxb-…``) is the secret.

slack-sdk retries a rate limit (429, waiting for its ``Retry-After``), a server error (500,
503) and a broken connection, a bounded number of times; what is still failing after that is
a :class:`~alerting.notifiers.DeliveryError` the relay may retry later. What Slack refuses for
good is not retryable: a webhook's 4xx other than 429 (``invalid_payload``, ``no_service`` for
a revoked webhook), or a Web API ``ok: false`` such as ``channel_not_found``,
``not_in_channel`` or ``invalid_auth`` (the error says what to do about it). Slack's own
transient errors (``internal_error``, ``fatal_error``, ``service_unavailable``,
``request_timeout``) are retryable. Secrets never appear in an error or a log line: errors
name the failure, not the exception text, and slack-sdk's logging goes through a logger that
redacts tokens.
"""

from __future__ import annotations

import logging
import math
import re

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
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
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerting.notifiers import DeliveryError, Notification

# Slack's limits: a header's text, a section's text, blocks per message.
HEADER_CHARS = 150
SECTION_CHARS = 3000
MAX_LINES = 20

SLACK_API = "https://slack.com/api/"


def blocks_of(notification: Notification) -> list[dict[str, object]]:
    """Block Kit for a notification, within Slack's limits (top lines, "and K more")."""
    lines = notification.text_lines(MAX_LINES)
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


def text_of(notification: Notification) -> str:
    """The plain-text fallback (notifications, screen readers): the title and the top lines."""
    return "\n".join((notification.title, *notification.text_lines(MAX_LINES)))


def retry_handlers(retries: int) -> list[AsyncRetryHandler]:
    """slack-sdk's handlers for a broken connection, a 429 and a 500/503, ``retries`` each."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=retries),
        AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
        AsyncServerErrorRetryHandler(max_retry_count=retries),
    ]


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
                retry_handlers=retry_handlers(self._retries),
                logger=SDK_LOGGER,
            )
            try:
                response = await client.send(
                    text=text_of(notification), blocks=blocks_of(notification)
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


# Web API errors (``ok: false``) that another try cannot fix, with what to do about them.
BOT_ERROR_HINTS = {
    "channel_not_found": "check the channel ID or name; for a private channel, invite the bot",
    "not_in_channel": "invite the bot to the channel (/invite @<bot>)",
    "is_archived": "the channel is archived: unarchive it or choose another",
    "invalid_auth": "check the bot token (xoxb-…)",
    "not_authed": "no token was sent: set the bot token (xoxb-…)",
    "account_inactive": "the bot's user was deactivated: reinstall the app, use its new token",
    "token_revoked": "the token was revoked: reinstall the app, use its new token",
    "token_expired": "the token expired: use a non-rotating bot token or refresh it",
    "missing_scope": "give the app the chat:write scope and reinstall it",
    "invalid_blocks": "Slack refused the blocks (a Driftline bug: please report it)",
    "invalid_blocks_format": "Slack refused the blocks (a Driftline bug: please report it)",
    "msg_too_long": "the message is too long for Slack (a Driftline bug: please report it)",
}
# Web API errors that are Slack's own trouble: trying later may help.
BOT_TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)


class _RedactTokens(logging.Filter):
    """Replaces Slack tokens, bearer credentials and webhook paths in a record's message.

    slack-sdk already redacts the ``Authorization`` header it logs, but its webhook client
    logs the whole webhook URL at DEBUG, and the URL's path is the secret.
    """

    TOKEN = re.compile(r"\bxox[a-z]-[\w-]+|(?i:bearer)\s+[\w.-]+|/services/[\w/-]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.TOKEN.sub("(redacted)", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# The logger slack-sdk's Web API client logs on (instead of slack_sdk.web.async_base_client).
# WARNING and up only: slack-sdk logs each retry at INFO with the webhook URL whenever its
# logger's own level is DEBUG or unset.
SDK_LOGGER = logging.getLogger(f"{__name__}.sdk")
SDK_LOGGER.setLevel(logging.WARNING)
SDK_LOGGER.addFilter(_RedactTokens())


class SlackBotNotifier:
    """Posts to one channel as a bot, with ``chat.postMessage``.

    ``channel`` is a channel ID (``C0123456789``) or name (``#drift-alerts``); the bot must be
    in it. ``base_url`` points the client at another Web API (a local one in tests).
    """

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        retries: int = 2,
        timeout: float = 10,
        base_url: str | None = None,
    ) -> None:
        self._token = token
        self._channel = channel
        self._retries = retries
        self._timeout = timeout
        self._base_url = base_url or SLACK_API

    def __repr__(self) -> str:
        return f"SlackBotNotifier(channel={self._channel!r})"  # never the token

    async def send(self, notification: Notification) -> None:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = AsyncWebClient(
                token=self._token,
                base_url=self._base_url,
                timeout=math.ceil(self._timeout),
                session=session,
                logger=SDK_LOGGER,
                retry_handlers=retry_handlers(self._retries),
            )
            try:
                await client.chat_postMessage(
                    channel=self._channel,
                    text=text_of(notification),
                    blocks=blocks_of(notification),
                )
            except SlackApiError as error:
                # The error's response holds the request, token included: it is not chained.
                raise self._refused(error) from None
            except TimeoutError:  # aiohttp's timeouts too
                raise DeliveryError(
                    f"Slack Web API did not answer within {self._timeout:g} s", retryable=True
                ) from None
            except (aiohttp.ClientError, SlackClientError) as error:
                # Named by type only: an exception's text may carry a URL or a header.
                raise DeliveryError(
                    f"Slack Web API unreachable ({type(error).__name__})", retryable=True
                ) from None

    def _refused(self, error: SlackApiError) -> DeliveryError:
        """What Slack's answer means: who can fix it, and how."""
        response = error.response
        # An AsyncSlackResponse, or aiohttp's response when the body was not JSON.
        status: int = getattr(response, "status_code", 0) or getattr(response, "status", 0)
        data = getattr(response, "data", None)
        code = str(data.get("error", "")) if isinstance(data, dict) else ""
        code = code[:100] or f"HTTP {status}"
        where = f"Slack chat.postMessage to {self._channel} failed: {code}"
        if status == 429 or code in BOT_TRANSIENT_ERRORS:
            headers = getattr(response, "headers", None) or {}
            after = headers.get("Retry-After")
            wait = f" (Slack asks to retry after {str(after)[:10]} s)" if after else ""
            return DeliveryError(f"{where} (HTTP {status}){wait}", retryable=True)
        if status >= 500:
            return DeliveryError(f"{where} (HTTP {status})", retryable=True)
        hint = BOT_ERROR_HINTS.get(code)
        return DeliveryError(
            f"{where} (HTTP {status})" + (f": {hint}" if hint else ""), retryable=False
        )
