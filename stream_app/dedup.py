"""Counting each prediction once per window: what a producer retry delivers twice.

A producer that retries a send after a timeout may deliver the same message twice; the
second copy has the same key, so it lands on the same partition, and the same event time,
so it falls in the same window. Stage 1 remembers, per (partition, model, window), the
identity of what it counted: the ``prediction_id`` of a single event, and for a batch
envelope its first and last ids, record count and first timestamp (a retried envelope
repeats all four; checking each of its hundreds of ids would cost more than decoding it).

The dedup horizon is the window's life in the partition: from its first event until the
watermark passes its end plus the allowed lateness. A copy that arrives later finds its
window closed and is counted late, never added, so a window's counts are never inflated.
Memory is bounded by the open windows: about 60-100 bytes per single event of an open
window (its id), one identity per envelope.

Identities are kept in the partition's changelog-backed store as one small chunk per
batch, so a restarted worker remembers them: rebuilt from the store on first use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import orjson

from stream_app.state_store import PartitionedStore

Group = tuple[int, str, float]  # (partition, model id, window start)


class WindowDedup:
    """Identities counted per open window, with the changelog as their memory."""

    def __init__(self, store: PartitionedStore) -> None:
        self._store = store
        self._seen: dict[Group, set[str]] = defaultdict(set)
        self._chunks: dict[Group, int] = defaultdict(int)
        self._new: dict[Group, list[str]] = defaultdict(list)
        self._loaded: set[int] = set()

    def first_time(self, group: Group, identity: str) -> bool:
        """Record ``identity`` in its window; False when it was counted there before."""
        self._load(group[0])
        seen = self._seen[group]
        if identity in seen:
            return False
        seen.add(identity)
        self._new[group].append(identity)
        return True

    def first_times(
        self,
        partition: int,
        model_id: str,
        starts: Sequence[float],
        identities: Sequence[str],
        indexes: Sequence[int],
    ) -> list[int]:
        """:meth:`first_time` for many rows at once: the indexes seen for the first time."""
        self._load(partition)
        fresh: list[int] = []
        current: float | None = None
        seen: set[str] = set()
        new: list[str] = []
        for i in indexes:
            if starts[i] != current:
                current = starts[i]
                group = (partition, model_id, current)
                seen, new = self._seen[group], self._new[group]
            identity = identities[i]
            if identity not in seen:
                seen.add(identity)
                new.append(identity)
                fresh.append(i)
        return fresh

    def save(self) -> None:
        """Write what this batch added, one chunk per window."""
        for group, identities in self._new.items():
            partition, model_id, start = group
            key = _chunk_key(partition, model_id, start, self._chunks[group])
            self._store.set(partition, key, orjson.dumps(identities))
            self._chunks[group] += 1
        self._new.clear()

    def forget(self, group: Group) -> None:
        """The window closed in its partition: its identities are no longer needed."""
        self._load(group[0])
        partition, model_id, start = group
        for number in range(self._chunks.pop(group, 0)):
            self._store.delete(partition, _chunk_key(partition, model_id, start, number))
        self._seen.pop(group, None)
        self._new.pop(group, None)

    def forget_partitions(self, partitions: list[int]) -> None:
        """Revoked partitions: their identities move with their changelog."""
        for group in [g for g in self._seen if g[0] in partitions]:
            self._seen.pop(group, None)
            self._chunks.pop(group, None)
        self._loaded.difference_update(partitions)

    def _load(self, partition: int) -> None:
        # After a restart or a rebalance the store holds the chunks; read them once.
        if partition in self._loaded:
            return
        self._loaded.add(partition)
        prefix = f"{partition}|dd|"
        for key, value in self._store.items():
            if not key.startswith(prefix):
                continue
            model_id, start_text, number = key[len(prefix) :].rsplit("|", 2)
            group = (partition, model_id, float(start_text))
            self._seen[group].update(orjson.loads(value))
            self._chunks[group] = max(self._chunks[group], int(number) + 1)


def envelope_identity(first_id: str, last_id: str, n_records: int, first_time: float) -> str:
    """What a retried envelope repeats (see the module docstring)."""
    return f"envelope|{first_id}|{last_id}|{n_records}|{first_time!r}"


def _chunk_key(partition: int, model_id: str, start: float, number: int) -> str:
    return f"{partition}|dd|{model_id}|{start!r}|{number}"
