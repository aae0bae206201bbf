"""``driftline replay``: a file of past predictions (and labels) onto the topics, then the end.

The events go out in event-time order through the producer helper (predictions in envelopes
per partition, labels in envelopes), as fast as the broker takes them or at ``--rate``
events per second, with a progress bar on stderr (rich: events/s and time left). When all
are on the broker, an end-of-stream marker closes every window of the replay: by default at
the end of the last prediction's window plus the model's allowed lateness, so the last
window closes and every window's label horizon stays open for the replay's own labels.
The summary at the end says what was sent, the span of event time and the marker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftline.errors import ConfigurationError, ServiceError
from driftline.replay import ReplayColumns, ReplayEvents, load_events

LABELS_PER_SEND = 5000


def add_parsers(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="send a file of past predictions (and labels) to the topics, then close its windows",
        description="Replay a CSV, Parquet or JSON-lines file of predictions (and labels) "
        "onto the topics in event-time order, then send the end-of-stream marker so that "
        "every window of the replay is evaluated. The model must be registered.",
    )
    replay.add_argument("model_id", metavar="MODEL", help="the registered model the rows are of")
    replay.add_argument(
        "predictions", type=Path, help="the predictions file (.csv, .parquet, .jsonl)"
    )
    replay.add_argument("--labels", type=Path, help="a file of labels (prediction id, label, time)")
    names = replay.add_argument_group("column names (when the file's differ from the contract's)")
    names.add_argument("--id-column", default="prediction_id")
    names.add_argument("--timestamp-column", default="timestamp", help="ISO 8601 or epoch seconds")
    names.add_argument("--prediction-column", default="prediction")
    names.add_argument("--score-column", default="score", help="used when the file has it")
    names.add_argument("--label-column", default="label", help="used when the file has it")
    names.add_argument("--label-delay-column", help="seconds from each prediction to its label")
    names.add_argument("--label-timestamp-column", help="when each label arrived")
    names.add_argument(
        "--features", help="comma-separated feature columns (default: every other column)"
    )
    replay.add_argument(
        "--label-delay",
        type=float,
        default=0.0,
        help="seconds from a prediction to its label, for every row (default 0)",
    )
    replay.add_argument(
        "--rate", type=float, help="events per second (default: as fast as possible)"
    )
    replay.add_argument("--batch-size", type=int, default=500, help="records per envelope (500)")
    replay.add_argument(
        "--no-end",
        action="store_true",
        help="send no end-of-stream marker (live traffic follows on the same topics)",
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument("--bootstrap", help="host:port of the broker (default: DRIFTLINE_BROKER)")
    replay.add_argument("--topic-prefix", help="default: DRIFTLINE_TOPIC_PREFIX")
    replay.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    replay.add_argument("--config", help="TOML or JSON file of worker settings (DRIFTLINE_* wins)")
    replay.set_defaults(handler=_replay)


@dataclass(frozen=True)
class Sent:
    predictions: int
    labels: int
    envelopes: int
    seconds: float
    marker: float | None
    partitions: int


def _replay(args: argparse.Namespace) -> int:
    from driftline.pipeline_commands import broker_address, open_sessions
    from schemas.model_config import ModelConfig
    from schemas.topics import Topics
    from storage import catalog
    from stream_app.settings import load_settings

    if args.rate is not None and args.rate <= 0:
        raise ConfigurationError(f"--rate must be above 0, got {args.rate}")
    if not 1 <= args.batch_size <= 10_000:
        raise ConfigurationError(f"--batch-size must be 1 to 10,000, got {args.batch_size}")
    settings = load_settings(args.config)
    with open_sessions(args.database_url or settings.database_url)() as session:
        record = catalog.get_model(session, args.model_id)
    if record is None or record.deleted_at is not None:
        raise ConfigurationError(
            f"model {args.model_id!r} is not registered: the worker would drop its events; "
            "register it first (driftline models register --config ...)"
        )
    config = ModelConfig.from_dict(record.config)
    columns = ReplayColumns(
        prediction_id=args.id_column,
        timestamp=args.timestamp_column,
        prediction=args.prediction_column,
        score=args.score_column,
        label=args.label_column,
        label_delay=args.label_delay_column,
        label_timestamp=args.label_timestamp_column,
        features=tuple(f.strip() for f in args.features.split(",")) if args.features else (),
    )
    events = load_events(
        args.model_id,
        config.task,
        args.predictions,
        columns,
        labels_file=args.labels,
        label_delay=args.label_delay,
    )
    bootstrap = broker_address(args.bootstrap, settings)
    prefix = settings.topic_prefix if args.topic_prefix is None else args.topic_prefix
    end = None if args.no_end else _end_of_replay(events, config)
    sent = asyncio.run(
        _send(
            events,
            bootstrap,
            Topics.with_prefix(prefix),
            args.rate,
            args.batch_size,
            end,
            args.quiet,
            settings.kafka_security(),
        )
    )
    sys.stdout.write(_summary(events, sent) + "\n")
    return 0


def _end_of_replay(events: ReplayEvents, config: Any) -> float | None:
    """The marker's time: the end of the last prediction's window plus the lateness."""
    if not len(events.prediction_times):
        return None
    size = float(config.window_seconds)
    last = float(events.prediction_times[-1])
    return (last // size + 1) * size + float(config.allowed_lateness_seconds) + 1.0


async def _send(
    events: ReplayEvents,
    bootstrap: str,
    topics: Any,
    rate: float | None,
    batch_size: int,
    end: float | None,
    quiet: bool,
    security: Any,
) -> Sent:
    from aiokafka.errors import KafkaError
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from driftline.producer import PredictionProducer

    producer = PredictionProducer(
        bootstrap, topics=topics, batch_size=batch_size, security=security
    )
    started = time.monotonic()
    progress = Progress(
        TextColumn("replaying {task.fields[model]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10} events/s"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    predictions = labels = 0
    try:
        async with producer:
            with progress:
                task = progress.add_task(
                    "replay", total=events.total, model=events.model_id, rate="-"
                )
                pending: list[tuple[str, Any, float | None]] = []
                for done, (kind, item) in enumerate(events.in_time_order(), start=1):
                    if kind == "prediction":
                        await producer.predict(
                            events.model_id,
                            item["prediction_id"],
                            item["timestamp"],
                            item["features"],
                            item["prediction"],
                            item.get("score"),
                        )
                        predictions += 1
                    else:
                        pending.append(item)
                        labels += 1
                        if len(pending) >= LABELS_PER_SEND:
                            await producer.labels(events.model_id, pending)
                            pending = []
                    if done % 1000 == 0 or done == events.total:
                        speed = done / max(time.monotonic() - started, 1e-9)
                        progress.update(task, completed=done, rate=f"{speed:,.0f}")
                    if rate is not None and done % 50 == 0:
                        ahead = done / rate - (time.monotonic() - started)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                if pending:
                    await producer.labels(events.model_id, pending)
                await producer.flush()
                stream_end = await producer.end_of_stream(end) if end is not None else None
    except (KafkaError, OSError) as error:
        raise ServiceError(
            f"cannot replay to {bootstrap} ({error}); is the broker running and is "
            "--bootstrap (or DRIFTLINE_BROKER) right? Events already sent stay on the topics: "
            "a second replay would count them twice"
        ) from None
    return Sent(
        predictions,
        labels,
        producer.sent_envelopes,
        time.monotonic() - started,
        stream_end.watermark if stream_end else None,
        len(stream_end.partitions) if stream_end else 0,
    )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _summary(events: ReplayEvents, sent: Sent) -> str:
    span = events.span()
    when = f" from {_iso(span[0])} to {_iso(span[1])}" if span else ""
    rate = (sent.predictions + sent.labels) / max(sent.seconds, 1e-9)
    lines = [
        f"replayed {sent.predictions:,} predictions and {sent.labels:,} labels of "
        f"{events.model_id} ({sent.envelopes:,} envelopes){when} in {sent.seconds:.1f} s "
        f"({rate:,.0f} events/s)",
        f"features: {', '.join(events.features)}",
    ]
    if sent.marker is not None:
        lines.append(
            f"end of stream at {_iso(sent.marker)} sent to {sent.partitions} partitions: every "
            "window of the replay closes within a timer tick of the worker reading it"
        )
    else:
        lines.append("no end-of-stream marker sent: the last windows close as live traffic goes on")
    return "\n".join(lines)
