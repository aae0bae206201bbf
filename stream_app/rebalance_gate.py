"""When the worker may touch its tables: not while Faust rebuilds them for a new assignment.

At every assignment the worker's store forgets its tables (stream_app/memory_store.py) and
Faust's recovery reads them back from the changelogs. In between, a batch or a tick would
work on incomplete state. Faust's own flag (``app.rebalancing``) does not cover that window:
it is cleared by whichever recovery finishes, checked against a generation that changes
only when the next assignment arrives, so a recovery ending while the next rebalance is
revoking clears it for that whole next rebalance (measured in the rebalance fault test:
final windows that lost most of their rows). The gate closes when the tables of a
generation start to be rebuilt and opens only when the recovery of that same generation
has read every changelog (before Faust resumes the stream partitions). A revocation
alone does not close it: the tables stay whole until the next assignment, and the
revocation handler waits for the batch or tick in flight (the stages' locks).

An assignment that lacks the changelog partitions of its input (see stream_app/app.py)
keeps the gate closed until a later generation is recovered.
"""

from __future__ import annotations

from typing import Any


class RebalanceGate:
    """Open when the tables hold the whole state of the current assignment."""

    def __init__(self) -> None:
        self._rebuilding: int | None = None  # the generation whose tables are being rebuilt
        self._recovered: int | None = None
        self._incomplete: int | None = None  # a generation assigned without all its state

    @property
    def ready(self) -> bool:
        if self._rebuilding is None:
            return False  # nothing recovered yet: the worker is starting
        return self._recovered == self._rebuilding and self._incomplete != self._rebuilding

    def rebuilding(self, generation: int) -> None:
        """The tables are cleared for ``generation`` and its recovery starts."""
        if self._recovered != generation:
            self._recovered = None
        self._rebuilding = generation

    def recovered(self, generation: int) -> None:
        """Faust completed the recovery of ``generation`` (a recovery of an earlier one,
        ending late, leaves the gate closed)."""
        self._recovered = generation

    def incomplete(self, generation: int) -> None:
        """``generation``'s assignment lacks changelog partitions: stay closed through it."""
        self._incomplete = generation


def install(app: Any, gate: RebalanceGate) -> None:
    """Hook ``gate`` into Faust's table rebalance and its recovery's completion.

    ``TableManager.on_rebalance`` (called with the generation when partitions are
    assigned, before any store forgets anything) closes it. ``Recovery.on_recovery_completed``
    is called with the generation it recovered once every active changelog was read to its
    end, before Faust resumes the stream partitions (which deliver messages while Faust
    still seeks them to their committed offsets): that opens it, for that generation only.
    Faust calls these on the instances, so wrapping the bound methods is enough.
    """
    tables = app.tables
    recovery = tables.recovery
    rebalance = tables.on_rebalance
    completed = recovery.on_recovery_completed

    async def on_rebalance(
        assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        gate.rebuilding(generation_id)
        await rebalance(assigned, revoked, newly_assigned, generation_id)

    async def on_recovery_completed(generation_id: int = 0) -> None:
        gate.recovered(generation_id)
        await completed(generation_id)

    setattr(tables, "on_rebalance", on_rebalance)  # noqa: B010 - a bound method
    setattr(recovery, "on_recovery_completed", on_recovery_completed)  # noqa: B010
