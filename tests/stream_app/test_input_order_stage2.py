"""Stage 2 reads each window-partials partition without holes (stream_app/input_order.py)."""

from __future__ import annotations

import asyncio

from stream_app.input_order import InputOrder
from stream_app.state_store import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _order(oldest: int = 0) -> tuple[InputOrder, list[tuple[int, int]], MemoryStore, Clock]:
    asked: list[tuple[int, int]] = []

    async def rewind(partition: int, offset: int) -> int:
        asked.append((partition, offset))
        return max(offset, oldest)

    store, clock = MemoryStore(), Clock()
    return InputOrder(store, "partials", rewind, clock), asked, store, clock


def _admit(order: InputOrder, partition: int, offsets: list[int]) -> list[int]:
    return [o for o in offsets if asyncio.run(order.admit(partition, o))]


def test_a_hole_is_read_again_and_what_lies_past_it_waits() -> None:
    order, asked, _, clock = _order()
    assert _admit(order, 0, [0, 1, 2]) == [0, 1, 2]
    assert _admit(order, 0, [5, 6]) == []
    assert asked == [(0, 3)]
    clock.now += 1
    assert _admit(order, 0, [7]) == []  # fetched before the rewind: no second request
    assert asked == [(0, 3)]
    assert _admit(order, 0, [3, 4, 5]) == [3, 4, 5]
    clock.now += 100
    assert _admit(order, 0, [9]) == []  # another hole: asked again
    assert asked == [(0, 3), (0, 6)]


def test_the_next_offset_survives_a_restart_through_the_store() -> None:
    order, asked, store, _ = _order()
    _admit(order, 1, [0, 1, 2])
    order.save()

    async def rewind(partition: int, offset: int) -> int:
        asked.append((partition, offset))
        return offset

    restarted = InputOrder(store, "partials", rewind)
    assert _admit(restarted, 1, [1, 2]) == [1, 2]  # read again: stage 2's records decide
    assert _admit(restarted, 1, [5]) == []
    assert asked == [(1, 3)]


def test_a_hole_the_log_no_longer_holds_is_skipped() -> None:
    order, asked, _, _ = _order(oldest=10)
    _admit(order, 0, [0, 1])
    assert _admit(order, 0, [12]) == [12]
    assert asked == [(0, 2)]


def test_with_nothing_stored_a_partition_is_read_from_its_first_offset() -> None:
    # Faust may commit past messages it fetched and dropped before anything was durable:
    # a first message at 40 is a hole from 0, not a place to start.
    order, asked, _, _ = _order()
    assert _admit(order, 0, [40, 41]) == []
    assert asked == [(0, 0)]
    assert _admit(order, 0, [0, 1]) == [0, 1]
    assert _admit(order, 1, [0]) == [0]  # partitions are independent
    assert asked == [(0, 0)]


def test_with_nothing_stored_a_log_whose_start_was_deleted_starts_at_its_oldest() -> None:
    order, asked, _, _ = _order(oldest=40)
    assert _admit(order, 0, [40, 41]) == [40, 41]
    assert asked == [(0, 0)]


def test_the_timer_asks_again_when_nothing_came() -> None:
    order, asked, _, clock = _order()
    _admit(order, 0, [0, 1])
    _admit(order, 0, [3])
    asyncio.run(order.retry())
    assert asked == [(0, 2)]
    clock.now += 5
    asyncio.run(order.retry())
    assert asked == [(0, 2), (0, 2)]
    assert _admit(order, 0, [2, 3]) == [2, 3]
    clock.now += 5
    asyncio.run(order.retry())
    assert len(asked) == 2
