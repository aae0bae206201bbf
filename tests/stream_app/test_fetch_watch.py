"""The fetch watch finds a partition whose next offset stopped moving with the log ahead."""

from __future__ import annotations

from types import SimpleNamespace

from stream_app.fetch_watch import FetchWatch, consumer_state, fetch_again, is_paused


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_waiting_with_messages_to_read_is_stuck_after_the_delay() -> None:
    clock = Clock()
    watch = FetchWatch(after_seconds=20, clock=clock)
    assert not watch.stuck("labels-1", 40, 266)  # first sight: the clock starts
    clock.now += 19
    assert not watch.stuck("labels-1", 40, 266)
    clock.now += 1
    assert watch.stuck("labels-1", 40, 266)
    assert not watch.stuck("labels-1", 40, 266), "reported again only after another delay"
    clock.now += 20
    assert watch.stuck("labels-1", 40, 266)


def test_progress_or_an_empty_backlog_is_never_stuck() -> None:
    clock = Clock()
    watch = FetchWatch(after_seconds=20, clock=clock)
    for step in range(10):
        clock.now += 15
        assert not watch.stuck("p-0", 100 + step, 1000), "the next offset moves"
    for _ in range(5):
        clock.now += 30
        assert not watch.stuck("p-1", 1000, 1000), "everything read"
        assert not watch.stuck("p-2", None, 1000), "nothing known yet"
        assert not watch.stuck("p-3", 10, None), "log end not fetched yet"


def test_forgetting_a_revoked_partition_restarts_its_clock() -> None:
    clock = Clock()
    watch = FetchWatch(after_seconds=20, clock=clock)
    watch.stuck("p-0", 5, 9)
    clock.now += 60
    watch.forget("p-0")
    assert not watch.stuck("p-0", 5, 9)


def test_fetch_again_puts_a_buffered_partition_back_among_the_active() -> None:
    consumer = SimpleNamespace(
        _active_partitions={"p-0"}, _buffered_partitions={"l-1"}, _paused_partitions=set()
    )
    assert consumer_state(consumer, "l-1") == "active=False buffered=True paused=False"
    fetch_again(consumer, "l-1")
    assert consumer._active_partitions == {"p-0", "l-1"}
    assert consumer._buffered_partitions == set()
    assert not is_paused(consumer, "l-1")
    consumer._paused_partitions.add("p-0")
    assert is_paused(consumer, "p-0")
