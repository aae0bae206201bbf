"""Reading an input partition without holes: the guard against messages Faust drops.

Faust drops (and acks) messages it fetched while flow control was off or whose consumer
generation is stale, around a start or a rebalance, expecting the seek to the committed
offset to bring them again; when its commit has moved past them they are never processed.
:class:`HoleGuard`, used by both stages, asks the consumer to read again from the next
offset expected when a message lands past it, and again every ``RETRY_SECONDS`` until it
comes; the partition's messages are dropped meanwhile. :class:`InputOrder` keeps stage 2's
next offsets in its store (written last in each flush, after the state it covers); stage 1
takes them from its checkpoint (``Stage1._in_order``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable

import orjson

from stream_app.state_store import PartitionedStore

log = logging.getLogger(__name__)

# Ask again if what was asked for has not come by then: a seek made while later messages
# were on their way can be undone by them (Faust drops offsets below the last delivered).
RETRY_SECONDS = 2.0


class HoleGuard:
    """Asks the consumer to read a hole again, and again until it is filled.

    Shared by both stages. A key is whatever names an input partition to ``rewind``
    (stage 1: topic kind and partition; stage 2: the partition). ``rewind`` returns the
    offset reading resumes at: higher than asked when the log no longer holds it
    (retention), and reading then goes on from there, with a warning.
    """

    def __init__(
        self,
        rewind: Callable[[Hashable, int], Awaitable[int]],
        on_rewind: Callable[[], None] = lambda: None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._rewind = rewind
        self._on_rewind = on_rewind
        self._clock = clock or (lambda: time.monotonic())
        self._asked: dict[Hashable, tuple[int, float]] = {}

    async def passes(self, key: Hashable, offset: int, expected: int, name: str) -> bool:
        """Whether a message at ``offset`` may be processed now, ``expected`` being next.

        False while it is past a hole: the hole is asked for (once per ``RETRY_SECONDS``:
        what was fetched before the seek took effect comes again after it).
        """
        if offset <= expected:
            self.in_order(key)
            return True
        asked = self._asked.get(key)
        now = self._clock()
        if asked is not None and asked[0] == expected and now - asked[1] < RETRY_SECONDS:
            return False
        log.warning(
            "%s: got offset %d, expected %d: reading again from %d",
            name,
            offset,
            expected,
            expected,
        )
        self._on_rewind()
        resumes_at = await self._rewind(key, expected)
        if resumes_at <= expected:
            self._asked[key] = (expected, now)
            return False
        log.warning(
            "%s: offsets %d to %d are no longer in the log (retention): they were never processed",
            name,
            expected,
            resumes_at - 1,
        )
        self._asked.pop(key, None)
        return offset >= resumes_at

    def in_order(self, key: Hashable) -> None:
        """A message of ``key`` came at the expected offset (``passes`` without the await)."""
        if self._asked:
            self._asked.pop(key, None)

    async def retry(self) -> None:
        """Ask again for every hole not filled ``RETRY_SECONDS`` after it was asked (timer)."""
        now = self._clock()
        for key, (expected, asked_at) in list(self._asked.items()):
            if now - asked_at >= RETRY_SECONDS:
                self._asked[key] = (expected, now)
                self._on_rewind()
                await self._rewind(key, expected)

    def forget(self, key: Hashable) -> None:
        self._asked.pop(key, None)


class InputOrder:
    """Stage 2's next offset to read per partition of one input topic, kept in its store."""

    def __init__(
        self,
        store: PartitionedStore,
        topic: str,
        rewind: Callable[[int, int], Awaitable[int]],
        clock: Callable[[], float] = time.monotonic,
        on_rewind: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._topic = topic
        self._next: dict[int, int] = {}
        self._moved: set[int] = set()
        self.rewinds = 0

        def counted() -> None:
            self.rewinds += 1
            on_rewind()

        async def rewind_partition(key: Hashable, offset: int) -> int:
            assert isinstance(key, int)
            return await rewind(key, offset)

        self._holes = HoleGuard(rewind_partition, counted, clock)

    def _expected(self, partition: int) -> int:
        # Nothing stored: nothing from the partition was ever made durable, so its first
        # offset is next, wherever Faust's committed offset is (see Stage1._expected).
        if partition not in self._next:
            stored = self._store.get(_key(partition))
            self._next[partition] = int(orjson.loads(stored)) if stored else 0
        return self._next[partition]

    async def admit(self, partition: int, offset: int) -> bool:
        """Whether to process this message now (False: it is past a hole, comes again).

        A message below the next offset is admitted: stage 2 recognises what it applied
        already (``applied_offset``).
        """
        expected = self._expected(partition)
        name = f"{self._topic}[{partition}]"
        if not await self._holes.passes(partition, offset, expected, name):
            return False
        if offset >= expected:
            self._next[partition] = offset + 1
            self._moved.add(partition)
        return True

    def next_needed(self, partition: int) -> int:
        """The next offset to process (0: nothing was ever processed)."""
        return self._expected(partition)

    async def retry(self) -> None:
        """Ask again for every hole not filled ``RETRY_SECONDS`` after it was asked (timer)."""
        await self._holes.retry()

    def save(self) -> None:
        """Write the next offsets of the partitions that moved (last, before a flush)."""
        for partition in sorted(self._moved):
            self._store.set(partition, _key(partition), orjson.dumps(self._next[partition]))
        self._moved.clear()

    def forget(self, partitions: list[int]) -> None:
        """Revoked partitions: their next offsets move with their changelog."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._holes.forget(partition)
            self._moved.discard(partition)


def _key(partition: int) -> str:
    return f"{partition}|next"
