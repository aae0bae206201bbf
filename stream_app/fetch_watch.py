"""Notice an input partition the consumer stopped fetching, and make it fetch again.

Faust takes a partition out of the fetcher's active set when the queue of the stream it
feeds fills up (``Consumer.on_buffer_full``) and puts it back from a callback the queue
runs when it drains. A rebalance clears those queues without running the callbacks, so a
partition can stay out of the fetcher for good: the worker looks healthy, the partition's
lag grows, nothing is logged. Measured in the crash and rebalance fault tests: a labels
partition with 226 unread messages and a predictions partition with two windows unread,
never fetched again within minutes.

This watch only judges; the worker's timer acts on what it says (see ``stream_app.app``).
A partition is stuck when the next offset the stage needs has not moved for
``after_seconds`` and the broker's log holds messages from there on. A busy worker moves
every partition it holds along well within that (the consumer delivers round-robin across
partitions), so a false alarm costs one seek, which the stages' offset checks make
harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

FETCH_STALL_SECONDS = 20.0
FETCH_CHECK_SECONDS = 5.0  # how often the worker's timer asks


@dataclass
class FetchWatch:
    after_seconds: float = FETCH_STALL_SECONDS
    clock: Callable[[], float] = time.monotonic
    # Per partition: the next offset needed, and since when it has been that.
    _since: dict[Hashable, tuple[int, float]] = field(default_factory=dict)

    def waiting(self, partition: Hashable, next_needed: int | None) -> bool:
        """Whether ``next_needed`` has not moved for ``after_seconds``.

        True again only after another ``after_seconds`` without progress. Whether the log
        holds anything past it is the caller's question to the broker: a partition Faust
        never fetched has no log end in the consumer's cache.
        """
        if next_needed is None:
            self._since.pop(partition, None)
            return False
        now = self.clock()
        seen = self._since.get(partition)
        if seen is None or seen[0] != next_needed:
            self._since[partition] = (next_needed, now)
            return False
        if now - seen[1] < self.after_seconds:
            return False
        self._since[partition] = (next_needed, now)
        return True

    def forget(self, partition: Hashable) -> None:
        self._since.pop(partition, None)
