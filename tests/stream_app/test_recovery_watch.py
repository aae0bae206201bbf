"""The recovery watch: when it fetches changelog partitions again, and when it gives up."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from types import SimpleNamespace

from stream_app.recovery_watch import RecoveryProgress, RecoveryWatch, faust_recovery_progress


@dataclass
class Harness:
    state: RecoveryProgress | None = None
    broker_up: bool = True
    now: float = 0.0
    fetched: list[tuple[Hashable, int]] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)

    def watch(self, attempts: int = 2) -> RecoveryWatch:
        async def fetch_again(tp: Hashable, offset: int) -> None:
            self.fetched.append((tp, offset))

        async def broker_answers(tps: list[Hashable]) -> bool:
            return self.broker_up

        return RecoveryWatch(
            progress=lambda: self.state,
            fetch_again=fetch_again,
            broker_answers=broker_answers,
            give_up=self.given_up.append,
            after_seconds=20.0,
            attempts=attempts,
            wait_limit_seconds=100.0,
            clock=lambda: self.now,
        )

    def at(self, watch: RecoveryWatch, now: float) -> None:
        self.now = now
        asyncio.run(watch.check())


def test_a_recovery_that_moves_is_left_alone() -> None:
    h = Harness(RecoveryProgress(1.0, {"c-0": (5, 100)}))
    watch = h.watch()
    for second in range(0, 200, 5):
        h.state = RecoveryProgress(1.0, {"c-0": (5 + second, 300)})
        h.at(watch, second)
    assert h.fetched == [] and h.given_up == []


def test_a_stuck_recovery_is_fetched_again_from_where_it_read_then_given_up() -> None:
    h = Harness(RecoveryProgress(1.0, {"c-1": (7, 70), "c-0": (-1, 15)}))
    watch = h.watch(attempts=2)
    h.at(watch, 0)
    h.at(watch, 19)
    assert h.fetched == []
    h.at(watch, 20)
    assert h.fetched == [("c-0", 0), ("c-1", 7)]  # -1: nothing read yet, from the start
    h.at(watch, 40)
    assert len(h.fetched) == 4 and h.given_up == []
    h.at(watch, 60)
    assert len(h.fetched) == 4
    assert len(h.given_up) == 1
    assert "60 s" in h.given_up[0] and "c-1 read to 7 of 70" in h.given_up[0]


def test_progress_after_a_repair_starts_the_count_again() -> None:
    h = Harness(RecoveryProgress(1.0, {"c-0": (3, 9)}))
    watch = h.watch(attempts=1)
    h.at(watch, 0)
    h.at(watch, 20)
    assert watch.repairs == 1
    h.state = RecoveryProgress(1.0, {"c-0": (4, 9)})
    h.at(watch, 25)
    assert watch.repairs == 0
    h.at(watch, 45)
    assert watch.repairs == 1 and h.given_up == []


def test_a_new_recovery_at_the_same_offsets_is_a_new_one() -> None:
    h = Harness(RecoveryProgress(1.0, {"c-0": (3, 9)}))
    watch = h.watch(attempts=1)
    h.at(watch, 0)
    h.at(watch, 20)
    h.state = RecoveryProgress(2.0, {"c-0": (3, 9)})
    h.at(watch, 40)
    h.at(watch, 59)
    assert len(h.fetched) == 1 and h.given_up == []


def test_a_broker_that_does_not_answer_is_waited_for_up_to_the_limit() -> None:
    h = Harness(RecoveryProgress(1.0, {"c-0": (3, 9)}), broker_up=False)
    watch = h.watch(attempts=1)
    for second in range(0, 100, 20):
        h.at(watch, second)
    assert h.fetched == [] and h.given_up == [] and watch.repairs == 0
    h.at(watch, 100)
    assert h.fetched == []
    assert len(h.given_up) == 1 and "does not answer" in h.given_up[0]


def test_no_recovery_or_nothing_behind_resets_the_watch() -> None:
    h = Harness(RecoveryProgress(1.0, {"c-0": (3, 9)}))
    watch = h.watch(attempts=1)
    h.at(watch, 0)
    h.at(watch, 20)
    h.state = RecoveryProgress(1.0, {})
    h.at(watch, 30)
    h.state = None
    h.at(watch, 35)
    h.state = RecoveryProgress(1.0, {"c-0": (3, 9)})
    h.at(watch, 40)
    h.at(watch, 59)
    assert len(h.fetched) == 1 and h.given_up == []


def test_faust_progress_lists_only_partitions_behind_their_log_end() -> None:
    offsets: Counter[str] = Counter({"done": 9, "behind": 4, "fresh": -1})
    highwaters: Counter[str] = Counter({"done": 9, "behind": 10, "fresh": 3, "empty": -1})
    recovery = SimpleNamespace(
        in_recovery=True,
        _recovery_started_at=12.5,
        active_offsets=offsets,
        active_highwaters=highwaters,
    )
    app = SimpleNamespace(tables=SimpleNamespace(_recovery=recovery))
    progress = faust_recovery_progress(app)
    assert progress == RecoveryProgress(12.5, {"behind": (4, 10), "fresh": (-1, 3)})
    recovery.in_recovery = False
    assert faust_recovery_progress(app) is None
    assert faust_recovery_progress(SimpleNamespace(tables=SimpleNamespace(_recovery=None))) is None
