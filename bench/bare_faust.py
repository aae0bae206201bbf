"""The baseline of issue 4: a bare Faust agent that only consumes and decodes a topic.

Run as its own process by ``bench.pipeline_bench``; it writes the wall-clock times of its
first and last message to ``--out`` once it has read ``--count`` messages, then exits.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

import faust
import orjson


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--records-per-message", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    app = faust.App(
        f"bare-{os.getpid()}",
        broker=f"kafka://{args.broker}",
        store="memory://",
        datadir=os.path.join(tempfile.gettempdir(), f"bare-{os.getpid()}"),  # not the cwd
        web_enabled=False,
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        topic_partitions=args.partitions,
    )
    topic = app.topic(
        args.topic, partitions=args.partitions, key_serializer="raw", value_serializer="raw"
    )
    seen = {"messages": 0, "records": 0, "first": 0.0}

    async def consume(stream: Any) -> None:
        async for value in stream:
            decoded = orjson.loads(value)
            seen["first"] = seen["first"] or time.time()
            seen["messages"] += 1
            seen["records"] += len(decoded["records"]) if "records" in decoded else 1
            if seen["messages"] == args.count:
                result = {**seen, "last": time.time()}
                with open(args.out, "w") as out:
                    json.dump(result, out)
                os._exit(0)  # measured; no need for a clean shutdown

    app.agent(topic, name="bare")(consume)
    worker = faust.Worker(app, loglevel="warn")
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
