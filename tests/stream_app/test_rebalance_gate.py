"""The rebalance gate opens only when the recovery of the current assignment is complete."""

from __future__ import annotations

from stream_app.rebalance_gate import GateHooks, RebalanceGate


def hooked() -> tuple[RebalanceGate, GateHooks]:
    gate = RebalanceGate()
    return gate, GateHooks(gate)


def recover(hooks: GateHooks, generation: int) -> None:
    hooks.completing(generation)
    hooks.rebalance_ended()


def test_closed_until_the_first_assignment_is_recovered() -> None:
    gate, hooks = hooked()
    assert not gate.ready
    hooks.revoking()
    gate.assigned(1)
    assert not gate.ready
    recover(hooks, 1)
    assert gate.ready


def test_a_revocation_closes_it() -> None:
    gate, hooks = hooked()
    gate.assigned(1)
    recover(hooks, 1)
    hooks.revoking()
    assert not gate.ready


def test_an_old_recovery_ending_during_the_next_rebalance_keeps_it_closed() -> None:
    """The race Faust's own flag loses: generation 2's recovery ends after generation 3's
    revocation began and before its assignment; generation 3 is being rebuilt."""
    gate, hooks = hooked()
    gate.assigned(2)
    hooks.completing(2)
    hooks.revoking()  # generation 3 starts while 2's recovery completes
    hooks.rebalance_ended()  # Faust clears its flag here
    assert not gate.ready
    gate.assigned(3)
    assert not gate.ready
    recover(hooks, 3)
    assert gate.ready


def test_an_old_recovery_ending_after_the_next_assignment_keeps_it_closed() -> None:
    gate, hooks = hooked()
    gate.assigned(2)
    hooks.completing(2)  # its end comes after generation 3's partitions arrived
    hooks.revoking()
    gate.assigned(3)
    hooks.rebalance_ended()
    assert not gate.ready


def test_a_recovery_that_gives_up_opens_nothing() -> None:
    """Faust returns from a recovery of an outdated generation without ending the rebalance."""
    gate, hooks = hooked()
    gate.assigned(4)
    hooks.completing(3)
    hooks.completing(4)
    hooks.rebalance_ended()
    assert gate.ready
    hooks.revoking()
    gate.assigned(5)
    hooks.completing(5)  # gives up: no rebalance_ended
    assert not gate.ready


def test_recovery_before_the_assignment_signal_counts() -> None:
    """The recovery may finish before the worker's own assignment handler has run."""
    gate, hooks = hooked()
    hooks.revoking()
    recover(hooks, 7)
    assert not gate.ready
    gate.assigned(7)
    assert gate.ready
