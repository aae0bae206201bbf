"""Event-time tumbling windows and per-partition watermarks.

Times are epoch seconds (floats, UTC). A window of ``size`` seconds starting at ``start``
holds events with ``start <= t < start + size``; windows are aligned on the epoch, so every
partition and every worker computes the same windows without talking to each other.

A partition's *watermark* is the largest event time it has seen. A window can close in a
partition once ``watermark >= end + allowed_lateness``; an event that arrives for a window
already closed in its partition is *late*: counted, reported per window, not added.

A partition that receives nothing for ``idle_timeout`` seconds of wall-clock time would hold
every window open forever; from then on its watermark advances with the wall clock, so a
quiet model's window still closes (the timer drives this). A partition whose log holds
events the worker has not processed yet (a backlog behind other partitions' batches) is
behind, not idle: its watermark waits for its events.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def window_start(timestamp: float, size: float) -> float:
    """Start of the tumbling window of ``size`` seconds that holds ``timestamp``.

    Examples
    --------
    >>> window_start(3725.0, 3600), window_start(3600.0, 3600), window_start(3599.9, 3600)
    (3600.0, 3600.0, 0.0)
    """
    return float(math.floor(timestamp / size) * size)


def window_closes_at(start: float, size: float, lateness: float) -> float:
    """Watermark at which the window starting at ``start`` closes."""
    return start + size + lateness


@dataclass
class PartitionClock:
    """Event-time watermark of one input partition, with idle advancement.

    Parameters
    ----------
    idle_timeout
        Wall-clock seconds without events after which the watermark follows the clock.
    clock
        Source of wall-clock time (injectable for tests).
    """

    idle_timeout: float
    clock: Callable[[], float] = time.monotonic
    event_watermark: float | None = None
    last_activity: float = field(default=0.0)
    # Events of this partition wait to be processed (its log end is past what it has
    # processed): it is behind, not idle, and its watermark must not follow the clock.
    backlog: bool = False

    def __post_init__(self) -> None:
        self.last_activity = self.clock()

    def observe(self, event_time: float) -> None:
        # Fold any idle advancement in first: a watermark never moves backwards, or windows
        # already closed would reopen.
        current = self.watermark()
        self.last_activity = self.clock()
        self.event_watermark = event_time if current is None else max(current, event_time)

    def restore(self, watermark: float | None) -> None:
        """Adopt a watermark recovered from the changelog (never moves it backwards)."""
        if watermark is not None and (
            self.event_watermark is None or watermark > self.event_watermark
        ):
            self.event_watermark = watermark

    def watermark(self) -> float | None:
        """Event watermark, plus the idle time beyond ``idle_timeout`` when quiet."""
        if self.event_watermark is None or self.backlog:
            return self.event_watermark
        idle = self.clock() - self.last_activity - self.idle_timeout
        return self.event_watermark + max(0.0, idle)
