"""The whole-fetch seam into Faust's consumer (stream_app/fetch_events.py).

The commit tests run Faust's own bookkeeping (``_add_gap``, ``ack``, ``_new_offset`` of a
real consumer object) and mirror the one step of its drain loop that decides gaps; they
hold a whole-fetch delivery to the offsets Faust commits when it delivers every record
as a message of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.errors import ConfigurationError
from stream_app import fetch_events
from stream_app.fetch_events import (
    PINNED_FAUST,
    SEAM,
    FetchMessage,
    WholeFetch,
    WholeFetchConsumer,
    check_seam,
    records_of,
)
from stream_app.settings import load_settings
from stream_app.worker import build
from tests.examples import examples

TOPIC = "predictions"
PART = TP(TOPIC, 0)


def test_faust_is_the_version_and_code_the_seam_was_written_against() -> None:
    # Fails after a faust-streaming upgrade, naming each internal that changed and what
    # stream_app/fetch_events.py relies on it for: re-read those, then update SEAM.
    assert faust.__version__ == PINNED_FAUST, (
        f"faust-streaming {faust.__version__}: stream_app/fetch_events.py was written "
        f"against {PINNED_FAUST}"
    )
    check_seam()


def test_a_changed_internal_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "faust.transport.consumer.Consumer.ack"
    function, _, why = SEAM[name]
    monkeypatch.setitem(SEAM, name, (function, "0" * 64, why))
    with pytest.raises(ConfigurationError) as refused:
        check_seam()
    message = str(refused.value)
    assert name in message and why in message
    assert f"faust-streaming=={PINNED_FAUST}" in message and "DRIFTLINE_WHOLE_FETCHES" in message


def record(offset: int, value: bytes = b"{}") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, 0, offset, 1_000 * offset, 0, None, value, None, 0, len(value), [])


def test_a_fetch_message_carries_its_records_and_the_last_offset() -> None:
    records = [record(5), record(6, b'{"a": 1}'), record(7)]
    message = FetchMessage(PART, records, generation_id=3)
    assert (message.topic, message.partition, message.offset) == (TOPIC, 0, 7)
    assert message.timestamp == 7.0 and message.generation_id == 3
    assert message.serialized_value_size == 2 + 8 + 2
    assert records_of(message) == records
    single = record(9)
    assert records_of(single) == (single,)


@contextmanager
def new_consumer() -> Iterator[WholeFetchConsumer]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = faust.App("fetch-events-test", broker="kafka://127.0.0.1:9", loop=loop)
    fetch_events.install(app, [TOPIC])
    # What the conductor records for a subscribed topic with acks (the default).
    app.topics._acking_topics.add(TOPIC)  # type: ignore[attr-defined]
    built = app.consumer
    assert isinstance(built, WholeFetchConsumer) and built.whole_fetch_topics == {TOPIC}
    try:
        yield built
    finally:
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def consumer() -> Iterator[WholeFetchConsumer]:
    with new_consumer() as built:
        yield built


def deliver(consumer: Any, message: Any) -> None:
    """What Faust's drain loop (Consumer._drain_messages) does with one message's offset."""
    offset, read = message.offset, consumer._read_offset[message.tp]
    if read is None or offset >= read:
        if offset - (read or 0) > 1 and read:
            asyncio.get_event_loop().run_until_complete(
                consumer._add_gap(message.tp, read + 1, offset)
            )
        consumer._read_offset[message.tp] = offset


def commit_after(consumer: Any, acked: Sequence[Any]) -> int | None:
    for message in acked:
        message.incref()
        message.ack(consumer)
    new = consumer._new_offset(PART)
    if new is not None:
        consumer._committed_offset[PART] = new
    committed: int | None = consumer._committed_offset[PART]
    return committed


def fetches(draw: Any) -> tuple[int, int | None, list[list[int]]]:
    start = draw(st.sampled_from(["assigned", "read offset 0", "sought"]))
    # Offset 0 alone was read and committed before, or the partition starts at `committed`.
    committed = 1 if start == "read offset 0" else draw(st.integers(0, 3))
    read = {"assigned": None, "read offset 0": 0, "sought": committed}[start]
    cuts = draw(st.lists(st.integers(1, 6), min_size=1, max_size=6))
    first = committed
    offsets: list[list[int]] = []
    for size in cuts:
        offsets.append(list(range(first, first + size)))
        first += size
    return committed, read, offsets


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_whole_fetches_commit_what_one_message_at_a_time_commits(data: st.DataObject) -> None:
    committed, read, parts = fetches(data.draw)
    with new_consumer() as consumer:
        whole, one_by_one = commits(consumer, committed, read, parts)
    assert whole == one_by_one == [part[-1] + 1 for part in parts]


def commits(
    consumer: Any, committed: int, read: int | None, parts: list[list[int]]
) -> tuple[list[int | None], list[int | None]]:
    """The offsets committed after each part, delivered whole, then one message each."""
    whole: list[int | None] = []
    consumer._committed_offset[PART] = committed
    consumer._read_offset[PART] = read
    for part in parts:
        message = consumer._to_message(PART, WholeFetch([record(o) for o in part]))
        deliver(consumer, message)
        whole.append(commit_after(consumer, [message]))
    # The same records, one message each, through Faust's own path.
    one_by_one: list[int | None] = []
    consumer._acked.clear()
    consumer._acked_index.clear()
    consumer._gap.clear()
    consumer._committed_offset[PART] = committed
    consumer._read_offset[PART] = read
    for part in parts:
        messages = []
        for offset in part:
            message = consumer._to_message(PART, record(offset))  # Faust's own
            deliver(consumer, message)
            messages.append(message)
        one_by_one.append(commit_after(consumer, messages))
    return whole, one_by_one


def test_a_fetch_not_yet_acknowledged_holds_the_commit_at_its_first_offset(
    consumer: WholeFetchConsumer,
) -> None:
    consumer._committed_offset[PART] = 10
    consumer._read_offset[PART] = None  # just assigned
    first = consumer._to_message(PART, WholeFetch([record(o) for o in range(10, 15)]))
    deliver(consumer, first)
    second = consumer._to_message(PART, WholeFetch([record(o) for o in range(15, 30)]))
    deliver(consumer, second)
    assert commit_after(consumer, [first]) == 15
    assert commit_after(consumer, []) == 15  # the gap of the second fetch does not count
    assert commit_after(consumer, [second]) == 30


def test_other_topics_keep_one_message_per_record(consumer: WholeFetchConsumer) -> None:
    changelog = TP("stage1-windows-changelog", 0)
    records = {
        PART: [record(1), record(2)],
        changelog: [ConsumerRecord(changelog.topic, 0, 4, 0, 0, b"k", b"v", None, 1, 1, [])],
    }

    async def fetched(self: Any, timeout: float) -> tuple[Any, Any]:
        return records, None

    original = faust.transport.consumer.Consumer._wait_next_records
    faust.transport.consumer.Consumer._wait_next_records = fetched  # type: ignore[method-assign]
    try:
        got, _ = asyncio.get_event_loop().run_until_complete(consumer._wait_next_records(1.0))
    finally:
        faust.transport.consumer.Consumer._wait_next_records = original  # type: ignore[method-assign]
    assert [type(r) for r in got[PART]] == [WholeFetch] and got[PART][0].records == records[PART]
    assert got[changelog] == records[changelog]


def test_offsets_no_record_holds_are_covered_by_the_next_fetch(
    consumer: WholeFetchConsumer,
) -> None:
    # A transactional producer's commit markers take offsets no record is delivered at.
    consumer._committed_offset[PART] = 0
    consumer._read_offset[PART] = None
    first = consumer._to_message(PART, WholeFetch([record(o) for o in (0, 1, 2)]))
    deliver(consumer, first)
    assert commit_after(consumer, [first]) == 3
    after_marker = consumer._to_message(PART, WholeFetch([record(o) for o in (4, 5, 7, 8)]))
    deliver(consumer, after_marker)
    assert commit_after(consumer, [after_marker]) == 9


def test_a_fetch_below_the_read_offset_is_left_to_faust_to_drop(
    consumer: WholeFetchConsumer,
) -> None:
    consumer._read_offset[PART] = 50
    stale = consumer._to_message(PART, WholeFetch([record(o) for o in (40, 41)]))
    assert consumer._read_offset[PART] == 50  # Faust's drain loop drops what lies below it
    assert isinstance(stale, FetchMessage)


@pytest.mark.parametrize("whole", [True, False])
def test_stage_1_queues_at_most_whole_fetches_ahead(
    sqlite_url: str, tmp_path: Path, whole: bool
) -> None:
    """faust-streaming's ``App.topic`` drops ``maxsize``: set on the topic, the bound
    (``whole_fetches_ahead``) reaches the queue the agent reads (a whole fetch is up to
    ``partition_fetch_mb``; 776 of 1 MB queued were ~2 GB of RSS while a worker read a
    backlog)."""
    worker_settings = load_settings(
        database_url=sqlite_url,
        data_dir=str(tmp_path / "faust"),
        whole_fetches=whole,
        whole_fetches_ahead=24,
    )
    pipeline = build(worker_settings)
    stage1 = pipeline.app.agents["stage1"]
    queue = stage1.channel_iterator.clone(is_iterator=True).queue
    expected = 24 if whole else pipeline.app.conf.stream_buffer_maxsize
    assert queue.maxsize == expected


def test_a_send_gives_up_after_send_timeout_seconds(sqlite_url: str, tmp_path: Path) -> None:
    """Not Faust's 20 minutes: an unacknowledged send stops the worker (on_fatal) instead."""
    worker_settings = load_settings(
        database_url=sqlite_url, data_dir=str(tmp_path / "faust"), send_timeout_seconds=45
    )
    assert build(worker_settings).app.conf.producer_request_timeout == 45
    assert load_settings(database_url=sqlite_url).send_timeout_seconds == 120


def test_a_fetch_reads_up_to_partition_fetch_mb(sqlite_url: str, tmp_path: Path) -> None:
    """The consumer's max.partition.fetch.bytes, 4 MB unless set: a batch is a few fetches."""
    worker_settings = load_settings(
        database_url=sqlite_url, data_dir=str(tmp_path / "faust"), partition_fetch_mb=0.5
    )
    assert build(worker_settings).app.conf.consumer_max_fetch_size == 512 * 1024
    assert load_settings(database_url=sqlite_url).partition_fetch_mb == 4


def test_the_producer_batches_up_to_producer_batch_kb(sqlite_url: str, tmp_path: Path) -> None:
    """aiokafka holds a send to a partition whose batch is full until that batch leaves (one
    round trip each): the worker's batches are 512 KB unless set, not Kafka's 16 KB."""

    def batch_size(**overrides: Any) -> int:
        worker_settings = load_settings(
            database_url=sqlite_url, data_dir=str(tmp_path / "faust"), **overrides
        )
        producer: Any = build(worker_settings).app.producer  # private fields below

        async def made() -> int:  # aiokafka's producer is made inside a running loop
            kafka = producer._new_producer()
            size: int = kafka._message_accumulator._batch_size
            await kafka.stop()
            return size

        return asyncio.run(made())

    assert batch_size(producer_batch_kb=64) == 64 * 1024
    assert batch_size() == 512 * 1024
    with pytest.raises(ConfigurationError, match="producer_batch_kb"):
        load_settings(database_url=sqlite_url, producer_batch_kb=1024)
