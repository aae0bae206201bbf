"""The ``driftline`` command. Subcommands are added as the pipeline grows."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="driftline", description="Driftline: model monitoring on Kafka"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run the end-to-end demo on a generated stream with drift"
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed of the generated stream")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from driftline.demo import run

        run(sys.stdout, seed=args.seed)
    return 0
