"""Waiting out a database outage: retry with capped exponential backoff, logged once.

A failure that is not the message's fault (the database is down, restarting or failing
over) must not acknowledge the input that needed it. Awaiting here keeps the batch in
flight, and the consumer's heartbeats run meanwhile, since the work runs in a thread and
the wait is an ``asyncio.sleep``. One WARNING when waiting starts and one INFO when it
ends: an outage of minutes must not write thousands of lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from storage.availability import first_line, is_unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Retry policy for work that needs the database.

    Parameters
    ----------
    first
        Seconds before the first retry; doubled after each failure up to ``cap``.
    cap
        The longest wait between two attempts.
    """

    first: float = 0.1
    cap: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.cap:
            raise ValueError(f"need 0 < first <= cap, got first={self.first}, cap={self.cap}")

    async def run(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """Await ``attempt()`` until the database answers; other errors are raised at once.

        What counts as "unreachable" is :func:`storage.availability.is_unavailable`, the
        same rule the result writer waits by.
        """
        delay = self.first
        failing_since: float | None = None
        while True:
            try:
                result = await attempt()
            except SQLAlchemyError as exc:
                if not is_unavailable(exc):
                    raise  # a bug or a schema problem: waiting would spin forever
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning(
                        "waiting for the database (%s): %s; retrying every %.1f-%.0f s. "
                        "Check that the database at DRIFTLINE_DATABASE_URL is up and reachable",
                        what,
                        first_line(exc),
                        self.first,
                        self.cap,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cap)
                continue
            if failing_since is not None:
                log.info(
                    "database reachable again after %.1f s (%s)",
                    time.monotonic() - failing_since,
                    what,
                )
            return result
