"""Topic names: versioned defaults and prefixes."""

from __future__ import annotations

import pytest

from driftline.errors import ConfigurationError
from schemas import Topics


def test_defaults() -> None:
    assert Topics().as_dict() == {
        "predictions": "driftline.predictions.v1",
        "labels": "driftline.labels.v1",
        "window_partials": "driftline.window-partials.v1",
        "retrain_triggers": "driftline.retrain-triggers.v1",
        "dead_letter": "driftline.dead-letter.v1",
        "label_join": "driftline.label-join.v1",
    }


@pytest.mark.parametrize("prefix", ["", "test123.", "staging_", "a-b."])
def test_prefix_applies_to_every_topic(prefix: str) -> None:
    prefixed = Topics.with_prefix(prefix).as_dict()
    assert prefixed == {name: prefix + topic for name, topic in Topics().as_dict().items()}


@pytest.mark.parametrize("prefix", ["has space.", "ümlaut.", "x" * 230, "slash/"])
def test_illegal_names_are_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="not a legal Kafka topic name"):
        Topics.with_prefix(prefix)


def test_single_topic_override() -> None:
    assert Topics(labels="my-labels").labels == "my-labels"
    with pytest.raises(ConfigurationError, match="topic labels: '' is not"):
        Topics(labels="")
