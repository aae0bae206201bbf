"""``driftline local ...``: start, stop and inspect the local Kafka broker and PostgreSQL.

Exit codes: 0 on success, 2 on a bad setting or option, 1 on a service that fails (one line on
stderr saying what to do), and 3 from ``status`` when a service is not running (as
``pg_ctl status`` and LSB init scripts do).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from driftline.local import kafka, postgres
from driftline.local.environment import Report, ServiceStatus, printer

NOT_RUNNING = 3


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = commands.add_parser(
        "local",
        help="run a Kafka broker and PostgreSQL as local processes (development and tests)",
        description="Run a single-node Kafka broker (KRaft) and a PostgreSQL server on "
        "127.0.0.1, installed on first use. Files go to $DRIFTLINE_RUN_DIR (default ./var).",
    )
    services = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    for name, default_port, what in [
        ("kafka", kafka.DEFAULT_PORT, "the Kafka broker (its controller uses port+1)"),
        ("postgres", postgres.DEFAULT_PORT, "the PostgreSQL server"),
    ]:
        service = services.add_parser(name, help=f"start, stop or inspect {what}")
        service.add_argument("action", choices=["start", "stop", "status"])
        service.add_argument(
            "--port",
            type=int,
            default=None,
            help=f"port on 127.0.0.1 (default $DRIFTLINE_{name.upper()}_PORT or {default_port})",
        )
        _add_timeout(service)
        if name == "kafka":
            service.add_argument(
                "--secure",
                action="store_true",
                default=None,
                help="also listen with SASL_SSL (SCRAM, PLAIN) on port+2 and mutual TLS on "
                "port+3 (and TLS on 127.0.0.2:port+4 for host-name tests), certificates made "
                "on first use (or DRIFTLINE_KAFKA_SECURE=true)",
            )
    up = services.add_parser("up", help="start the Kafka broker and PostgreSQL")
    up.add_argument("--kafka-port", type=int, default=None, help="port of the Kafka broker")
    up.add_argument("--postgres-port", type=int, default=None, help="port of PostgreSQL")
    _add_timeout(up)
    down = services.add_parser("down", help="stop the Kafka broker and PostgreSQL")
    _add_timeout(down)
    services.add_parser("status", help="whether the Kafka broker and PostgreSQL are running")
    local.set_defaults(handler=lambda args: run(args, sys.stdout))


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for a service to start or stop (default 60)",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    report = printer(out)
    command = args.local_command
    if command in ("kafka", "postgres"):
        module = kafka if command == "kafka" else postgres
        if args.action == "start" and command == "kafka":
            kafka.start(args.port, timeout=args.timeout, report=report, secure=args.secure)
        elif args.action == "start":
            module.start(args.port, timeout=args.timeout, report=report)
        elif args.action == "stop":
            _stopped(module.stop(args.port, timeout=args.timeout, report=report), command, report)
        else:
            return _show([module.status()], out)
    elif command == "up":
        kafka.start(args.kafka_port, timeout=args.timeout, report=report)
        postgres.start(args.postgres_port, timeout=args.timeout, report=report)
    elif command == "down":
        _stopped(kafka.stop(timeout=args.timeout, report=report), "kafka", report)
        _stopped(postgres.stop(timeout=args.timeout, report=report), "postgres", report)
    else:
        return _show([kafka.status(), postgres.status()], out)
    return 0


def _stopped(was_running: bool, name: str, report: Report) -> None:
    if not was_running:
        report(f"{name}: was not running")


def _show(statuses: list[ServiceStatus], out: TextIO) -> int:
    for status in statuses:
        out.write(status.describe() + "\n")
    return 0 if all(status.running for status in statuses) else NOT_RUNNING
