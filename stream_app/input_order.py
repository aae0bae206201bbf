"""Reading an input partition without holes: stage 2's guard against messages Faust drops.

Faust drops (and acks) messages it fetched while flow control was off or whose consumer
generation is stale, around a start or a rebalance, expecting the seek to the committed
offset to bring them again; when its commit has moved past them they are never processed.
:class:`InputOrder` keeps the next offset expected per partition in the stage's store
(written last in each flush, after the state it covers) and, when a message lands past it,
asks the consumer to read again from there; the partition's messages are dropped until
the missing one arrives. Stage 1 does the same with its checkpoint (``Stage1._in_order``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import orjson

from stream_app.state_store import PartitionedStore

log = logging.getLogger(__name__)

# Ask again if what was asked for has not come by then: a seek made while later messages
# were on their way can be undone by them (Faust drops offsets below the last delivered).
RETRY_SECONDS = 2.0


class InputOrder:
    """The next offset to read per partition of one input topic."""

    def __init__(
        self,
        store: PartitionedStore,
        topic: str,
        rewind: Callable[[int, int], Awaitable[int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._topic = topic
        self._rewind = rewind
        self._clock = clock
        self._next: dict[int, int | None] = {}
        self._asked: dict[int, tuple[int, float]] = {}
        self._moved: set[int] = set()
        self.rewinds = 0

    def _expected(self, partition: int) -> int | None:
        if partition not in self._next:
            stored = self._store.get(_key(partition))
            self._next[partition] = int(orjson.loads(stored)) if stored else None
        return self._next[partition]

    async def admit(self, partition: int, offset: int) -> bool:
        """Whether to process this message now (False: it is past a hole, comes again)."""
        expected = self._expected(partition)
        if expected is not None and offset > expected:
            asked = self._asked.get(partition)
            now = self._clock()
            if asked is not None and asked[0] == expected and now - asked[1] < RETRY_SECONDS:
                return False
            log.warning(
                "%s[%d]: got offset %d, expected %d: reading again from %d",
                self._topic,
                partition,
                offset,
                expected,
                expected,
            )
            self.rewinds += 1
            resumes_at = await self._rewind(partition, expected)
            if resumes_at <= expected:
                self._asked[partition] = (expected, now)
                return False
            log.warning(
                "%s[%d]: offsets %d to %d are no longer in the log (retention): they were "
                "never processed",
                self._topic,
                partition,
                expected,
                resumes_at - 1,
            )
            if offset < resumes_at:
                return False
        self._asked.pop(partition, None)
        if expected is None or offset >= expected:
            self._next[partition] = offset + 1
            self._moved.add(partition)
        return True

    def next_needed(self, partition: int) -> int | None:
        """The next offset to process (None: nothing read or restored yet)."""
        return self._expected(partition)

    async def retry(self) -> None:
        """Ask again for every hole not filled ``RETRY_SECONDS`` after it was asked (timer)."""
        now = self._clock()
        for partition, (expected, asked_at) in list(self._asked.items()):
            if now - asked_at >= RETRY_SECONDS:
                self._asked[partition] = (expected, now)
                self.rewinds += 1
                await self._rewind(partition, expected)

    def save(self) -> None:
        """Write the next offsets of the partitions that moved (last, before a flush)."""
        for partition in sorted(self._moved):
            self._store.set(partition, _key(partition), orjson.dumps(self._next[partition]))
        self._moved.clear()

    def forget(self, partitions: list[int]) -> None:
        """Revoked partitions: their next offsets move with their changelog."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._asked.pop(partition, None)
            self._moved.discard(partition)


def _key(partition: int) -> str:
    return f"{partition}|next"
