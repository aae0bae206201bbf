"""The rebalance gate is closed while Faust rebuilds the tables of an assignment."""

from __future__ import annotations

import asyncio
from typing import Any

from stream_app.rebalance_gate import RebalanceGate, install


def test_closed_until_the_first_assignment_is_recovered() -> None:
    gate = RebalanceGate()
    assert not gate.ready
    gate.rebuilding(1)
    assert not gate.ready
    gate.recovered(1)
    assert gate.ready


def test_a_new_assignment_closes_it_until_its_own_recovery() -> None:
    gate = RebalanceGate()
    gate.rebuilding(1)
    gate.recovered(1)
    gate.rebuilding(2)
    assert not gate.ready
    gate.recovered(1)  # a late end of the earlier recovery
    assert not gate.ready
    gate.recovered(2)
    assert gate.ready


def test_a_recovery_finishing_before_the_assignment_signal_counts() -> None:
    gate = RebalanceGate()
    gate.recovered(3)
    gate.rebuilding(3)
    assert gate.ready


def test_an_assignment_without_its_state_keeps_it_closed_until_the_next() -> None:
    gate = RebalanceGate()
    gate.rebuilding(4)
    gate.incomplete(4)
    gate.recovered(4)
    assert not gate.ready
    gate.rebuilding(5)
    gate.recovered(5)
    assert gate.ready


class FakeRecovery:
    """What install() wraps: Faust's recovery, which sets ``completed`` only when the
    generation it recovered is still the consumer's."""

    def __init__(self, consumer_generation: list[int]) -> None:
        self.completed = asyncio.Event()
        self._consumer_generation = consumer_generation

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        if generation_id == self._consumer_generation[0]:
            self.completed.set()


class FakeTables:
    def __init__(self, recovery: FakeRecovery) -> None:
        self.recovery = recovery
        self.rebalances: list[int] = []

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        self.rebalances.append(generation_id)


class FakeApp:
    def __init__(self) -> None:
        self.consumer_generation = [0]
        self.tables = FakeTables(FakeRecovery(self.consumer_generation))


def test_install_follows_faust_s_calls() -> None:
    async def run() -> None:
        app, gate = FakeApp(), RebalanceGate()
        install(app, gate)
        app.consumer_generation[0] = 1
        await app.tables.on_rebalance(set(), set(), set(), 1)
        assert app.tables.rebalances == [1] and not gate.ready
        await app.tables.recovery.on_recovery_completed(1)
        assert gate.ready
        # Generation 2 is assigned; generation 1's recovery reports again, outdated.
        app.consumer_generation[0] = 2
        await app.tables.on_rebalance(set(), set(), set(), 2)
        await app.tables.recovery.on_recovery_completed(1)
        assert not gate.ready
        await app.tables.recovery.on_recovery_completed(2)
        assert gate.ready

    asyncio.run(run())
