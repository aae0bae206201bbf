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

    ``lines`` holds one line per alert listed, strongest first, already cut to the route's
    ``top_n``; ``unlisted`` counts the alerts left out and ``notes`` follow the list
    ("resolved since the last message: 2"). :meth:`text_lines` puts them together for a
    channel, cut to its own limit with one true "… and K more". ``alerts`` holds every
    alert as rows, for channels that show a table. ``key`` identifies the notification
    (its outbox row) for receivers that deduplicate.
    """

    title: str
    lines: tuple[str, ...] = ()
    unlisted: int = 0
    notes: tuple[str, ...] = ()
    link: str | None = None
    severity: str = "warning"
    fields: dict[str, str] = field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    alerts: tuple[AlertLine, ...] = ()
    key: str = ""

    def text_lines(self, limit: int | None = None) -> tuple[str, ...]:
        """The alert lines (at most ``limit``), "… and K more" for the rest, then the notes.

        >>> Notification("t", lines=("a", "b", "c"), unlisted=7, notes=("n",)).text_lines(2)
        ('a', 'b', '… and 8 more', 'n')
        """
        listed = self.lines if limit is None else self.lines[:limit]
        more = self.unlisted + len(self.lines) - len(listed)
        tail = (f"… and {more} more",) if more else ()
        return (*listed, *tail, *self.notes)


class DeliveryError(errors.DeliveryError):
    """A notification was not delivered; ``retryable``: whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    async def send(self, notification: Notification) -> None: ...
