"""The ``driftline`` command: every subcommand is an argparse parser whose ``handler`` runs it.

Exit status: 0 done; 2 a usage or configuration error (argparse's own, or a
``ConfigurationError``: one line on stderr naming the problem and what to do); 1 a failure at
run time (a service down, bad data met while running); ``driftline local status`` returns 3
when a service is not running. Command modules are imported here, their heavy imports
(Faust, pandas, FastAPI) only inside the handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from driftline.errors import ConfigurationError, DriftlineError

USAGE_ERROR = 2
RUNTIME_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    from driftline import (
        alert_commands,
        api_commands,
        demo_commands,
        pipeline_commands,
        replay_commands,
        results_commands,
        setup_commands,
    )
    from driftline.local import commands as local_commands

    parser = argparse.ArgumentParser(
        prog="driftline",
        description="Driftline: drift, quality and anomaly monitoring of models on Kafka.",
        epilog="`driftline COMMAND --help` shows a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_commands.add_parsers(commands)
    local_commands.add_parser(commands)
    setup_commands.add_parsers(commands)
    pipeline_commands.add_parsers(commands)
    replay_commands.add_parsers(commands)
    results_commands.add_parsers(commands)
    alert_commands.add_parsers(commands)
    api_commands.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error argparse reported (2)
        return stop.code if isinstance(stop.code, int) else USAGE_ERROR
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigurationError as error:
        # Ours say what to do next; a traceback would only bury that line.
        sys.stderr.write(f"driftline {args.command}: error: {error}\n")
        return USAGE_ERROR
    except DriftlineError as error:
        sys.stderr.write(f"driftline {args.command}: error: {error}\n")
        return RUNTIME_ERROR
