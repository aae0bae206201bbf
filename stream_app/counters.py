"""Running counts a worker logs and exposes: what came in, what was set aside, and why.

Its Prometheus endpoint (:mod:`stream_app.metrics`) reads this object at scrape time: every
``int`` field becomes a counter ``driftline_worker_<name>_total``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Counters:
    predictions: int = 0
    labels: int = 0
    joined: int = 0
    late: int = 0
    dead_letters: int = 0
    unmatched_labels: int = 0
    unlabeled_predictions: int = 0
    windows_finalized: int = 0
    quality_revisions: int = 0
    triggers: int = 0  # new retraining triggers committed to the outbox
    outbox_sent: int = 0  # outbox rows (triggers) the relay sent; a resend counts again
    skipped_stage2_messages: int = 0  # refused by stage 2 (e.g. a label not of the classes)
    expired_messages: int = 0
    end_of_stream_markers: int = 0
    duplicates: int = 0  # prediction ids seen again within the dedup horizon
    replayed_messages: int = 0  # stage-2 messages read again after a crash, not re-applied
    replayed_pairs: int = 0  # labeled pairs and late events stage 1 sent again, not re-applied
    replayed_input: int = 0  # input messages stage 1 read again below its checkpoint, skipped
    input_rewinds: int = 0  # input found past where a stage was, read again from there
    fetch_restarts: int = 0  # partitions Faust stopped fetching, found and read again
    commit_repairs: int = 0  # partitions whose offset commit Faust held, moved on (durable)
    stalls: int = 0  # batches or ticks logged as in progress for too long (stall_watch)
    unready_batches: int = 0  # batches that came while tables were recovering: read again
    whole_fetch_runs: int = 0  # fetches of single events taken whole, as columns (fast path)
    fetches_taken_apart: int = 0  # fetches read as columns, then taken message by message
    whole_label_fetches: int = 0  # fetches of single labels joined whole, as one run
    first_event_at: float = 0.0  # wall-clock seconds of the first prediction processed
    last_event_at: float = 0.0
    last_finalized_window_end: float = 0.0  # unix seconds: the latest end of a finalized window
    dead_letters_by_topic: dict[str, int] = field(default_factory=dict)  # input topic -> count

    def saw_predictions(self, count: int) -> None:
        now = time.time()
        self.first_event_at = self.first_event_at or now
        self.last_event_at = now
        self.predictions += count

    def dead_lettered(self, topic: str) -> None:
        self.dead_letters += 1
        self.dead_letters_by_topic[topic] = self.dead_letters_by_topic.get(topic, 0) + 1

    def finalized_window(self, window_end: float) -> None:
        self.windows_finalized += 1
        self.last_finalized_window_end = max(self.last_finalized_window_end, window_end)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
