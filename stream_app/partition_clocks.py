"""Event-time progress of stage 1's input partitions: their predictions and their labels.

Each partition has two :class:`~stream_app.windows.PartitionClock`s, restored from the
window table (``p|wm``, ``p|lwm``) the first time they are asked for and written back with
each flush, and knows how far it has read each topic, so that the timer can tell a
partition with input still unread (behind: it holds stage 2 back) from an idle one (its
watermark follows the wall clock after the idle timeout).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from stream_app.state_store import PartitionedStore
from stream_app.windows import PartitionClock


def watermark_key(partition: int) -> str:
    return f"{partition}|wm"


def label_watermark_key(partition: int) -> str:
    return f"{partition}|lwm"


class PartitionClocks:
    """The prediction and label clocks of every partition, and how far each was read."""

    def __init__(
        self,
        store: PartitionedStore,
        idle_timeout: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.idle_timeout = idle_timeout
        self._source = clock
        self._predictions: dict[int, PartitionClock] = {}
        self._labels: dict[int, PartitionClock] = {}
        # The last offset processed per partition of the predictions and labels topics.
        self.positions: dict[int, int] = {}
        self.label_positions: dict[int, int] = {}

    def predictions(self, partition: int) -> PartitionClock:
        """Event-time progress of the predictions of a partition."""
        found = self._predictions.get(partition)
        if found is None:
            found = self._predictions[partition] = self._restored(watermark_key(partition))
        return found

    def labels(self, partition: int) -> PartitionClock:
        """Event-time progress of the labels of a partition."""
        found = self._labels.get(partition)
        if found is None:
            found = self._labels[partition] = self._restored(label_watermark_key(partition))
        return found

    def _restored(self, key: str) -> PartitionClock:
        clock = (
            PartitionClock(self.idle_timeout, self._source)
            if self._source
            else PartitionClock(self.idle_timeout)
        )
        stored = self.store.get(key)
        clock.restore(orjson.loads(stored) if stored else None)
        return clock

    def label_watermark(self, partition: int) -> float | None:
        """How far labels of the partition have got; None while any may still be unread.

        A partition whose labels log is unread (or not known yet) holds everything: in a
        replay the predictions may be read months ahead of the labels. One that has read
        its whole labels log and never saw a label follows its predictions.
        """
        clock = self.labels(partition)
        if clock.backlog:
            return None
        own = clock.watermark()
        return own if own is not None else self.predictions(partition).watermark()

    def read(self, kind: str, partition: int, offset: int) -> None:
        """A message of the predictions or labels topic is being processed."""
        if kind == "prediction":
            if offset > self.positions.get(partition, -1):
                self.positions[partition] = offset
        elif kind == "label" and offset > self.label_positions.get(partition, -1):
            self.label_positions[partition] = offset

    def note_log_end(self, partition: int, log_end: int | None, done: int) -> None:
        """Whether the predictions log holds events not processed yet.

        ``done``: the last offset the partition's checkpoint covers (a partition taken over
        from another worker may have nothing left to read). An unknown log end (no fetch
        yet) counts as a backlog only while the partition has seen nothing: it must not be
        reported empty before it was read.
        """
        processed = max(self.positions.get(partition, -1), done) + 1
        clock = self.predictions(partition)
        if log_end is None:
            clock.backlog = clock.event_watermark is None
        else:
            clock.backlog = processed < log_end

    def note_label_log_end(self, partition: int, log_end: int | None, done: int) -> None:
        """Whether the labels log holds labels not processed yet (unknown: yes)."""
        processed = max(self.label_positions.get(partition, -1), done) + 1
        self.labels(partition).backlog = log_end is None or processed < log_end

    def save(self, partition: int) -> None:
        """Write the partition's watermarks to the store (with the flush they belong to)."""
        watermark = self.predictions(partition).event_watermark
        if watermark is not None:
            self.store.set(partition, watermark_key(partition), orjson.dumps(watermark))
        labels = self.labels(partition).event_watermark
        if labels is not None:
            self.store.set(partition, label_watermark_key(partition), orjson.dumps(labels))

    def forget(self, partition: int) -> None:
        """A revoked partition: its watermarks move with its table."""
        self._predictions.pop(partition, None)
        self._labels.pop(partition, None)
        self.positions.pop(partition, None)
        self.label_positions.pop(partition, None)
