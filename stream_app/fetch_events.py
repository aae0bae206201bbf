"""Whole fetches into the agent: the one seam into Faust's consumer.

Faust turns every consumed record into a message of its own and walks it through its
per-message machinery (a ``wait_first`` in the consumer's drain loop, the conductor, an
event, the stream's iteration): 110-150 µs a message, which held single-event messages
near 6,000/s while aiokafka alone reads them at well over 100,000/s. No Faust setting or
stream API changes that.

Here, for the topics it is given (stage 1's inputs), the records one fetch returned for a
partition become **one** :class:`FetchMessage`: its offset is the last record's, and it
carries the records. Everything else stays Faust's: the group, rebalances, tables and
their changelogs (whose topics keep the normal path), flow control, and the offsets Faust
commits. Acknowledging the one message acknowledges, in Faust's books, every offset the
fetch covers: its records' and any offset between the last one read and its first record
(what Faust's own drain loop would have entered as a "gap"), so a commit moves exactly as
if each record had been a message of its own. Faust's gap bookkeeping is kept out of it:
it counts a gap's end offset twice and clamps its start one past the committed offset,
which stalls the commit once gaps are routine (found by the property test of this module).

It relies on private faust-streaming internals, so the version is pinned in
``pyproject.toml`` and :func:`check_seam` compares the source of every function it relies
on with the one it was written against: a Faust that differs is refused at start, naming
the function, and a test does the same in CI after an upgrade.

With the native record reader built, the consumer thread also reads these topics' fetches
as columns (:mod:`stream_app.fetch_columns`): a fetch message then carries one
:class:`RecordColumns` instead of a record object per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import faust
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ConsumerMessage, Message, ack_lock
from mode.utils.futures import notify

from driftline.errors import ConfigurationError
from stream_app import fetch_columns
from stream_app.record_columns import RecordColumns
from stream_app.seams import changed_internals

PINNED_FAUST = "0.15.3"

# What this module relies on, by the sha256 of its source in PINNED_FAUST, and why.
SEAM: dict[str, tuple[Any, str, str]] = {
    "faust.transport.consumer.Consumer.getmany": (
        FaustConsumer.getmany,
        "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
        "takes the records from _wait_next_records and makes each one a message with "
        "_to_message, which is where a whole fetch becomes one message",
    ),
    "faust.transport.consumer.Consumer._wait_next_records": (
        FaustConsumer._wait_next_records,
        "6218e1969a636b3ff504ad1b8e7ad58a113572e43d746cc96d684ed5153032c6",
        "returns (records by partition, active partitions), records None when there are none",
    ),
    "faust.transport.consumer.Consumer._drain_messages": (
        FaustConsumer._drain_messages,
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
        "reads the read offset right after _to_message, adds a gap only when a message is "
        "more than one past it, drops a message below it, then sets it to the offset",
    ),
    "faust.transport.consumer.Consumer.ack": (
        FaustConsumer.ack,
        "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f",
        "records an acknowledged offset in _acked_index, _acked and _n_acked under ack_lock "
        "(WholeFetchConsumer.ack does the same for every offset of a fetch)",
    ),
    "faust.transport.consumer.Consumer._new_offset": (
        FaustConsumer._new_offset,
        "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0",
        "commits up to the first offset missing from the acknowledged ones",
    ),
    "faust.transport.drivers.aiokafka.Consumer._new_consumer_thread": (
        faust_aiokafka.Consumer._new_consumer_thread,
        "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9",
        "makes the consumer thread, whose _fetch_records ColumnarConsumerThread wraps",
    ),
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._fetch_records": (
        faust_aiokafka.AIOKafkaConsumerThread._fetch_records,
        "39a2c6c79fc1455a199629912b533458a720c64983bc957420a42feef6593baa",
        "awaits the fetcher's fetched_records in the task that runs it (so the context "
        "variable naming the columnar topics is seen where the records are read)",
    ),
    "faust.transport.drivers.aiokafka.Consumer._to_message": (
        faust_aiokafka.Consumer._to_message,
        "7c24f6511b2fcef7cbfe73526e78de033bfe0df211f1fd30509d699c9deb6ce4",
        "builds a ConsumerMessage from an aiokafka record (FetchMessage mirrors it)",
    ),
}


def check_seam() -> None:
    """Refuse a faust-streaming whose internals this module relies on have changed."""
    changed = changed_internals(SEAM)
    if changed:
        raise ConfigurationError(
            f"faust-streaming {faust.__version__} differs from {PINNED_FAUST}, which "
            f"stream_app/fetch_events.py was written against, in: {'; '.join(changed)}. "
            f"Install faust-streaming=={PINNED_FAUST} (as pyproject.toml pins it), or set "
            "DRIFTLINE_WHOLE_FETCHES=false to read one message at a time (slower)."
        )


class WholeFetch:
    """The records one fetch returned for one partition, in offset order (never empty)."""

    __slots__ = ("records",)

    def __init__(self, records: Sequence[Any] | RecordColumns) -> None:
        self.records = records


def _whole(batch: list[Any]) -> list[Any]:
    # Columns are a whole fetch each already (the reader yields one per fetch).
    return batch if isinstance(batch[0], RecordColumns) else [WholeFetch(batch)]


class FetchMessage(ConsumerMessage):
    """One partition's fetch as one Faust message: the last record's offset, all records.

    ``records``: the record objects, or one :class:`RecordColumns` when the native reader
    read the fetch.
    """

    __slots__ = ("covers_from", "records")

    def __init__(
        self,
        tp: Any,
        records: Sequence[Any] | RecordColumns,
        generation_id: int | None,
        covers_from: int | None = None,
    ) -> None:
        if isinstance(records, RecordColumns):
            first, last = records.first_offset, records.last_offset
            last_timestamp: int | None = records.last_timestamp
            timestamp_type, value_size = records.timestamp_type, records.value_bytes()
        else:
            first, last = records[0].offset, records[-1].offset
            last_timestamp, timestamp_type = records[-1].timestamp, records[-1].timestamp_type
            value_size = sum(r.serialized_value_size for r in records)
        timestamp = last_timestamp / 1000.0 if last_timestamp is not None else None
        super().__init__(
            tp.topic,
            tp.partition,
            last,
            timestamp,  # type: ignore[arg-type]
            timestamp_type,
            None,
            None,
            None,
            None,
            serialized_key_size=0,
            serialized_value_size=value_size,
            tp=tp,
            generation_id=generation_id,
        )
        self.records = records
        #: The first offset acknowledging this message acknowledges (then all up to its own).
        self.covers_from = first if covers_from is None else covers_from


def records_of(message: Any) -> Sequence[Any]:
    """The records a message stands for: a fetch's, or the message itself."""
    if not isinstance(message, FetchMessage):
        return (message,)
    records = message.records
    return records.records() if isinstance(records, RecordColumns) else records


def columns_of(message: Any) -> RecordColumns | None:
    """A fetch message's records as columns, when the native reader read them."""
    if isinstance(message, FetchMessage) and isinstance(message.records, RecordColumns):
        return message.records
    return None


class ColumnarConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, reading :attr:`columnar_topics`' fetches as columns."""

    columnar_topics: frozenset[str] = frozenset()

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        # This task reads the fetcher: the records it reads see the topics (each call is
        # a task of its own in the thread's loop, so the setting stays with it).
        fetch_columns.COLUMNAR_TOPICS.set(self.columnar_topics)
        return await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )


class WholeFetchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering :attr:`whole_fetch_topics` a fetch at a time."""

    whole_fetch_topics: frozenset[str] = frozenset()
    columnar: bool = False

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        if not self.columnar:
            return super()._new_consumer_thread()
        thread_class = type(
            "ColumnarConsumerThread",
            (ColumnarConsumerThread,),
            {"columnar_topics": self.whole_fetch_topics},
        )
        thread: faust_aiokafka.AIOKafkaConsumerThread = thread_class(
            self, loop=self.loop, beacon=self.beacon
        )
        return thread

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        if records:
            whole = self.whole_fetch_topics
            records = {
                tp: _whole(batch) if tp.topic in whole and batch else batch
                for tp, batch in records.items()
            }
        return records, active

    def _to_message(self, tp: Any, record: Any) -> ConsumerMessage:
        if isinstance(record, RecordColumns):
            record = WholeFetch(record)
        if not isinstance(record, WholeFetch):
            return super()._to_message(tp, record)
        fetched = record.records
        if isinstance(fetched, RecordColumns):
            first, last = fetched.first_offset, fetched.last_offset
        else:
            first, last = fetched[0].offset, fetched[-1].offset
        # Faust's drain loop reads the read offset right after this call (no await in
        # between). Where it would take this message, one below its offset makes it see
        # a step of one, so it enters no gap of its own (this message covers them).
        read = self._read_offset[tp]
        covers_from = first if read is None else min(first, read + 1)
        if read is None or last >= read:
            self._read_offset[tp] = last - 1
        return FetchMessage(tp, fetched, self.app.consumer_generation_id, covers_from)

    def ack(self, message: Message) -> bool:
        """Faust's :meth:`Consumer.ack`, for every offset a fetch message covers."""
        if not isinstance(message, FetchMessage):
            return super().ack(message)
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            if not self.app.topics.acks_enabled_for(message.topic):
                return False
            tp = message.tp
            try:
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                floor = message.covers_from if committed is None else committed
                offsets = [
                    offset
                    for offset in range(max(message.covers_from, floor), message.offset + 1)
                    if offset not in index
                ]
                index.update(offsets)
                self._acked[tp].extend(offsets)
                self._n_acked += len(offsets)
                return bool(offsets)
            finally:
                notify(self._waiting_for_ack)


def install(app: faust.App, topics: Iterable[str]) -> None:
    """Make ``app``'s consumer deliver ``topics`` a whole fetch at a time.

    Call before anything touches ``app.consumer``.
    """
    check_seam()
    consumer_class = type(
        "WholeFetchConsumer",
        (WholeFetchConsumer,),
        {"whole_fetch_topics": frozenset(topics), "columnar": fetch_columns.install()},
    )
    app.transport.Consumer = consumer_class  # type: ignore[misc]
