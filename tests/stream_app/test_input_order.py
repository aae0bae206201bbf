"""Stage 1 processes each input partition's messages in offset order, without holes.

Faust drops (and acks) messages it fetched while flow control was off or before a
rebalance, expecting them to be read again from the committed offset; when that offset
has moved past them they would never be processed. Stage 1 notices the hole (an offset
past the next one it expects), asks the consumer to read again from there, and drops the
partition's messages until the missing one comes.

Measured before: in a crash-replay run a forwarded-summary message (499 summaries) was
never processed after a restart and 242 labels never joined their predictions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stream_app.counters import Counters
from stream_app.registry import ModelRegistry
from stream_app.stage1 import Stage1, Stage1Sink
from stream_app.stage1_inputs import InputMessage
from stream_app.state_store import MemoryStore
from tests.stream_app import scenario
from tests.stream_app.test_stages import RUNTIME

EVENTS = list(scenario.events(1, 12, drift_from=99, decay_from=99))


class Consumer:
    """What stage 1 asks of the consumer: rewinds, answered with where reading resumes."""

    def __init__(self, oldest: int = 0) -> None:
        self.oldest = oldest
        self.rewinds: list[tuple[str, int, int]] = []

    async def rewind(self, kind: str, partition: int, offset: int) -> int:
        self.rewinds.append((kind, partition, offset))
        return max(offset, self.oldest)


def _stage1(consumer: Consumer | None) -> tuple[Stage1, Counters]:
    async def ignore(*_: Any) -> None:
        return None

    counters = Counters()
    registry = ModelRegistry(lambda m: RUNTIME if m == RUNTIME.model_id else None, 1e9)
    sink = Stage1Sink(ignore, ignore, ignore, 1, consumer.rewind if consumer else None)
    stage1 = Stage1(registry, MemoryStore(), MemoryStore(), sink, 1, 1e9, counters)
    return stage1, counters


def _message(offset: int) -> InputMessage:
    event = EVENTS[offset]
    return InputMessage(
        "prediction",
        "predictions",
        0,
        offset,
        event.prediction_id.encode(),
        event.prediction_json(),
    )


def _feed(stage1: Stage1, offsets: list[int]) -> None:
    asyncio.run(stage1.process([_message(o) for o in offsets]))


def test_a_hole_is_read_again_and_nothing_is_processed_past_it() -> None:
    consumer = Consumer()
    stage1, counters = _stage1(consumer)
    _feed(stage1, [0, 1, 2])
    _feed(stage1, [5, 6])  # 3 and 4 were dropped by the consumer
    assert consumer.rewinds == [("prediction", 0, 3)]
    assert counters.predictions == 3
    _feed(stage1, [7])  # fetched before the rewind took effect: dropped, no second rewind
    assert consumer.rewinds == [("prediction", 0, 3)]
    _feed(stage1, [3, 4, 5, 6, 7, 8])  # read again from 3
    assert counters.predictions == 9
    assert stage1.checkpoint(0)["p"] == 8


def test_a_hole_the_log_no_longer_holds_is_skipped_with_a_warning(caplog: Any) -> None:
    consumer = Consumer(oldest=5)
    stage1, counters = _stage1(consumer)
    _feed(stage1, [0, 1, 2])
    _feed(stage1, [5, 6])
    assert consumer.rewinds == [("prediction", 0, 3)]
    assert counters.predictions == 5
    assert "no longer in the log" in caplog.text


def test_messages_at_or_below_the_checkpoint_are_skipped() -> None:
    consumer = Consumer()
    stage1, counters = _stage1(consumer)
    _feed(stage1, [0, 1, 2, 3])
    _feed(stage1, [2, 3, 4])  # read again from an older commit
    assert consumer.rewinds == []
    assert counters.predictions == 5
    assert counters.replayed_input == 2


def test_without_a_consumer_a_hole_is_logged_and_input_goes_on(caplog: Any) -> None:
    stage1, counters = _stage1(None)
    _feed(stage1, [0, 1])
    _feed(stage1, [4])
    assert counters.predictions == 3
    assert "offsets 2 to 3 skipped" in caplog.text


def test_the_timer_asks_again_when_nothing_came(monkeypatch: Any) -> None:
    # A seek can be undone by messages that were already on their way: ask again later.
    now = [100.0]
    monkeypatch.setattr("stream_app.input_order.time.monotonic", lambda: now[0])
    consumer = Consumer()
    stage1, _ = _stage1(consumer)
    _feed(stage1, [0, 1])
    _feed(stage1, [4])
    asyncio.run(stage1.retry_rewinds())
    assert consumer.rewinds == [("prediction", 0, 2)]  # too soon
    now[0] += 5
    asyncio.run(stage1.retry_rewinds())
    assert consumer.rewinds == [("prediction", 0, 2), ("prediction", 0, 2)]
    _feed(stage1, [2, 3, 4])
    now[0] += 5
    asyncio.run(stage1.retry_rewinds())  # filled: nothing more to ask
    assert len(consumer.rewinds) == 2


def test_without_a_checkpoint_a_partition_is_read_from_its_first_offset() -> None:
    # A CI run lost a partition's first 298 messages: Faust committed past them after
    # dropping them at the worker's first rebalance, before anything was durable.
    consumer = Consumer()
    stage1, counters = _stage1(consumer)
    _feed(stage1, [4, 5])
    assert consumer.rewinds == [("prediction", 0, 0)]
    assert counters.predictions == 0
    _feed(stage1, [0, 1, 2, 3, 4, 5])
    assert counters.predictions == 6


def test_without_a_checkpoint_a_log_whose_start_was_deleted_starts_at_its_oldest(
    caplog: Any,
) -> None:
    consumer = Consumer(oldest=4)
    stage1, counters = _stage1(consumer)
    _feed(stage1, [4, 5])
    assert consumer.rewinds == [("prediction", 0, 0)]
    assert counters.predictions == 2
    assert "offsets 0 to 3 are no longer in the log" in caplog.text
