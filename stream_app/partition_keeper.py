"""Keeps Faust fetching and committing every input partition a worker holds.

Faust's consumer bookkeeping can stop a partition for good in three ways
(``stream_app.consumer_repairs`` describes each); this class applies the repairs with
what the stages know: the next offset each input partition needs, and the last one whose
effects are durable. ``check`` runs on a timer of its own, outside the stages' locks (it
waits for the broker); ``unblock_commits`` runs right after a stage's flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from stream_app.consumer_repairs import (
    broker_committed,
    commit_blocked,
    commit_directly,
    consumer_state,
    cover_processed,
    fetch_again,
    is_paused,
)
from stream_app.counters import Counters
from stream_app.fetch_watch import FetchWatch

log = logging.getLogger(__name__)

# Longest wait for a request that runs on Faust's consumer thread (log start and end,
# committed offsets): a rebalance holds that thread.
BROKER_CALL_SECONDS = 10.0


@dataclass
class StageOffsets:
    """What the stages know of an input partition (a Faust ``TP``); None: nothing yet."""

    next_needed: Callable[[Any], int | None]
    durable_done: Callable[[Any], int | None]
    rewind: Callable[[Any, int], Awaitable[int]]


@dataclass
class PartitionKeeper:
    app: Any  # the Faust app: its consumer and whether it is rebalancing
    stages: StageOffsets
    counters: Counters
    watch: FetchWatch = field(default_factory=FetchWatch)

    async def check(self) -> None:
        """Fetch again a partition stuck with input left; commit an idle one left behind."""
        consumer = self.app.consumer
        if self.app.rebalancing or not consumer:
            return
        waiting = {}
        for tp in consumer.assignment():
            if is_paused(consumer, tp):
                self.watch.forget(tp)
                continue
            needed = self.stages.next_needed(tp)
            if needed is not None and self.watch.waiting(tp, needed):
                waiting[tp] = needed
        if not waiting:
            return
        # The broker's log ends, not the consumer's: a partition never fetched since the
        # worker started has none cached. One request for all of them.
        try:
            log_ends = await asyncio.wait_for(consumer.highwaters(*waiting), BROKER_CALL_SECONDS)
        except TimeoutError:
            return  # asked again at the next check
        for tp, needed in waiting.items():
            log_end = log_ends.get(tp)
            if log_end is None or self.app.rebalancing:
                continue
            if log_end <= needed:
                await self._commit_what_is_durable(tp)
            else:
                await self._fetch_again(tp, needed, log_end)

    async def _fetch_again(self, tp: Any, needed: int, log_end: int) -> None:
        consumer = self.app.consumer
        log.warning(
            "%s[%d]: offset %d not delivered for %.0f s with the log at %s (consumer: %s); "
            "fetching it again",
            tp.topic,
            tp.partition,
            needed,
            self.watch.after_seconds,
            log_end,
            consumer_state(consumer, tp),
        )
        self.counters.fetch_restarts += 1
        fetch_again(consumer, tp)
        await self.stages.rewind(tp, needed)

    async def _commit_what_is_durable(self, tp: Any) -> None:
        done = self.stages.durable_done(tp)
        if done is None:
            return
        consumer = self.app.consumer
        try:
            committed = await asyncio.wait_for(broker_committed(consumer, tp), BROKER_CALL_SECONDS)
            if committed is not None and committed > done:
                return
            state = consumer_state(consumer, tp)
            if not await asyncio.wait_for(
                commit_directly(consumer, tp, done + 1), BROKER_CALL_SECONDS
            ):
                return
        except Exception as error:  # asked again at the next check; logged, not fatal
            log.warning("%s[%d]: could not check or commit its offset: %r", *tp, error)
            return
        self.counters.commit_repairs += 1
        log.warning(
            "%s[%d]: the group's committed offset was %s with everything up to %d processed "
            "and durable (Faust's: %s); committed %d",
            tp.topic,
            tp.partition,
            committed,
            done,
            state,
            done + 1,
        )

    async def unblock_commits(self, tps: Any) -> None:
        """After a flush: let Faust commit past offsets it lacks that are durable."""
        consumer = self.app.consumer
        for tp in tps:
            if not commit_blocked(consumer, tp):
                continue
            done = self.stages.durable_done(tp)
            state = consumer_state(consumer, tp)
            if not await cover_processed(consumer, tp, done):
                continue
            self.counters.commit_repairs += 1
            log.warning(
                "%s[%d]: Faust's offset commit was held by an offset it will not acknowledge "
                "(%s); offsets up to %s are processed and durable: marked done",
                tp.topic,
                tp.partition,
                state,
                done,
            )

    def forget(self, tp: Any) -> None:
        """A revoked partition: its clock starts again if it comes back."""
        self.watch.forget(tp)
