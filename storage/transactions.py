"""Units of work on the database, each in one transaction in a worker thread, outage-proof.

SQLAlchemy sessions are synchronous; each transaction runs in a worker thread
(``asyncio.to_thread``) so a slow commit never stalls the event loop (a Faust worker's
heartbeats, the alert relay's deliveries).

When the database is unreachable (:func:`storage.availability.is_unavailable`: down,
restarting, network, SQLite locked), :meth:`Transactions.run` waits and tries again,
forever, with exponential backoff capped at :data:`MAX_DELAY_SECONDS`. It awaits
``asyncio.sleep``, so the event loop keeps running while the caller does not get past the
unit of work it is on. One WARNING says that it waits and what to check; one INFO says when
the database is back. Other errors (a constraint violated, a missing table) are bugs and
are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import StorageUnavailableError
from storage.availability import first_line, is_unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 5.0


class Transactions:
    """Units of work, each in one transaction in a worker thread; waits out outages.

    ``who`` names the waiting component in the log (``"stage 2"``, ``"the trigger relay"``).
    ``sleep`` is injectable so tests need not wait.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        who: str,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        first_delay: float = FIRST_DELAY_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
    ) -> None:
        self._sessions = sessions
        self.who = who
        self._sleep = sleep
        self._first_delay = first_delay
        self._max_delay = max_delay
        self.waits = 0  # outages waited out, for tests and counters

    def _in_thread(self, work: Callable[[Session], T]) -> T:
        with self._sessions.begin() as session:
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Commit ``work`` in one transaction, retrying while the database is unreachable."""
        delay = self._first_delay
        began: float | None = None
        attempts = 0
        while True:
            try:
                result = await asyncio.to_thread(self._in_thread, work)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                attempts += 1
                if began is None:
                    began = time.monotonic()
                    self.waits += 1
                    log.warning(
                        "%s is waiting for the database (%s): %s; retrying every %.0f s at most, "
                        "input stays unacknowledged until it is back — check that the database "
                        "is running and reachable at %s",
                        self.who,
                        type(error).__name__,
                        first_line(error),
                        self._max_delay,
                        self._where(),
                    )
                else:
                    log.debug("%s: database still unreachable: %s", self.who, first_line(error))
                await self._sleep(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            if began is not None:
                log.info(
                    "%s: the database is reachable again after %.1f s (%d failed attempts)",
                    self.who,
                    time.monotonic() - began,
                    attempts,
                )
            return result

    async def run_once(self, work: Callable[[Session], T]) -> T:
        """Commit ``work`` once; for callers that must not wait.

        Raises
        ------
        StorageUnavailableError
            If the database cannot be reached (the work was not committed).
        """
        try:
            return await asyncio.to_thread(self._in_thread, work)
        except Exception as error:
            if is_unavailable(error):
                raise StorageUnavailableError(
                    f"the database at {self._where()} is unreachable ({first_line(error)}); "
                    "check that it is running and reachable, then try again"
                ) from error
            raise

    def _where(self) -> str:
        bind = self._sessions.kw.get("bind")
        url = getattr(bind, "url", None)
        return url.render_as_string(hide_password=True) if url is not None else "its URL"
