"""``driftline relay`` (the alert relay on its own) and ``driftline silence`` (mute alerts).

(``driftline alerts`` lists the alerts: ``driftline.results_commands``.)"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys
import uuid
from datetime import timedelta
from typing import Any

from driftline.errors import ConfigurationError
from driftline.pipeline_commands import open_sessions

log = logging.getLogger("driftline.alerts")


def add_parsers(commands: Any) -> None:
    relay = commands.add_parser(
        "relay",
        help="run the alert relay only (plan and deliver notifications) until SIGTERM",
        description="Deliver alerts to Slack and e-mail as the routing file says. Workers "
        "started with alerts_file do the same; running both is safe (no notification is "
        "sent twice).",
    )
    relay.add_argument("--alerts", required=True, help="the routing file (YAML)")
    relay.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    relay.add_argument("--interval", type=float, default=0.5, help="seconds between rounds")
    relay.add_argument("--check", action="store_true", help="check the file and secrets, exit")
    relay.set_defaults(handler=_relay)

    silence = commands.add_parser("silence", help="mute alerts that match labels, for a while")
    actions = silence.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="mute matching alerts from now on")
    add.add_argument(
        "matchers", nargs="+", help='label matchers: model=churn rule=~".*drift" severity!=critical'
    )
    add.add_argument("--duration", default="2h", help="how long: 30m, 2h, 1d (default 2h)")
    add.add_argument("--comment", required=True, help="why (shown to whoever finds it)")
    add.add_argument("--author", default=None, help="who (default: the login name)")
    add.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    add.set_defaults(handler=_silence_add)
    listing = actions.add_parser("list", help="silences in force (--all: expired ones too)")
    listing.add_argument("--all", action="store_true")
    listing.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    listing.set_defaults(handler=_silence_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id")
    expire.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    expire.set_defaults(handler=_silence_expire)


def _relay(args: argparse.Namespace) -> int:
    from alerting.relay_setup import build_alert_relay

    relay = build_alert_relay(args.alerts, open_sessions(args.database_url))
    receivers = ", ".join(
        f"{name} ({', '.join(found) or 'muted'})" for name, found in relay.integrations.items()
    )
    sys.stdout.write(f"{args.alerts}: ok; receivers: {receivers}\n")
    if args.check:
        return 0
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_run_relay(relay, args.interval))
    return 0


async def _run_relay(relay: Any, interval: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("alert relay %s running; every %.1f s (Ctrl-C stops it)", relay.owner, interval)
    reported = (0, 0, 0)
    while not stop.is_set():
        await relay.tick()
        now = (relay.sent, relay.retries, relay.failed)
        if now != reported:
            log.info("delivered %d, retried %d, failed %d so far", *now)
            reported = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("alert relay stopped; undelivered notifications stay queued for the next relay")


def _silence_add(args: argparse.Namespace) -> int:
    from alerting.matchers import Matcher
    from schemas.alert_routing import Duration
    from storage.alerts import SilenceRecord, add_silence
    from storage.types import utcnow

    try:
        matchers = [str(Matcher.parse(text)) for text in args.matchers]
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    seconds = _duration(args.duration, Duration)
    now = utcnow()
    silence = SilenceRecord(
        id=uuid.uuid4().hex[:12],
        matchers=matchers,
        starts_at=now,
        ends_at=now + timedelta(seconds=seconds),
        created_by=args.author or getpass.getuser(),
        comment=args.comment,
        created_at=now,
    )
    with open_sessions(args.database_url).begin() as session:
        add_silence(session, silence)
    sys.stdout.write(
        f"silence {silence.id}: {' '.join(matchers)} until {silence.ends_at:%Y-%m-%d %H:%M} UTC\n"
    )
    return 0


def _duration(text: str, kind: Any) -> float:
    from pydantic import TypeAdapter, ValidationError

    try:
        return float(TypeAdapter(kind).validate_python(text))
    except ValidationError:
        raise ConfigurationError(f"--duration {text!r}: write e.g. 30m, 2h or 1d") from None


def _silence_list(args: argparse.Namespace) -> int:
    from storage.alerts import list_silences
    from storage.types import utcnow

    now = utcnow()
    with open_sessions(args.database_url).begin() as session:
        found = list_silences(session, active_at=None if args.all else now)
    if not found:
        sys.stdout.write("no silences in force\n" if not args.all else "no silences\n")
    for silence in found:
        state = "active" if silence.active(now) else "expired"
        sys.stdout.write(
            f"{silence.id}  {state:7}  until {silence.ends_at:%Y-%m-%d %H:%M} UTC  "
            f"{' '.join(silence.matchers)}  ({silence.created_by}: {silence.comment})\n"
        )
    return 0


def _silence_expire(args: argparse.Namespace) -> int:
    from storage.alerts import expire_silence
    from storage.types import utcnow

    with open_sessions(args.database_url).begin() as session:
        ended = expire_silence(session, args.id, utcnow())
    if not ended:
        raise ConfigurationError(
            f"no silence {args.id!r} in force; see `driftline silence list --all`"
        )
    sys.stdout.write(f"silence {args.id} expired\n")
    return 0
