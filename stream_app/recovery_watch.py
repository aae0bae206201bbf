"""Notice a table recovery that stopped receiving, make it fetch again, and stop if it stays stuck.

Faust's recovery reads every active changelog partition up to the log end it measured at
the start, and waits for that with no time limit: nothing is processed meanwhile. Measured
once in the rebalance fault test (CI, 2 cores): after the second worker left, the first one
received no event on any of its nine changelog partitions for three minutes, logging only
Faust's "No event received for active tp" every five seconds. Faust's consumer had the
partitions, the broker had the records; the same state on input partitions is undone by
a seek (``stream_app.fetch_watch``), which is what this watch does for changelogs.

A recovery is stuck when none of the offsets it has read moved for ``after_seconds`` while
some partition is behind its log end. The watch then seeks those partitions to where the
recovery has read (reading one event again, which sets the same value) and puts them back
among the partitions fetched. After ``attempts`` such repairs without progress it gives
up loudly: the caller stops the worker, whose restart rebuilds the tables and reads the
input again from the last commit. A stall while the broker does not answer is an outage,
not this: it is waited out and not counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stream_app.consumer_repairs import fetch_changelog_again
from stream_app.partition_keeper import BROKER_CALL_SECONDS

log = logging.getLogger(__name__)

RECOVERY_STALL_SECONDS = 20.0
RECOVERY_REPAIRS = 3
# A broker that does not answer this long while a recovery waits is past what a worker can
# wait out by itself (or Faust's consumer thread is held, which looks the same from here).
RECOVERY_WAIT_LIMIT_SECONDS = 600.0


@dataclass(frozen=True)
class RecoveryProgress:
    """One recovery (identified by when it started) and, per partition still behind it,
    the offset read so far and the log end it reads to."""

    started_at: float
    behind: Mapping[Hashable, tuple[int, int]]


@dataclass
class RecoveryWatch:
    progress: Callable[[], RecoveryProgress | None]  # None: no recovery reading
    fetch_again: Callable[[Hashable, int], Awaitable[None]]
    broker_answers: Callable[[list[Hashable]], Awaitable[bool]]
    give_up: Callable[[str], None]
    after_seconds: float = RECOVERY_STALL_SECONDS
    attempts: int = RECOVERY_REPAIRS
    wait_limit_seconds: float = RECOVERY_WAIT_LIMIT_SECONDS
    clock: Callable[[], float] = time.monotonic
    repairs: int = 0  # in the current stall
    _seen: tuple[float, tuple[tuple[str, int], ...]] | None = None
    _since: float = field(default=0.0)
    _stalled_since: float = field(default=0.0)

    async def check(self) -> None:
        state = self.progress()
        if state is None or not state.behind:
            self._seen = None
            self.repairs = 0
            return
        now = self.clock()
        seen = (
            state.started_at,
            tuple(sorted((str(tp), o) for tp, (o, _) in state.behind.items())),
        )
        if seen != self._seen:  # a new recovery, or this one moved
            self._seen, self._since, self._stalled_since, self.repairs = seen, now, now, 0
            return
        if now - self._since < self.after_seconds:
            return
        self._since = now
        stuck = sorted(state.behind, key=str)
        if not await self.broker_answers(stuck):
            if now - self._stalled_since >= self.wait_limit_seconds:
                self.give_up(
                    f"table recovery received nothing for {now - self._stalled_since:.0f} s and "
                    "the broker does not answer"
                )
                return
            log.warning(
                "table recovery received nothing for %.0f s and the broker does not answer; "
                "waiting for it",
                self.after_seconds,
            )
            return
        where = ", ".join(
            f"{tp} read to {state.behind[tp][0]} of {state.behind[tp][1]}" for tp in stuck
        )
        if self.repairs >= self.attempts:
            self.give_up(
                f"table recovery received nothing for {now - self._stalled_since:.0f} s "
                f"though the broker answers, after fetching again {self.repairs} times ({where})"
            )
            return
        self.repairs += 1
        log.warning(
            "table recovery received nothing for %.0f s though the broker answers (%s); "
            "fetching those partitions again from where it read (%d of %d)",
            self.after_seconds,
            where,
            self.repairs,
            self.attempts,
        )
        for tp in stuck:
            await self.fetch_again(tp, max(state.behind[tp][0], 0))


def faust_recovery_progress(app: object) -> RecoveryProgress | None:
    """What Faust's ``Recovery`` (faust-streaming 0.15) has read, while it reads actives."""
    tables = getattr(app, "tables", None)
    recovery = getattr(tables, "_recovery", None)  # not the property: it would create one
    started_at = getattr(recovery, "_recovery_started_at", None)
    if recovery is None or not getattr(recovery, "in_recovery", False) or started_at is None:
        return None
    offsets = recovery.active_offsets
    behind = {
        tp: (offsets[tp], highwater)
        for tp, highwater in recovery.active_highwaters.items()
        if offsets[tp] is not None and highwater is not None and highwater > offsets[tp]
    }
    return RecoveryProgress(started_at, behind)


def install(
    app: Any, on_fatal: Callable[[str, BaseException], None], every_seconds: float
) -> RecoveryWatch:
    """Watch ``app``'s table recoveries on a timer of their own (it runs while they do)."""

    async def broker_answers(tps: list[Hashable]) -> bool:
        try:
            await asyncio.wait_for(app.consumer.highwaters(*tps), BROKER_CALL_SECONDS)
        except Exception:  # a timeout or a connection error: no answer either way
            return False
        return True

    async def fetch_again(tp: Hashable, offset: int) -> None:
        await fetch_changelog_again(app.consumer, tp, offset)

    watch = RecoveryWatch(
        progress=lambda: faust_recovery_progress(app),
        fetch_again=fetch_again,
        broker_answers=broker_answers,
        give_up=lambda why: on_fatal("table recovery", RuntimeError(why)),
    )

    async def check() -> None:
        try:
            await watch.check()
        except Exception as error:  # the watch's own failure must not end its timer
            log.warning("could not check the table recovery: %r", error)

    app.timer(every_seconds)(check)
    return watch
