"""Running counts a worker logs and exposes: what came in, what was set aside, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
    triggers: int = 0
    expired_messages: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
