"""The stall watch reports a batch stuck in progress once, with where the tasks wait."""

from __future__ import annotations

import asyncio

from stream_app.stall_watch import Activity, StallWatch, describe_tasks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch_of(clock: Clock) -> tuple[Activity, StallWatch]:
    activity = Activity(last_change=clock.now)
    return activity, StallWatch(activity, after_seconds=30, what="a batch", clock=clock)


def test_an_idle_worker_is_not_a_stall() -> None:
    clock = Clock()
    _, watch = watch_of(clock)
    clock.now += 3600
    assert watch.check() is None
    assert watch.stalls == 0


def test_a_batch_in_progress_too_long_is_reported_once() -> None:
    clock = Clock()
    activity, watch = watch_of(clock)
    activity.last_change = clock.now
    activity.active = 1
    clock.now += 29
    assert watch.check() is None
    clock.now += 2
    report = watch.check()
    assert report is not None and report.startswith("a batch has been in progress for 31 s")
    clock.now += 100
    assert watch.check() is None, "the same stall is reported once"
    assert watch.stalls == 1


def test_a_new_stall_after_progress_is_reported_again() -> None:
    clock = Clock()
    activity, watch = watch_of(clock)
    activity.active = 1
    clock.now += 31
    assert watch.check() is not None
    activity.last_change = clock.now  # a batch finished and the next one started
    clock.now += 31
    assert watch.check() is not None
    assert watch.stalls == 2


def test_the_report_names_where_each_task_waits() -> None:
    assert asyncio.run(described_while_a_task_waits())


async def described_while_a_task_waits() -> bool:
    never = asyncio.Event()

    async def waiting_for_a_delivery() -> None:
        await never.wait()

    task = asyncio.create_task(waiting_for_a_delivery(), name="stuck-send")
    await asyncio.sleep(0)
    try:
        described = describe_tasks()
    finally:
        task.cancel()
    line = next(line for line in described.splitlines() if "stuck-send" in line)
    return "waiting_for_a_delivery" in line and "wait (" in line
