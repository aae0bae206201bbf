"""Changelog-backed key-value state with an explicit partition per write.

Faust tables pick the changelog partition of a write from the *current event*. Stage 1
processes batches of events from several partitions at once (``take_events``) and timers
have no current event, so every write here names its partition: the input partition whose
state it is. Keys carry that partition too, so the partitions' states never collide in the
worker's one dictionary, and a partition's state recovers from its own changelog partition
after a rebalance or a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol


def compact(value: bytes) -> bytes:
    """A copy of a small value in a block of its own size.

    orjson returns small ``bytes`` inside a 4 KiB allocation; kept in a table by the million
    (one join summary per outstanding prediction) that is 4 KiB each instead of ~100 bytes.
    One copy of a small value costs far less than the memory it gives back.
    """
    return bytes(memoryview(value)) if len(value) < 2048 else value


class PartitionedStore(Protocol):
    """What stage 1 and stage 2 need from a table."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, partition: int, key: str, value: bytes) -> None: ...

    def delete(self, partition: int, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, bytes]]: ...

    def keep(self, key: str, value: bytes | memoryview) -> None:
        """Hold ``key``'s value, unchanged, as ``value`` (a copy kept elsewhere, on disk
        say): the table in memory only, nothing to the changelog."""
        ...

    async def flush(self) -> None:
        """Wait until every write so far is on the changelog (the broker acknowledged it)."""
        ...


def flush_order(
    unsent: dict[str, Any], sent_first: Callable[[str], bool] | None
) -> list[tuple[str, Any]]:
    """The order a flush sends its writes in: where each key was first written since the
    last flush, except that keys ``sent_first`` names go before all others.

    A flush cut short (a kill, a broker that stops answering) keeps a prefix of it. A key
    that other writes presuppose is sent first, so none of them is ever durable without it.
    """
    items = list(unsent.items())
    if sent_first is None:
        return items
    return [i for i in items if sent_first(i[0])] + [i for i in items if not sent_first(i[0])]


class FaustTableStore:
    """A Faust table written with explicit changelog partitions.

    Writes change the table at once (later reads in the batch see them) but reach the
    changelog only at :meth:`flush`, the last write of each key only, in
    :func:`flush_order`. The stages flush after what they sent is delivered, so a write on
    the changelog never stands for a message the broker does not have (the order a crash
    replay relies on).
    """

    def __init__(self, table: Any, sent_first: Callable[[str], bool] | None = None) -> None:
        self._table = table
        self._sent_first = sent_first
        self._unsent: dict[str, tuple[int, bytes | None]] = {}
        # Faust's in-memory store drops the keys of partitions this worker no longer owns
        # when a recovery completes, by the partition each key was *restored* from; keys
        # written here are not in that map, so a worker that gave a partition away kept a
        # stale copy of what it had written. Recording them makes Faust drop them too, and
        # a partition taken back is rebuilt from its changelog alone.
        self._key_partition: dict[str, int] | None = getattr(table.data, "_key_partition", None)
        # Faust's in-memory store keeps a dict behind a mapping whose every lookup is a
        # Python call, and whose miss raises and catches a KeyError: about 6 % of a worker
        # joining enveloped predictions went there. The dict itself is cleared in place at
        # a rebalance, never replaced, so holding it is safe; other stores go through
        # their mapping.
        inner = getattr(table.data, "data", None)
        self._data: Any = inner if isinstance(inner, dict) else table.data

    def get(self, key: str) -> bytes | None:
        value = self._data.get(key)
        return value if value is None else bytes(value)

    def set(self, partition: int, key: str, value: bytes) -> None:
        # What Table.__setitem__ does, minus its lookup of the current event's partition.
        value = compact(value)
        self._data[key] = value
        self._unsent[key] = (partition, value)
        if self._key_partition is not None:
            self._key_partition[key] = partition

    def delete(self, partition: int, key: str) -> None:
        if key in self._data:
            del self._data[key]
            self._unsent[key] = (partition, None)
            if self._key_partition is not None:
                self._key_partition.pop(key, None)

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self._data.items()))

    def keep(self, key: str, value: bytes | memoryview) -> None:
        if key in self._data:
            self._data[key] = value

    async def flush(self) -> None:
        # Changelog writes go through Faust's producer buffer, and Faust's flush before an
        # offset commit gives up after 0.1 s with writes still buffered: waiting for each
        # write's delivery here is what keeps an offset from being committed first.
        unsent, self._unsent = self._unsent, {}
        pending = [
            self._table.send_changelog(partition, key, value, value_serializer="raw")
            if value is None
            else self._table.send_changelog(partition, key, value)
            for key, (partition, value) in flush_order(unsent, self._sent_first)
        ]
        for future in pending:
            await future


class MemoryStore:
    """The same interface over a dict: unit tests and single-process tools."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.writes: list[tuple[int, str, bytes | None]] = []

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, partition: int, key: str, value: bytes) -> None:
        value = compact(value)
        self.data[key] = value
        self.writes.append((partition, key, value))

    def delete(self, partition: int, key: str) -> None:
        if self.data.pop(key, None) is not None:
            self.writes.append((partition, key, None))

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self.data.items()))

    def keep(self, key: str, value: bytes | memoryview) -> None:
        if key in self.data:
            self.data[key] = value  # type: ignore[assignment]

    async def flush(self) -> None:
        return None
