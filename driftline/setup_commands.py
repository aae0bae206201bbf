"""``driftline topics create`` and ``driftline db upgrade``: what a deployment does once before
its workers start (docker-compose.yml runs both as one-shot services).

Workers create neither on their own terms: a producer auto-creating the input topics would
give them one partition, and several workers migrating one database at once would race.
Both commands can run again: existing topics and an up-to-date database are left as they are.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from driftline.errors import ConfigurationError


def add_parsers(commands: Any) -> None:
    topics = commands.add_parser("topics", help="create the topics a deployment needs")
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create the input, internal and output topics (existing ones are kept)",
        description="Create predictions, labels and label-join with --partitions partitions "
        "(the most workers that share the stream), window-partials with --stage2-partitions, "
        "and the retrain-triggers and dead-letter topics.",
    )
    create.add_argument("--partitions", type=int, default=4, help="of the input topics (4)")
    create.add_argument(
        "--stage2-partitions", type=int, default=None, help="of window-partials (the worker's)"
    )
    create.add_argument("--bootstrap", help="host:port of the broker (default: DRIFTLINE_BROKER)")
    create.add_argument("--topic-prefix", help="default: DRIFTLINE_TOPIC_PREFIX")
    create.add_argument("--config", help="TOML or JSON file of worker settings (DRIFTLINE_* wins)")
    create.set_defaults(handler=_create_topics)

    db = commands.add_parser("db", help="the results database: migrate it")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = db_actions.add_parser(
        "upgrade", help="migrate the database to this version's schema (a no-op when it is)"
    )
    upgrade.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    upgrade.set_defaults(handler=_upgrade)


def _create_topics(args: argparse.Namespace) -> int:
    from driftline.local.kafka_client import create_topics
    from driftline.pipeline_commands import broker_address
    from schemas.topics import Topics
    from stream_app.settings import load_settings

    settings = load_settings(args.config)
    stage2 = args.stage2_partitions or settings.stage2_partitions
    for name, value in (("--partitions", args.partitions), ("--stage2-partitions", stage2)):
        if value < 1:
            raise ConfigurationError(f"{name} must be at least 1, got {value}")
    bootstrap = broker_address(args.bootstrap, settings)
    prefix = settings.topic_prefix if args.topic_prefix is None else args.topic_prefix
    topics = Topics.with_prefix(prefix)
    inputs = [topics.predictions, topics.labels, topics.label_join]
    security = settings.kafka_security()
    create_topics(bootstrap, inputs, args.partitions, security=security)
    create_topics(bootstrap, [topics.window_partials], stage2, security=security)
    create_topics(bootstrap, [topics.retrain_triggers, topics.dead_letter], 1, security=security)
    sys.stdout.write(
        f"topics on {bootstrap}: {', '.join(inputs)} ({args.partitions} partitions), "
        f"{topics.window_partials} ({stage2}), {topics.retrain_triggers} and "
        f"{topics.dead_letter} (1)\n"
    )
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from storage.db import make_engine
    from storage.migrate import current_revision, upgrade
    from stream_app.settings import load_settings

    engine = make_engine(args.database_url or load_settings().database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    change = "already at" if before == after else f"migrated from {before or 'nothing'} to"
    sys.stdout.write(f"database {engine.url.render_as_string()}: {change} {after}\n")
    return 0
