"""How often stage 2 revises one final window's quality as its labels come in.

A revision re-evaluates the window and rewrites its rows in SQL (quality, metrics,
anomalies, and what the retraining policy and the alerts make of them). Labels for random
predictions touch every window still within the label horizon, so a label backfill revises
each touched window at every tick: a steady stream of SQL writes. With a pace, labels are
still counted at once (the window's quality state in the table); only the rows in SQL follow,
at most once per ``seconds`` per window (setting ``revision_seconds``, off by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RevisionPace:
    """When each window (by its record key) may be revised again."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._revised_at: dict[str, float] = {}

    def due(self, key: str) -> bool:
        """Whether the window may be revised now (never revised since the worker started,
        or not within the last ``seconds``)."""
        at = self._revised_at.get(key)
        return at is None or self._clock() - at >= self.seconds

    def revised(self, key: str) -> None:
        self._revised_at[key] = self._clock()

    def forget_past(self) -> None:
        """Drop what no longer holds a window back (the dict stays as small as the windows
        revised within the last ``seconds``)."""
        now = self._clock()
        self._revised_at = {
            key: at for key, at in self._revised_at.items() if now - at < self.seconds
        }
