"""Profile stage 1 (and the in-memory stage 2) on generated traffic, without a broker.

``python -m bench.profile_stage1 [--single]`` prints the cProfile top functions and the
records per second without the profiler: the numbers behind the hot-spot table in
``docs/benchmarks.md``. The worker itself can be sampled live with
``py-spy record -p <worker pid> -f raw`` (py-spy is on PyPI).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from typing import Any

from bench import pipeline_bench as pb
from registration.profiling import profile_reference
from schemas import label_decoder
from stream_app import id_index
from stream_app.label_join import join_partition
from stream_app.registry import ModelRuntime
from stream_app.stage1_inputs import FetchedEvents
from stream_app.state_store import MemoryStore
from tests.stream_app.fetches import as_fetches
from tests.stream_app.local_pipeline import LocalPipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", action="store_true", help="one event per message")
    parser.add_argument(
        "--as-messages",
        action="store_true",
        help="--single: give stage 1 one message per event, not fetches read as columns "
        "(what a worker with whole_fetches off, or without the native reader, does)",
    )
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument(
        "--task", action="store_true", help="a binary model with a label task (the join)"
    )
    parser.add_argument(
        "--join",
        type=int,
        metavar="N",
        help="label-join costs instead: N outstanding predictions, then labels for 10 %% one"
        " a message and 10 %% more in envelopes of 500",
    )
    parser.add_argument(
        "--numpy-join",
        action="store_true",
        help="the label join's id index and partitioner in numpy, as without the C extension "
        "(stream_app/_id_slots.c)",
    )
    parser.add_argument(
        "--strict-labels",
        action="store_true",
        help="labels read by the strict parser alone, as without the native label decoder "
        "(schemas/_envelope_native.c)",
    )
    args = parser.parse_args(argv)
    if args.numpy_join:
        id_index.native = None
    if args.strict_labels:
        label_decoder.native = None
    if args.join:
        return join_costs(args.join)
    config = pb.config(task=args.task, horizon=7 * 24 * 3600)
    pipeline = LocalPipeline(ModelRuntime(config, profile_reference(config, pb.reference())), 4)
    source = (
        pb.single_messages("t", args.records)
        if args.single
        else pb.envelope_messages("t", args.records, 500)
    )
    messages = [
        pipeline.message("prediction", key.decode(), value) for _, key, value in source if key
    ]
    step = 1500 if args.single else 4
    batches = [messages[start : start + step] for start in range(0, len(messages), step)]
    if args.single and not args.as_messages:
        # As a worker gets them: each partition's part of a batch one fetch, read as columns.
        batches = [as_fetches(batch, size=5000) for batch in batches]
    warm, rest = batches[: len(batches) // 4], batches[len(batches) // 4 :]
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in warm:
        asyncio.run(pipeline.feed(batch))
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(
        os.environ.get("PROFILE_SORT", "tottime")
    ).print_stats(int(os.environ.get("PROFILE_TOP", "15")))
    began = time.perf_counter()
    for batch in rest:
        asyncio.run(pipeline.feed(batch))
    elapsed = time.perf_counter() - began
    per_message = 1 if args.single else 500
    measured = sum(len(m) if isinstance(m, FetchedEvents) else 1 for b in rest for m in b)
    sys.stdout.write(f"records/s without the profiler: {measured * per_message / elapsed:,.0f}\n")
    return 0


def join_costs(outstanding: int) -> int:
    """Memory per outstanding prediction in the join table, and what a label costs."""
    config = pb.config(task=True, horizon=7 * 24 * 3600)
    pipeline = LocalPipeline(ModelRuntime(config, profile_reference(config, pb.reference())), 4)
    source = pb.envelope_messages("t", outstanding, 500)
    messages = [pipeline.message("prediction", k.decode(), v) for _, k, v in source if k]
    for start in range(0, len(messages), 20):
        asyncio.run(pipeline.feed(messages[start : start + 20]))
    asyncio.run(pipeline.deliver())  # so that the labels' stage-2 figure is theirs alone
    store = pipeline.stage1.joins
    assert isinstance(store, MemoryStore)
    store.writes.clear()  # the test store's write log is not part of the table
    entries = len(store.data)
    table = sys.getsizeof(store.data) + sum(
        sys.getsizeof(key) + sys.getsizeof(value) for key, value in store.data.items()
    )
    join = pipeline.stage1.join
    index = sum(c.index.nbytes for c in join._columns.values())
    waiting = join.waiting_summaries()
    ids = random.Random(1).sample(range(outstanding), min(100_000, outstanding))
    columns = join._columns
    probes = [(columns[join_partition(f"p{i}", 4)].index, f"p{i}") for i in ids]
    began = time.perf_counter()
    for index_of_partition, prediction_id in probes:
        index_of_partition.find_one(prediction_id)
    lookup = (time.perf_counter() - began) / len(ids)
    picked = random.Random(2).sample(range(outstanding), outstanding // 5)
    chosen, enveloped = picked[: len(picked) // 2], picked[len(picked) // 2 :]
    singles = [
        pipeline.message("label", key.decode(), value)
        for _, key, value in pb.label_messages("l", chosen, "single labels")
    ]
    stage1, stage2 = _label_costs(pipeline, singles, 200, len(chosen))
    envelopes = [
        pipeline.message("label", key.decode(), value)
        for _, key, value in pb.label_messages("l", enveloped, "label envelopes of 500")
    ]
    enveloped_stage1, enveloped_stage2 = _label_costs(pipeline, envelopes, 4, len(enveloped))
    sys.stdout.write(
        f"{waiting:,} summaries waiting in {entries:,} join-table values; "
        f"{(table + index) / waiting:,.0f} bytes per waiting summary (the table's keys, values "
        f"and dict, and the id index: {index / waiting:,.0f})\n"
        f"lookup (the id index of its partition): {lookup * 1e9:,.0f} ns;"
        f" a label in stage 1 (parse, lookup,"
        f" pair, delete): {stage1 * 1e6:,.1f} us; its window update in stage 2:"
        f" {stage2 * 1e6:,.1f} us; then {len(enveloped):,} more in envelopes of 500: stage 1"
        f" {enveloped_stage1 * 1e6:,.1f} us a label, stage 2 {enveloped_stage2 * 1e6:,.1f} us;"
        f" joined {pipeline.counters.joined:,} of {len(picked):,}\n"
    )
    return 0


def _label_costs(
    pipeline: LocalPipeline, messages: list[Any], per_batch: int, n_labels: int
) -> tuple[float, float]:
    """Seconds a label in stage 1 (batches of ``per_batch`` messages), then in stage 2."""
    began = time.perf_counter()
    for start in range(0, len(messages), per_batch):
        asyncio.run(pipeline.stage1.process(messages[start : start + per_batch]))
    stage1 = (time.perf_counter() - began) / n_labels
    began = time.perf_counter()
    asyncio.run(pipeline.deliver())
    return stage1, (time.perf_counter() - began) / n_labels


if __name__ == "__main__":
    raise SystemExit(main())
