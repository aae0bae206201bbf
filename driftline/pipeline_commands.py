"""``driftline worker``, ``driftline models …`` and ``driftline flush``: run the stream,
manage registered models, close the windows of a replay."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from driftline.errors import ConfigurationError


def add_parsers(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run a stream worker (Faust) until SIGTERM")
    worker.add_argument("--config", help="TOML or JSON file of worker settings (DRIFTLINE_* wins)")
    worker.add_argument(
        "--alerts",
        metavar="ALERTS_YAML",
        help="alert routing file: this worker relays notifications too (wins over alerts_file)",
    )
    worker.set_defaults(handler=_worker)

    models = commands.add_parser("models", help="register, list and delete models")
    actions = models.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register or update a model")
    register.add_argument(
        "--config",
        required=True,
        help="a model configuration, or a deployment file with models and alert_routing "
        "(YAML or JSON; examples/driftline.yaml)",
    )
    register.add_argument("--reference", help="reference data (.csv or .parquet)")
    register.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    register.set_defaults(handler=_register)
    listing = actions.add_parser("list", help="list registered models")
    listing.add_argument(
        "--include-deleted", action="store_true", help="also deleted models (with deleted_at)"
    )
    listing.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    listing.set_defaults(handler=_list)
    delete = actions.add_parser(
        "delete",
        help="delete a model: workers stop monitoring it, its history stays (register restores)",
    )
    delete.add_argument("model_id", metavar="MODEL_ID")
    delete.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    delete.set_defaults(handler=_delete)

    flush = commands.add_parser(
        "flush",
        help="after a historical replay: close its last windows now (end-of-stream marker)",
        description="Publish an end-of-stream marker to every partition of the predictions "
        "topic: workers move each partition's watermark to --until, closing every window "
        "that ends (plus its allowed lateness) by then. Predictions older than --until that "
        "arrive afterwards count as late. Broker and topic prefix default to the worker's "
        "settings (DRIFTLINE_BROKER, DRIFTLINE_TOPIC_PREFIX, --config).",
    )
    flush.add_argument(
        "--until",
        help="watermark: ISO 8601 (no offset means UTC) or epoch seconds; default: now",
    )
    flush.add_argument("--bootstrap", help="Kafka bootstrap servers, host:port[,host:port]")
    flush.add_argument("--topic-prefix", help="prefix of the topic names (default: the worker's)")
    flush.add_argument("--config", help="TOML or JSON file of worker settings (DRIFTLINE_* wins)")
    flush.set_defaults(handler=_flush)


def _worker(args: argparse.Namespace) -> int:
    from stream_app.settings import load_settings
    from stream_app.worker import run_worker

    overrides = {"alerts_file": args.alerts} if args.alerts else {}
    run_worker(load_settings(args.config, **overrides))
    return 0


def open_sessions(database_url: str | None) -> Any:
    """Sessions on ``database_url`` (default: the worker's), migrated first."""
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade
    from stream_app.settings import load_settings

    url = database_url or load_settings().database_url
    engine = make_engine(url)
    upgrade(engine)
    return session_factory(engine)


def _register(args: argparse.Namespace) -> int:
    from pathlib import Path

    from registration import register_model
    from schemas.config_file import load_models

    path = Path(args.config)
    if not path.exists():
        raise ConfigurationError(f"model configuration {path} does not exist")
    models = load_models(path)
    if args.reference and len(models) > 1:
        raise ConfigurationError(
            f"--reference names one file but {path} has {len(models)} models; give each its "
            "reference in the file"
        )
    sessions = open_sessions(args.database_url)
    for config, reference in models:
        reference = Path(args.reference) if args.reference else reference
        # One transaction per model: a bad reference of the third leaves the first two.
        with sessions.begin() as session:
            profile = register_model(session, config, str(reference) if reference else None)
        detail = (
            f"reference profile {profile.fingerprint} ({profile.n_rows:,} rows, "
            f"{len(profile.features)} features, outputs: "
            f"{', '.join(profile.output_columns) or 'none'})"
            if profile
            else "no reference yet: attach one with --reference before streaming"
        )
        sys.stdout.write(f"registered model {config.model_id}: {detail}\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    from storage import catalog

    with open_sessions(args.database_url)() as session:
        for record in catalog.list_models(session, include_deleted=args.include_deleted):
            line: dict[str, Any] = {
                "model_id": record.model_id,
                "reference": record.current_fingerprint,
            }
            if args.include_deleted:
                deleted = record.deleted_at
                line["deleted_at"] = deleted.isoformat() if deleted is not None else None
            sys.stdout.write(json.dumps(line) + "\n")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from storage import catalog
    from storage.types import utcnow

    with open_sessions(args.database_url).begin() as session:
        found = catalog.delete_model(session, args.model_id, utcnow())
        record = catalog.get_model(session, args.model_id)
    if not found or record is None or record.deleted_at is None:
        raise ConfigurationError(f"no model {args.model_id!r}; see `driftline models list`")
    sys.stdout.write(
        f"deleted model {args.model_id} (at {record.deleted_at.isoformat()}): workers stop "
        "monitoring it within their registry refresh; its results stay readable, and "
        "`driftline models register` restores it\n"
    )
    return 0


class UsageError(Exception):
    """A command-line value that cannot be used; reported in one line with exit status 2."""


def _flush(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from driftline.local.kafka_client import run_coroutine
    from schemas.topics import Topics
    from stream_app.settings import load_settings

    try:
        until = parse_until(args.until)
        bootstrap = bootstrap_servers(args.bootstrap, "--bootstrap") if args.bootstrap else None
    except UsageError as error:
        # argparse's own usage errors exit 2 too; one line, so scripts can show it as is.
        sys.stderr.write(f"driftline flush: error: {error}\n")
        return 2
    settings = load_settings(args.config)
    if bootstrap is None:
        try:
            bootstrap = bootstrap_servers(settings.broker, "broker (DRIFTLINE_BROKER)")
        except UsageError as error:
            raise ConfigurationError(f"worker setting {error}; or give --bootstrap") from None
    prefix = settings.topic_prefix if args.topic_prefix is None else args.topic_prefix
    topics = Topics.with_prefix(prefix)
    end = run_coroutine(_publish_end(bootstrap, topics, until, settings.kafka_security()))
    moment = datetime.fromtimestamp(end.watermark, UTC).isoformat().replace("+00:00", "Z")
    sys.stdout.write(
        f"end of stream at {moment}: marker sent to {len(end.partitions)} partitions of "
        f"{topics.predictions} on {bootstrap}\n"
    )
    return 0


async def _publish_end(
    bootstrap: str, topics: Any, until: float | None, security: Any = None
) -> Any:
    import asyncio

    from aiokafka.errors import KafkaError

    from driftline.errors import ServiceError
    from driftline.producer import PredictionProducer

    producer = PredictionProducer(bootstrap, topics=topics, security=security)
    try:
        # Bounded: an unreachable broker would otherwise keep aiokafka retrying.
        async with asyncio.timeout(60), producer:
            return await producer.end_of_stream(until)
    except (KafkaError, OSError, TimeoutError) as error:
        raise ServiceError(
            f"cannot publish the end-of-stream marker on {bootstrap} ({error or 'timed out'}); "
            "is the broker running and is --bootstrap (or DRIFTLINE_BROKER) right?"
        ) from None


def moment(text: str) -> datetime:
    """``--since`` / ``--until``: ISO 8601 (no offset means UTC) or epoch seconds.

    >>> moment("2026-01-01T00:05:00Z").isoformat()
    '2026-01-01T00:05:00+00:00'
    >>> moment("2026-01-01").isoformat()
    '2026-01-01T00:00:00+00:00'
    """
    from driftline.errors import InvalidEventError
    from schemas.timestamps import to_utc_datetime

    try:
        value: str | float = float(text)
    except ValueError:
        value = text.strip()
    try:
        return to_utc_datetime(value)
    except InvalidEventError as error:
        detail = str(error).removeprefix("timestamp: ")
        raise argparse.ArgumentTypeError(
            f"{text!r}: {detail}; give ISO 8601 (2026-05-01T00:00:00Z) or epoch seconds"
        ) from None


def parse_until(text: str | None) -> float | None:
    """``--until`` as epoch seconds: ISO 8601 (no offset means UTC) or a number of seconds.

    Examples
    --------
    >>> parse_until("2026-05-01T00:00:00Z"), parse_until("1777593600"), parse_until(None)
    (1777593600.0, 1777593600.0, None)
    """
    from schemas.timestamps import to_epoch_seconds

    if text is None:
        return None
    try:
        return to_epoch_seconds(moment(text))
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"--until {error}") from None


def broker_address(given: str | None, settings: Any) -> str:
    """``--bootstrap`` when given, else the worker's ``broker`` setting, as ``host:port``;
    a ConfigurationError naming where a bad one came from."""
    where = "--bootstrap" if given else "broker (DRIFTLINE_BROKER)"
    try:
        return bootstrap_servers(given or settings.broker, where)
    except UsageError as error:
        raise ConfigurationError(str(error)) from None


def bootstrap_servers(broker: str, source: str = "broker") -> str:
    """aiokafka's ``host:port,host:port`` from a Faust broker URL (``kafka://h:p;kafka://h2:p``).

    Examples
    --------
    >>> bootstrap_servers("kafka://127.0.0.1:19092")
    '127.0.0.1:19092'
    >>> bootstrap_servers("kafka://a:9092;kafka://b:9092")
    'a:9092,b:9092'
    """
    from driftline.kafka_security import bootstrap_of

    servers = bootstrap_of(broker)
    for server in filter(None, servers.split(",")):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(
                f"{source} {broker!r}: {server!r} is not host:port; give e.g. 127.0.0.1:19092"
            )
    if not servers:
        raise UsageError(f"{source} {broker!r} names no host:port; give e.g. 127.0.0.1:19092")
    return servers
