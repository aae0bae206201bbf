"""The ``driftline`` command. Subcommands are added as the pipeline grows."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from driftline.errors import DriftlineError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="driftline", description="Driftline: model monitoring on Kafka"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run the end-to-end demo on a generated stream with drift"
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed of the generated stream")
    demo.add_argument(
        "--offline", action="store_true", help="only the statistics, in-process (no broker)"
    )
    from driftline import alert_commands, api_commands, pipeline_commands
    from driftline.local import commands as local_commands

    local_commands.add_parser(commands)
    pipeline_commands.add_parsers(commands)
    alert_commands.add_parsers(commands)
    api_commands.add_parsers(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo" and args.offline:
            from driftline.demo import run

            run(sys.stdout, seed=args.seed)
        elif args.command == "demo":
            from driftline import stream_demo

            stream_demo.run(sys.stdout, seed=args.seed)
        elif args.command == "local":
            return local_commands.run(args, sys.stdout)
        else:
            handler: Callable[[argparse.Namespace], int] = args.handler
            return handler(args)
    except DriftlineError as error:
        # Ours say what to do next; a traceback would only bury that line.
        sys.stderr.write(f"driftline: error: {error}\n")
        return 1
    return 0
