"""Baselines: a model registered without a reference takes its first windows as one.

Until a model has a reference profile there are no bins to count into, so stage 1 keeps, per
(partition, window), the exact event count and a bounded uniform sample of the raw rows
(reservoir sampling, ``PARTITION_SAMPLE`` rows). Stage 2 merges the partitions' samples into
one of at most ``WINDOW_SAMPLE`` rows per window, keeping each partition's share
proportional to its count. When ``baseline_windows`` baseline windows are final, their
samples are profiled like a reference file would be, the profile is stored as the model's
reference (``source = "baseline: …"``) and every later window is judged against it.

Baseline windows report their volume and quality metrics but no drift (they *are* the
reference). A window that some partition had already started before it learned of the new
profile stays a baseline window too, so no window is judged on a mix of sampled and binned
data; with the default registry refresh that is at most the window in progress.

Samples are deterministic (seeded by window and position), so a replay samples the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd

from detectors import ReferenceProfile
from registration.profiling import profile_reference
from stream_app.registry import ModelRuntime

PARTITION_SAMPLE = 1000
WINDOW_SAMPLE = 2000


def is_sample(payload: bytes) -> bool:
    """Sample partials are JSON; window states are deflated (they start with 0x78)."""
    return payload[:1] == b"{"


@dataclass
class BaselineSample:
    """The exact count of a window's events and a uniform sample of their rows."""

    n: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rows: Sequence[dict[str, Any]], capacity: int, seed: str) -> None:
        rng = random.Random(f"{seed}|{self.n}")
        for row in rows:
            if len(self.rows) < capacity:
                self.rows.append(row)
            else:
                slot = rng.randrange(self.n + 1)
                if slot < capacity:
                    self.rows[slot] = row
            self.n += 1

    def merge(self, other: BaselineSample, capacity: int, seed: str) -> BaselineSample:
        total = self.n + other.n
        if len(self.rows) + len(other.rows) <= capacity or total == 0:
            return BaselineSample(total, self.rows + other.rows)
        rng = random.Random(f"{seed}|{total}")
        mine = min(len(self.rows), round(capacity * self.n / total))
        theirs = min(len(other.rows), capacity - mine)
        return BaselineSample(total, rng.sample(self.rows, mine) + rng.sample(other.rows, theirs))

    def to_bytes(self) -> bytes:
        return orjson.dumps({"baseline": 1, "n": self.n, "rows": self.rows})

    @classmethod
    def from_bytes(cls, raw: bytes) -> BaselineSample:
        data = orjson.loads(raw)
        return cls(int(data["n"]), list(data["rows"]))


def rows_of(runtime: ModelRuntime, events: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per event: its features (the declared ones, if any) and outputs."""
    declared = runtime.config.features
    rows = []
    for event in events:
        features = event.features
        row = {name: features.get(name) for name in declared} if declared else dict(features)
        row["prediction"] = event.prediction
        score = event.score
        row["score"] = max(score) if isinstance(score, list) and score else score
        rows.append(row)
    return rows


def profile_from_samples(
    runtime: ModelRuntime, samples: Sequence[BaselineSample]
) -> ReferenceProfile:
    """Profile the baseline windows' rows as if they were a reference file."""
    frame = pd.DataFrame([row for sample in samples for row in sample.rows])
    empty = [column for column in frame.columns if frame[column].isna().all()]
    return profile_reference(runtime.config, frame.drop(columns=empty))
