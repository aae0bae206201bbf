"""The fetch watch finds a partition whose next offset stopped moving."""

from __future__ import annotations

from stream_app.fetch_watch import FetchWatch


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_whose_next_offset_stops_moving_is_waiting_after_the_delay() -> None:
    clock = Clock()
    watch = FetchWatch(after_seconds=20, clock=clock)
    assert not watch.waiting("labels-1", 40)  # first sight: the clock starts
    clock.now += 19
    assert not watch.waiting("labels-1", 40)
    clock.now += 1
    assert watch.waiting("labels-1", 40)
    assert not watch.waiting("labels-1", 40), "reported again only after another delay"
    clock.now += 20
    assert watch.waiting("labels-1", 40)


def test_progress_or_an_unknown_position_is_never_waiting() -> None:
    clock = Clock()
    watch = FetchWatch(after_seconds=20, clock=clock)
    for step in range(10):
        clock.now += 15
        assert not watch.waiting("p-0", 100 + step), "the next offset moves"
    for _ in range(5):
        clock.now += 30
        assert not watch.waiting("p-2", None), "nothing known yet"


def test_forgetting_a_revoked_partition_restarts_its_clock() -> None:
    clock = Clock()
    watch = FetchWatch(after_seconds=20, clock=clock)
    watch.waiting("p-0", 5)
    clock.now += 60
    watch.forget("p-0")
    assert not watch.waiting("p-0", 5)
