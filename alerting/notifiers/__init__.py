"""Notifiers: one per channel, one interface.

A notifier delivers one :class:`Notification` or raises :class:`DeliveryError`, saying
whether a retry may help (as Alertmanager's ``Notify`` returns "retry or not"): a rate
limit, a server error or a broken connection may pass later; a refused payload or a
revoked URL will not. Secrets (webhook URLs, tokens, passwords) never appear in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from driftline import errors


@dataclass(frozen=True)
class AlertLine:
    """One alert of a notification, for a table (e-mail) or a bullet (Slack)."""

    severity: str
    model: str
    version: str
    window: str  # the window it was last seen in, readable ("2026-11-01 00:00–01:00 UTC")
    subject: str  # the feature, metric or series
    summary: str  # "income drifted (psi 0.31 > 0.2)"
    link: str | None = None  # that window in the dashboard


@dataclass(frozen=True)
class Notification:
    """What one message says: a title and lines, plus a link to the evidence.

    ``lines`` is the text form, already cut to a readable length ("… and K more");
    ``alerts`` the same alerts as rows, for channels that show a table.
    ``key`` identifies the notification (its outbox row) for receivers that deduplicate.
    """

    title: str
    lines: tuple[str, ...] = ()
    link: str | None = None
    severity: str = "warning"
    fields: dict[str, str] = field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    alerts: tuple[AlertLine, ...] = ()
    key: str = ""


class DeliveryError(errors.DeliveryError):
    """A notification was not delivered; ``retryable``: whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    async def send(self, notification: Notification) -> None: ...
