"""Faust's in-memory table store, rebuilt from its changelog at every rebalance.

Faust recovers an in-memory table incrementally: a partition the worker keeps is read
again from the offset its last recovery ended at, on top of what the worker holds, and a
partition that comes back resumes from whatever offset Faust still remembers for it. Both
are right only if Faust's offsets and the worker's memory agree, and around quick
successive rebalances they do not (a changelog event read for a partition given away puts
a stale offset back; a recovery that completes without a partition drops its keys). The
outcome is a table that silently lacks keys. This store takes no part in that bookkeeping:
at every rebalance it forgets everything and says nothing was persisted, so every active
partition is read from the start of its changelog, as after a restart. The cost is reading
the (compacted) changelogs of the worker's partitions once per rebalance.

It also expands changelog segments (:mod:`stream_app.changelog_segments`) once a recovery
is complete, so the table holds one value per key whichever way it was written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP, EventT

from stream_app import changelog_segments
from stream_app.changelog_segments import SegmentLedger
from stream_app.segment_spill import SegmentSpill, ValuesToDisk
from stream_app.summary_columns import is_summary_segment

SCHEME = "driftline-memory"


class RebuildingMemoryStore(MemoryStore[str, bytes]):
    """An in-memory store whose every recovery starts from an empty table."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.segments = SegmentLedger()
        self._segment_keys: set[str] = set()
        # Set for the join table (stream_app.app.join_spill): its large restored values
        # go to disk as they are read.
        self.spill: SegmentSpill | None = None

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        fresh: list[str] = []

        def noting_segments(raw: Any) -> Any:
            key = to_key(raw)
            if isinstance(key, str) and key.startswith(changelog_segments.PREFIX):
                self._segment_keys.add(key)
                fresh.append(key)
            return key

        super().apply_changelog_batch(batch, noting_segments, to_value)
        if self.spill is not None and fresh:
            # The records wait for the recovery to complete: on disk, not in memory.
            to_disk = ValuesToDisk(self.data, self.spill)
            for key in fresh:
                to_disk.note(key, self.data.get(key))
            to_disk.flush()

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)  # drops others' keys
        changelog_segments.expand(
            self.data,
            self._key_partition,
            self._segment_keys,
            self.segments,
            # Summary segments only: other values' readers expect bytes.
            ValuesToDisk(self.data, self.spill, is_summary_segment) if self.spill else None,
        )

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        # Runs before Faust's recovery plans what to read (TableManager.on_rebalance calls
        # the tables first), and the worker touches no table until that recovery is done.
        self.data.clear()
        self._key_partition.clear()
        self.segments.clear()
        self._segment_keys.clear()

    def persisted_offset(self, tp: TP) -> int | None:
        # -1 replaces any offset Faust remembers for the partition (Recovery._add), so
        # reading starts at the changelog's beginning.
        return -1


def register() -> None:
    """Make ``driftline-memory://`` a Faust store URL (idempotent)."""
    STORES.aliases[SCHEME] = f"{__name__}:RebuildingMemoryStore"


def store_url(configured: str) -> str:
    """The store a worker uses for ``configured``: the rebuilding one instead of memory."""
    return f"{SCHEME}://" if configured.startswith("memory") else configured
