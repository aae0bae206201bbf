"""Notifiers: one per channel, one interface.

A notifier delivers one :class:`Notification` or raises :class:`DeliveryError`, saying
whether a retry may help (as Alertmanager's ``Notify`` returns "retry or not"): a rate
limit, a server error or a broken connection may pass later; a refused payload or a
revoked URL will not. Secrets (webhook URLs, tokens, passwords) never appear in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Notification:
    """What one message says: a title and lines, plus a link to the evidence."""

    title: str
    lines: tuple[str, ...] = ()
    link: str | None = None
    severity: str = "warning"
    fields: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """A notification was not delivered; ``retryable``: whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    async def send(self, notification: Notification) -> None: ...
