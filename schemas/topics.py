"""Kafka topic names of the contracts, versioned and optionally prefixed.

The version is part of the name (``….v1``): a breaking change to a contract gets new topics,
so old producers and new consumers never meet on one topic. The prefix separates
environments or test runs sharing a broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from driftline.errors import ConfigurationError

# Kafka's own rule: ASCII letters, digits, '.', '_' and '-', at most 249 characters.
_LEGAL_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class Topics:
    """The topics Driftline reads and writes.

    Examples
    --------
    >>> Topics().predictions
    'driftline.predictions.v1'
    >>> Topics.with_prefix("test123.").dead_letter
    'test123.driftline.dead-letter.v1'
    """

    predictions: str = "driftline.predictions.v1"
    labels: str = "driftline.labels.v1"
    window_partials: str = "driftline.window-partials.v1"
    retrain_triggers: str = "driftline.retrain-triggers.v1"
    dead_letter: str = "driftline.dead-letter.v1"
    # Internal: prediction summaries forwarded to the partition where their label arrives.
    label_join: str = "driftline.label-join.v1"

    def __post_init__(self) -> None:
        for name, topic in self.as_dict().items():
            if not _LEGAL_TOPIC.fullmatch(topic) or topic in {".", ".."}:
                raise ConfigurationError(
                    f"topic {name}: {topic!r} is not a legal Kafka topic name "
                    "(1-249 characters from A-Z a-z 0-9 . _ -)"
                )

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        """Return the default topics with ``prefix`` put in front of every name."""
        defaults = cls()
        return cls(**{name: prefix + topic for name, topic in defaults.as_dict().items()})

    def as_dict(self) -> dict[str, str]:
        """Return ``{field name: topic name}``."""
        return {item.name: getattr(self, item.name) for item in fields(self)}
