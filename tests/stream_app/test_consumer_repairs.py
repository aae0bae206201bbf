"""The repairs of Faust's consumer bookkeeping, on a real (unstarted) Faust consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import TP

from stream_app.consumer_repairs import (
    commit_blocked,
    consumer_state,
    cover_processed,
    fetch_again,
    is_paused,
)

TOPIC = TP("labels", 1)


def consumer_with(committed: int, acked: list[int]) -> Any:
    app = faust.App("t-repairs", broker="kafka://127.0.0.1:9", web_enabled=False)
    consumer: Any = app.consumer  # built, never started: no connection (private fields)
    consumer._committed_offset[TOPIC] = committed
    consumer._acked[TOPIC].extend(acked)
    consumer._acked_index[TOPIC].update(acked)
    return consumer


def commits(consumer: Any) -> list[int | None]:
    """What Faust's commits of TOPIC would be, one commit after another, until none."""
    found: list[int | None] = []
    for _ in range(10):
        offset = consumer._new_offset(TOPIC)
        found.append(offset)
        if offset is None:
            return found
        consumer._committed_offset[TOPIC] = offset
    return found


def test_a_missing_acknowledgement_holds_faust_commit_until_covered() -> None:
    consumer = consumer_with(100, list(range(105, 121)))
    assert commit_blocked(consumer, TOPIC)
    assert commits(consumer) == [None], "Faust alone never commits past the hole"
    assert asyncio.run(cover_processed(consumer, TOPIC, done=110))
    assert commits(consumer) == [121, None], "one commit past the hole and what follows"


def test_a_commit_never_passes_what_is_not_durable() -> None:
    consumer = consumer_with(100, list(range(105, 111)) + list(range(115, 121)))
    assert asyncio.run(cover_processed(consumer, TOPIC, done=112))
    assert commits(consumer) == [113, None], "113 and 114 are not processed yet"
    assert commit_blocked(consumer, TOPIC)
    assert asyncio.run(cover_processed(consumer, TOPIC, done=130))
    assert commits(consumer) == [121, None]


def test_nothing_to_cover_changes_nothing() -> None:
    consumer = consumer_with(100, list(range(101, 110)))
    assert not commit_blocked(consumer, TOPIC)
    assert not asyncio.run(cover_processed(consumer, TOPIC, done=99))
    assert not asyncio.run(cover_processed(consumer, TOPIC, done=None))
    assert commits(consumer) == [110, None]


def test_fetch_again_puts_a_buffered_partition_back_among_the_active() -> None:
    consumer = consumer_with(0, [])
    consumer._active_partitions = {TP("predictions", 0)}
    consumer._buffered_partitions.add(TOPIC)
    assert consumer_state(consumer, TOPIC).startswith("active=False buffered=True paused=False")
    fetch_again(consumer, TOPIC)
    assert consumer._active_partitions == {TP("predictions", 0), TOPIC}
    assert TOPIC not in consumer._buffered_partitions
    assert not is_paused(consumer, TOPIC)
    consumer._paused_partitions.add(TOPIC)
    assert is_paused(consumer, TOPIC)


class FakeKafka:
    """The aiokafka consumer's two calls used here, with a committed offset per partition."""

    def __init__(self) -> None:
        self.offsets: dict[Any, int] = {}

    async def committed(self, tp: Any) -> int | None:
        return self.offsets.get(tp)

    async def commit(self, offsets: dict[Any, Any]) -> None:
        for tp, meta in offsets.items():
            self.offsets[tp] = meta.offset


class FakeThread:
    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka
        self.calls = 0

    def _ensure_consumer(self) -> FakeKafka:
        return self.kafka

    async def call_thread(self, method: Any, *args: Any) -> Any:
        self.calls += 1  # on Faust's consumer thread in a worker
        return await method(*args)


def test_a_commit_goes_to_the_consumer_thread_and_reads_back() -> None:
    from types import SimpleNamespace

    from stream_app.consumer_repairs import broker_committed, commit_directly

    thread = FakeThread(FakeKafka())
    consumer = SimpleNamespace(_thread=thread)
    assert asyncio.run(broker_committed(consumer, TOPIC)) is None
    assert asyncio.run(commit_directly(consumer, TOPIC, 2511))
    assert asyncio.run(broker_committed(consumer, TOPIC)) == 2511
    assert thread.calls == 3
    assert not asyncio.run(commit_directly(SimpleNamespace(), TOPIC, 1)), "no consumer thread"


def test_a_cover_acknowledges_each_offset_once() -> None:
    consumer = consumer_with(100, [101, 103, 105, 106])
    assert asyncio.run(cover_processed(consumer, TOPIC, done=106))
    acked = consumer._acked[TOPIC]
    assert acked == sorted(set(acked)) == list(range(100, 107))
    assert not asyncio.run(cover_processed(consumer, TOPIC, done=106)), "nothing left to add"
    assert commits(consumer) == [107, None]


def test_a_direct_commit_moves_faust_bookkeeping_past_it() -> None:
    from stream_app.consumer_repairs import commit_directly

    consumer = consumer_with(1977, [1976, 1978, 1979, 2600])
    consumer._thread = FakeThread(FakeKafka())
    assert asyncio.run(commit_directly(consumer, TOPIC, 2512))
    assert consumer._committed_offset[TOPIC] == 2512
    assert consumer._acked[TOPIC] == [2600]
    assert commits(consumer) == [None], "Faust commits nothing below the direct commit"


class HangingKafka:
    """An aiokafka consumer whose committed-offset requests never return."""

    async def committed(self, tp: Any) -> int:
        await asyncio.Event().wait()
        return 0


class QueueThread:
    """Faust's consumer thread as its requests see it: mode's method queue, two workers."""

    def __init__(self, queue: Any, kafka: Any) -> None:
        self.queue = queue
        self.kafka = kafka

    def _ensure_consumer(self) -> Any:
        return self.kafka

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        promise = asyncio.get_running_loop().create_future()
        return await (await self.queue.call(promise, fun, *args))


def test_a_hung_request_frees_the_consumer_threads_worker(monkeypatch: Any) -> None:
    """Two hung repairs must not leave Faust's own requests (table recovery) waiting forever."""
    from mode.threads import MethodQueue

    import stream_app.consumer_repairs as repairs

    monkeypatch.setattr(repairs, "THREAD_CALL_SECONDS", 0.2)

    async def scenario() -> list[Any]:
        queue = MethodQueue(num_workers=2)
        await queue.start()
        consumer = type("Consumer", (), {})()
        consumer._thread = QueueThread(queue, HangingKafka())
        try:
            hung = [
                asyncio.ensure_future(repairs.broker_committed(consumer, TOPIC)) for _ in range(2)
            ]
            await asyncio.sleep(0.05)  # both of the queue's workers now run a hung request

            async def faust_own_request() -> str:
                return "earliest offsets"

            answer = await asyncio.wait_for(consumer._thread.call_thread(faust_own_request), 5)
            outcomes = await asyncio.gather(*hung, return_exceptions=True)
            return [answer, *(type(o) for o in outcomes)]
        finally:
            await queue.stop()

    assert asyncio.run(scenario()) == ["earliest offsets", TimeoutError, TimeoutError]


def test_a_rewind_seeks_on_the_consumer_thread() -> None:
    """Faust's seek run in the caller's thread races aiokafka's fetcher (KeyError in
    ``fetched_records``); seek_where_fetched hands it to the consumer thread's queue."""
    import threading

    from mode.threads import MethodQueue

    from stream_app.consumer_repairs import seek_where_fetched

    seen: list[tuple[Any, int, str]] = []

    class Consumer:
        async def seek(self, tp: Any, offset: int) -> None:
            seen.append((tp, offset, threading.current_thread().name))

    def consumer_thread_loop(ready: threading.Event, box: list[Any]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        queue = MethodQueue(num_workers=2, loop=loop)
        loop.run_until_complete(queue.start())
        box.append((loop, queue))
        ready.set()
        loop.run_forever()
        loop.run_until_complete(queue.stop())

    ready, box = threading.Event(), list[Any]()
    worker = threading.Thread(target=consumer_thread_loop, args=(ready, box), name="consumer")
    worker.start()
    ready.wait(5)
    loop, queue = box[0]

    class Thread:
        async def call_thread(self, fun: Any, *args: Any) -> Any:
            promise = asyncio.get_running_loop().create_future()
            return await (await queue.call(promise, fun, *args))

    consumer = Consumer()
    consumer._thread = Thread()  # type: ignore[attr-defined]
    try:
        asyncio.run(asyncio.wait_for(seek_where_fetched(consumer, TOPIC, 42), 5))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        worker.join(5)
    assert seen == [(TOPIC, 42, "consumer")]
