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
import pstats
import sys
import time

from bench import pipeline_bench as pb
from stream_app.profiling import profile_reference
from stream_app.registry import ModelRuntime
from tests.stream_app.local_pipeline import LocalPipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", action="store_true", help="one event per message")
    parser.add_argument("--records", type=int, default=60_000)
    args = parser.parse_args(argv)
    config = pb.config(task=False)
    pipeline = LocalPipeline(ModelRuntime(config, profile_reference(config, pb.reference())), 4)
    source = (
        pb.single_messages("t", args.records)
        if args.single
        else pb.envelope_messages("t", args.records, 500)
    )
    messages = [
        pipeline.message("prediction", key.decode(), value) for _, key, value in source if key
    ]
    warm, rest = messages[: len(messages) // 4], messages[len(messages) // 4 :]
    step = 1500 if args.single else 4
    profiler = cProfile.Profile()
    profiler.enable()
    for start in range(0, len(warm), step):
        asyncio.run(pipeline.feed(warm[start : start + step]))
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    began = time.perf_counter()
    for start in range(0, len(rest), step):
        asyncio.run(pipeline.feed(rest[start : start + step]))
    elapsed = time.perf_counter() - began
    per_message = 1 if args.single else 500
    sys.stdout.write(f"records/s without the profiler: {len(rest) * per_message / elapsed:,.0f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
