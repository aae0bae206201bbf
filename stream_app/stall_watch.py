"""Say loudly, and where, when a worker's processing stops moving.

A batch or a timer tick that never finishes holds its stage's lock, and from outside the
worker looks idle: no error, no log line, the lag grows. This watch notices a batch that
has been in progress for ``after_seconds`` without another one starting or ending, logs
where every asyncio task of the process is waiting (the innermost frames, one line per
task) and counts it, so the log of a stuck worker says what it waits for. It does not stop
the worker: a database outage also holds a batch while it retries, and says so itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

FRAMES_PER_TASK = 4


@dataclass
class Activity:
    """How many batches (and ticks) are being processed, and since when nothing changed."""

    active: int = 0
    last_change: float = field(default_factory=time.monotonic)

    def begin(self) -> None:
        self.active += 1
        self.last_change = time.monotonic()

    def end(self) -> None:
        self.active -= 1
        self.last_change = time.monotonic()


@dataclass
class StallWatch:
    """Reports an :class:`Activity` that stays busy without change, once per stall."""

    activity: Activity
    after_seconds: float
    what: str = "a batch"
    clock: Callable[[], float] = time.monotonic
    reported_for: float | None = None  # the last_change of the stall already reported
    stalls: int = 0

    def check(self) -> str | None:
        """The report of a new stall, if one started; None otherwise."""
        busy_for = self.clock() - self.activity.last_change
        if self.activity.active == 0 or busy_for < self.after_seconds:
            return None
        if self.reported_for == self.activity.last_change:
            return None
        self.reported_for = self.activity.last_change
        self.stalls += 1
        return (
            f"{self.what} has been in progress for {busy_for:.0f} s without finishing; if this "
            "is not a database outage being retried, report it with this log. Where each "
            "task waits:\n" + describe_tasks()
        )

    async def tick(self) -> None:
        report = self.check()
        if report is not None:
            log.critical("%s", report)


def describe_tasks(frames: int = FRAMES_PER_TASK) -> str:
    """One line per asyncio task of the running loop: its name and innermost frames."""
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running loop (a check outside the worker)
        return "  (no event loop running)"
    lines = []
    for task in sorted(tasks, key=lambda t: t.get_name()):
        stack = _awaited_frames(task.get_coro())[-frames:]
        where = " <- ".join(
            f"{frame.f_code.co_name} ({_short(frame.f_code.co_filename)}:{frame.f_lineno})"
            for frame in reversed(stack)
        )
        lines.append(f"  {task.get_name()}: {where or '(running or done)'}")
    return "\n".join(lines)


def _awaited_frames(awaitable: Any) -> list[FrameType]:
    """The frames of a suspended coroutine and of what it awaits, outermost first.

    ``Task.get_stack`` gives a suspended task's outermost frame only; the place it waits
    is at the end of its chain of awaits (coroutines, generators, async generators).
    """
    found: list[FrameType] = []
    seen = 0
    while awaitable is not None and seen < 200:  # bounded: a chain never loops, but still
        seen += 1
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        frame = frame or getattr(awaitable, "ag_frame", None)
        if frame is not None:
            found.append(frame)
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
    return found


def _short(path: str) -> str:
    """A frame's file, short: a library's path in site-packages, ours from the package."""
    _, found, tail = path.partition("site-packages/")
    if found:
        return tail
    for package in ("stream_app", "storage", "detectors"):
        _, found, tail = path.partition(f"/{package}/")
        if found:
            return f"{package}/{tail}"
    return path.rsplit("/", 1)[-1]
