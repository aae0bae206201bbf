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
"""

from __future__ import annotations

from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

SCHEME = "driftline-memory"


class RebuildingMemoryStore(MemoryStore[str, bytes]):
    """An in-memory store whose every recovery starts from an empty table."""

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
