"""Notice an input partition the consumer stopped fetching, and make it fetch again.

Faust takes a partition out of the fetcher's active set when the queue of the stream it
feeds fills up (``Consumer.on_buffer_full``) and puts it back from a callback the queue
runs when it drains. A rebalance clears those queues without running the callbacks, so a
partition can stay out of the fetcher for good: the worker looks healthy, the partition's
lag grows, nothing is logged. Measured in the crash and rebalance fault tests: a labels
partition with 226 unread messages and a predictions partition with two windows unread,
never fetched again within minutes.

This watch only judges; the worker's timer acts on what it says (see ``stream_app.app``).
A partition is stuck when its log holds messages past the next offset the stage needs and
that offset has not moved for ``after_seconds``. A busy worker moves every partition it
holds along well within that (the consumer delivers round-robin across partitions), so a
false alarm costs one seek, which the stages' offset checks make harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

FETCH_STALL_SECONDS = 20.0


@dataclass
class FetchWatch:
    after_seconds: float = FETCH_STALL_SECONDS
    clock: Callable[[], float] = time.monotonic
    # Per partition: the next offset needed, and since when it has been that.
    _since: dict[Hashable, tuple[int, float]] = field(default_factory=dict)

    def stuck(self, partition: Hashable, next_needed: int | None, log_end: int | None) -> bool:
        """Whether ``partition`` has waited ``after_seconds`` with messages to read.

        Reported again only after another ``after_seconds`` without progress.
        """
        if next_needed is None or log_end is None or log_end <= next_needed:
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


def consumer_state(consumer: Any, tp: Any) -> str:
    """What Faust's consumer holds about ``tp``, for the log line of a stuck partition."""
    active = getattr(consumer, "_active_partitions", None) or set()
    return (
        f"active={tp in active} buffered={tp in getattr(consumer, '_buffered_partitions', ())} "
        f"paused={tp in getattr(consumer, '_paused_partitions', ())}"
    )


def is_paused(consumer: Any, tp: Any) -> bool:
    """Paused on purpose (a table recovery): not this watch's business."""
    return tp in getattr(consumer, "_paused_partitions", ())


def fetch_again(consumer: Any, tp: Any) -> None:
    """Put ``tp`` back among the partitions Faust's fetcher reads.

    What ``Consumer.on_buffer_drop`` does when the queue's callback runs; the attributes
    are Faust's own (faust-streaming 0.15), read defensively. The caller seeks the
    partition to the offset it needs afterwards.
    """
    buffered = getattr(consumer, "_buffered_partitions", None)
    if buffered is not None:
        buffered.discard(tp)
    active = getattr(consumer, "_active_partitions", None)
    if active is not None:
        active.add(tp)
