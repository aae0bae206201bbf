"""When the worker may touch its tables: only once the recovery of its current assignment
is complete.

Faust's own flag (``app.rebalancing``) is cleared by whichever recovery finishes, checked
against a generation that changes only when the next assignment arrives. A recovery that
ends while the next rebalance is already revoking partitions therefore clears it for that
whole next rebalance, and the worker's timer then ran on tables being rebuilt (measured in
the rebalance fault test: final windows that lost most of their rows). The gate ties
readiness to one generation: it opens only when the recovery that ended belongs to the
assignment the worker was given last, and any revocation closes it.
"""

from __future__ import annotations

from typing import Any


class RebalanceGate:
    """Open when the tables hold the whole state of the current assignment."""

    def __init__(self) -> None:
        self._assigned: int | None = None
        self._recovered: int | None = None

    @property
    def ready(self) -> bool:
        return self._assigned is not None and self._recovered == self._assigned

    def revoking(self) -> None:
        """A rebalance started: nothing is owned for sure until the next one is recovered."""
        self._assigned = None
        self._recovered = None

    def assigned(self, generation: int) -> None:
        """Partitions of ``generation`` were assigned (their recovery starts now)."""
        if self._recovered != generation:
            self._recovered = None
        self._assigned = generation

    def recovered(self, generation: int) -> None:
        """Faust finished a recovery while its consumer was at ``generation``.

        A recovery of an earlier assignment, ending after a revocation, names the old
        generation (or comes before any assignment) and leaves the gate closed.
        """
        self._recovered = generation


class GateHooks:
    """Drives a :class:`RebalanceGate` from Faust's rebalance and recovery callbacks."""

    def __init__(self, gate: RebalanceGate) -> None:
        self._gate = gate
        self._completing: int | None = None

    def revoking(self) -> None:
        self._completing = None
        self._gate.revoking()

    def completing(self, generation: int) -> None:
        """Faust's recovery of ``generation`` is completing (it may still give up)."""
        self._completing = generation

    def rebalance_ended(self) -> None:
        """Faust declared the rebalance over: true for the recovery that is completing."""
        if self._completing is not None:
            self._gate.recovered(self._completing)
            self._completing = None


def install(app: Any, gate: RebalanceGate) -> None:
    """Hook ``gate`` into a Faust app's rebalance start and end and its recovery.

    Faust calls these on the instance (the rebalance start from its consumer thread), so
    wrapping the bound methods is enough; the recovery passes the generation it recovered
    to ``on_recovery_completed``, which calls ``on_rebalance_end`` only when that is still
    the consumer's generation.
    """
    hooks = GateHooks(gate)
    start, end = app.on_rebalance_start, app.on_rebalance_end
    recovery = app.tables.recovery
    completed = recovery.on_recovery_completed

    def on_rebalance_start() -> None:
        hooks.revoking()
        start()

    def on_rebalance_end() -> None:
        end()
        hooks.rebalance_ended()

    async def on_recovery_completed(generation_id: int = 0) -> None:
        hooks.completing(generation_id)
        await completed(generation_id)

    setattr(app, "on_rebalance_start", on_rebalance_start)  # noqa: B010 - a bound method
    setattr(app, "on_rebalance_end", on_rebalance_end)  # noqa: B010
    setattr(recovery, "on_recovery_completed", on_recovery_completed)  # noqa: B010
