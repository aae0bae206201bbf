"""``driftline demo``: the end-to-end demo (``--offline``: the statistics alone, in process)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parsers(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the end-to-end demo on a generated stream with drift",
        description="Start a local broker, a worker, the API and the alert sinks, stream "
        "generated predictions and labels with drift through them, and print what was "
        "detected and delivered.",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed of the generated stream")
    demo.add_argument(
        "--offline", action="store_true", help="only the statistics, in-process (no broker)"
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.offline:
        from driftline.demo import run

        run(sys.stdout, seed=args.seed)
    else:
        from driftline import stream_demo

        stream_demo.run(sys.stdout, seed=args.seed)
    return 0
