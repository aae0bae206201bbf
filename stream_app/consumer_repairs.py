"""Repairs of Faust consumer bookkeeping that can stop a partition for good.

Three states measured in the crash and rebalance fault tests, each leaving a healthy-looking
worker with a partition whose lag never moves again:

* **not fetched**: Faust takes a partition out of the fetcher's active set when the queue
  of the stream it feeds fills up (``Consumer.on_buffer_full``) and puts it back from a
  callback the queue runs when it drains; a rebalance clears the queues without running
  it. Found by :class:`stream_app.fetch_watch.FetchWatch`, undone by :func:`fetch_again`.
* **not committed**: Faust commits a partition up to the first offset missing from its
  acknowledged offsets, and commits nothing while the smallest acknowledged one is more
  than one past the last commit. An offset it never delivers again after a rewind (or
  drops with flow control off) holds the commit there forever: a replay after every
  restart, and a lag alert that never clears. :func:`cover_processed` acknowledges, as
  Faust would, the offsets stage 1 has durably processed (its checkpoint) that Faust
  lacks, so its next commit moves past them.
* **a commit recorded but refused**: Faust records a commit as done even when the broker
  refused it (around a rebalance), and never sends those offsets again; once a stream
  ends the group's offset stays behind. :func:`commit_directly` commits what stage 1 or 2
  has durably processed, when the broker's offset of an idle partition is behind it.

The attributes are Faust's own (faust-streaming 0.15), read defensively: a Faust without
them gets no repair, not an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.types.tuples import ack_lock

log = logging.getLogger(__name__)

# Longest a repair's request may hold a worker of Faust's consumer thread. That thread runs
# requests with two workers; one that never returns (a coordinator lookup retried through a
# rebalance) keeps its worker for good, and the checks that follow take the other one, so
# Faust's own calls (a table recovery's earliest offsets) then wait forever: measured once
# as a worker processing nothing for 180 s. A timeout on the caller's side does not free
# the thread's worker; this one, applied where the request runs, does.
THREAD_CALL_SECONDS = 8.0


def consumer_state(consumer: Any, tp: Any) -> str:
    """What Faust's consumer holds about ``tp``, for a log line."""
    active = getattr(consumer, "_active_partitions", None) or set()
    acked = getattr(consumer, "_acked", {}).get(tp) or []
    committed = getattr(consumer, "_committed_offset", {}).get(tp)
    return (
        f"active={tp in active} buffered={tp in getattr(consumer, '_buffered_partitions', ())} "
        f"paused={tp in getattr(consumer, '_paused_partitions', ())} committed={committed} "
        f"oldest acknowledged={min(acked) if acked else None}"
    )


def is_paused(consumer: Any, tp: Any) -> bool:
    """Paused on purpose (a table recovery): nothing to repair."""
    return tp in getattr(consumer, "_paused_partitions", ())


def fetch_again(consumer: Any, tp: Any) -> None:
    """Put ``tp`` back among the partitions Faust's fetcher reads.

    What ``Consumer.on_buffer_drop`` does when the queue's callback runs. The caller seeks
    the partition to the offset it needs afterwards.
    """
    buffered = getattr(consumer, "_buffered_partitions", None)
    if buffered is not None:
        buffered.discard(tp)
    active = getattr(consumer, "_active_partitions", None)
    if active is not None:
        active.add(tp)


def commit_blocked(consumer: Any, tp: Any) -> bool:
    """Whether Faust's next commit of ``tp`` is held by a missing acknowledgement."""
    committed = getattr(consumer, "_committed_offset", {}).get(tp)
    acked: list[int] = getattr(consumer, "_acked", {}).get(tp) or []
    return committed is not None and bool(acked) and min(acked) - committed > 1


async def cover_processed(consumer: Any, tp: Any, done: int | None) -> bool:
    """Let Faust commit ``tp`` past the offsets up to ``done`` (durably processed) it lacks.

    Acknowledges, the way ``Consumer.ack`` does, only the offsets missing from Faust's
    acknowledged ones and none past ``done``: a commit never passes input whose effects are
    not on the changelogs, and a message delivered again later is not acknowledged twice
    (duplicates would split Faust's runs of consecutive offsets, and its commit would then
    move one offset per commit). Whether anything was acknowledged.
    """
    committed = getattr(consumer, "_committed_offset", {}).get(tp)
    acked: list[int] | None = getattr(consumer, "_acked", {}).get(tp)
    index: set[int] | None = getattr(consumer, "_acked_index", {}).get(tp)
    if done is None or committed is None or not acked or index is None:
        return False
    with ack_lock:  # Faust's own, held by Consumer.ack
        missing = [o for o in range(committed, min(done, max(acked)) + 1) if o not in index]
        acked.extend(missing)
        index.update(missing)
        acked.sort()
    return bool(missing)


async def broker_committed(consumer: Any, tp: Any) -> int | None:
    """The group's committed offset of ``tp`` as the broker has it (None: none, or no way)."""
    kafka = _kafka_consumer(consumer)
    if kafka is None:
        return None
    found = await _on_consumer_thread(consumer, kafka.committed, _kafka_tp(tp))
    return int(found) if found is not None else None


async def commit_directly(consumer: Any, tp: Any, offset: int) -> bool:
    """Commit ``offset`` (the next to read) for ``tp``, past Faust's own bookkeeping.

    Faust records a commit as done even when the broker refused it (``_commit_offsets``
    updates ``_committed_offset`` whatever ``_commit`` returned; a commit refused because
    the group was rebalancing returns False), and then never commits those offsets again:
    after the last message of a stream the broker's offset stays behind for good.
    """
    kafka = _kafka_consumer(consumer)
    if kafka is None:
        return False
    await _on_consumer_thread(
        consumer, kafka.commit, {_kafka_tp(tp): OffsetAndMetadata(offset, "")}
    )
    _forget_below(consumer, tp, offset)
    return True


def _forget_below(consumer: Any, tp: Any, offset: int) -> None:
    """Make Faust's bookkeeping agree with a commit made past it.

    Without this Faust goes on committing from its own, lower offset, over the one just
    made (measured: 2,512 committed, then Faust's 1,997, 2,018, 2,039 … 20 s apart).
    """
    committed = getattr(consumer, "_committed_offset", None)
    if committed is None:
        return
    if committed.get(tp) is None or committed[tp] < offset:
        committed[tp] = offset
    acked: list[int] | None = getattr(consumer, "_acked", {}).get(tp)
    index: set[int] | None = getattr(consumer, "_acked_index", {}).get(tp)
    if acked is not None and index is not None:
        with ack_lock:
            below = [o for o in acked if o < offset]
            acked[:] = [o for o in acked if o >= offset]
            index.difference_update(below)


async def _on_consumer_thread(
    consumer: Any, request: Callable[..., Awaitable[Any]], *args: Any
) -> Any:
    """Run ``request(*args)`` on Faust's consumer thread, for at most THREAD_CALL_SECONDS.

    Raises ``TimeoutError`` when it takes longer; the thread's worker is free again either way.
    """

    async def bounded() -> Any:  # runs on the consumer thread's loop
        return await asyncio.wait_for(request(*args), THREAD_CALL_SECONDS)

    return await consumer._thread.call_thread(bounded)


def _kafka_consumer(consumer: Any) -> Any:
    thread = getattr(consumer, "_thread", None)
    ensure = getattr(thread, "_ensure_consumer", None)
    return ensure() if ensure is not None else None


def _kafka_tp(tp: Any) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


async def seek_where_fetched(consumer: Any, tp: Any, offset: int) -> None:
    """Faust's ``Consumer.seek``, run on Faust's consumer thread.

    Faust runs aiokafka's ``seek`` in the caller's thread (``Consumer._seek``), where it
    drops the partition's buffered records while the consumer thread may be going through
    them in ``Fetcher.fetched_records``: ``del self._records[tp]`` raises ``KeyError``, the
    fetcher crashes and the worker exits (measured under load in the label-join
    benchmark, a rewind 2 s before). On the thread that fetches, the seek cannot fall
    inside that loop, which does not await. Faust's own ``seek_wait`` seeks there too.
    """
    thread = getattr(consumer, "_thread", None)
    if thread is None or not hasattr(thread, "call_thread"):
        await consumer.seek(tp, offset)
        return
    await thread.call_thread(consumer.seek, tp, offset)


async def refresh_metadata(consumer: Any) -> bool:
    """Ask the broker for the cluster's metadata now, not at the next periodic refresh.

    When it lists partitions of a subscribed topic that the group's last assignment did not
    know (a changelog created just before the leader assigned), aiokafka's coordinator sees
    its metadata snapshot change and makes the group rebalance.
    """
    kafka = _kafka_consumer(consumer)
    if kafka is None:
        return False
    await _on_consumer_thread(consumer, kafka._client.force_metadata_update)
    return True


async def fetch_changelog_again(consumer: Any, tp: Any, offset: int) -> None:
    """Seek a changelog partition a recovery reads to ``offset`` and fetch it again.

    Logs first what the fetcher held for it, which says why it stopped.
    """
    log.warning(
        "%s[%d]: before fetching it again: %s", tp.topic, tp.partition, fetch_state(consumer, tp)
    )
    await seek_where_fetched(consumer, tp, offset)
    # The partition only: the flow is Faust's to stop and resume (a rebalance stops it).
    consumer.resume_partitions([tp])


def fetch_state(consumer: Any, tp: Any) -> str:
    """What Faust's consumer and aiokafka's fetcher hold about ``tp``, for a log line."""
    parts = [consumer_state(consumer, tp), f"flow_active={getattr(consumer, 'flow_active', None)}"]
    kafka = _kafka_consumer(consumer)
    fetcher = getattr(kafka, "_fetcher", None)
    if fetcher is None:
        return " ".join(parts)
    try:
        assignment = fetcher._subscriptions.subscription.assignment
        state = assignment.state_value(_kafka_tp(tp)) if assignment is not None else None
        parts.append(
            f"position={getattr(state, '_position', None)} "
            f"kafka_paused={getattr(state, 'paused', None)} "
            f"buffered_fetch={_kafka_tp(tp) in fetcher._records} "
            f"requests_in_flight={sorted(fetcher._in_flight)}"
        )
    except Exception as error:  # a diagnostic; aiokafka's internals may differ
        parts.append(f"(fetcher state unreadable: {error!r})")
    return " ".join(parts)
