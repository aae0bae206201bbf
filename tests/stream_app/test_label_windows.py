"""Packed label windows: stage 1 sends all windows of one (partition, model) a batch labeled
in one message; stage 2 reads them back exactly as the per-window messages they replace."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.errors import InvalidEventError
from driftline.limits import MAX_MESSAGE_BYTES
from stream_app import messages
from tests.examples import examples
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import RUNTIME

CHECKPOINT = {"p": 41, "l": 7}


def window(start: float, n: int, label: str = "1", indexes: bool = False) -> messages.LabelsMessage:
    return messages.LabelsMessage(
        "churn",
        start,
        start + 60,
        [label] * n,
        ["0"] * n,
        [0.25] * n,
        3,
        "pj" * (n // 2) + "p" * (n % 2),
        list(range(n)),
        list(range(100, 100 + n)),
        dict(CHECKPOINT),
        list(range(n)) if indexes else [],
    )


def unpacked(packs: list[bytes]) -> list[messages.StageMessage]:
    return [message for raw in packs for message in messages.decode_all(raw)]


@settings(max_examples=examples(60), deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
    indexes=st.booleans(),
)
def test_a_pack_reads_back_as_the_windows_it_packed(sizes: list[int], indexes: bool) -> None:
    windows = [window(60.0 * i, n, indexes=indexes) for i, n in enumerate(sizes)]
    packs = messages.encode_label_windows(windows)
    assert unpacked(packs) == windows
    for raw in packs:
        carried = messages.decode_all(raw)
        pairs = sum(len(m.y_true) for m in carried if isinstance(m, messages.LabelsMessage))
        assert len(carried) == 1 or pairs <= messages.PACK_PAIRS
        assert len(raw) <= MAX_MESSAGE_BYTES
    assert len(packs) < len(windows) or len(windows) == 1 or sum(sizes) > messages.PACK_PAIRS


def test_windows_with_long_labels_are_split_below_the_message_limit() -> None:
    long_label = "x" * 300
    windows = [window(60.0 * i, 1000, label=long_label) for i in range(4)]  # ~300 KB each
    packs = messages.encode_label_windows(windows)
    assert len(packs) >= 2
    assert all(len(raw) <= MAX_MESSAGE_BYTES for raw in packs)
    assert unpacked(packs) == windows


def test_a_pack_names_one_partition_model_and_checkpoint() -> None:
    other = messages.LabelsMessage("other", 0.0, 60.0, ["1"], ["1"], [0.5], 3, "p", [1], [2])
    with pytest.raises(ValueError, match="one partition, model and checkpoint"):
        messages.encode_label_windows([window(0.0, 2), other])


def test_the_single_message_decoder_of_older_workers_refuses_a_pack_naming_the_fix() -> None:
    (raw,) = messages.encode_label_windows([window(0.0, 2)])
    with pytest.raises(InvalidEventError, match="upgrade the worker"):
        messages.decode(raw)


@pytest.mark.parametrize(
    "change",
    [
        lambda data: data.pop("windows"),
        lambda data: data["windows"][0].pop(),  # a field short
        lambda data: data.update(windows=[["not", "a", "window"]]),
    ],
)
def test_a_malformed_pack_is_an_invalid_event(change: object) -> None:
    (raw,) = messages.encode_label_windows([window(0.0, 2), window(60.0, 3)])
    data = orjson.loads(raw)
    change(data)  # type: ignore[operator]
    with pytest.raises(InvalidEventError, match="malformed internal message"):
        messages.decode_all(orjson.dumps(data))


def test_other_messages_read_back_alone() -> None:
    late = messages.LateMessage("churn", 0.0, 60.0, 4, 1, [5], [4])
    assert messages.decode_all(messages.encode(late)) == [late]


def test_stage1_sends_one_message_for_the_windows_a_label_batch_touched() -> None:
    events = list(scenario.events(windows=6, per_window=40, drift_from=99, decay_from=99))
    pipeline = LocalPipeline(RUNTIME, 1)
    asyncio.run(pipeline.feed_predictions(events))
    labels = [pipeline.message("label", e.prediction_id, e.label_json(), 0) for e in events[::2]]
    pipeline.to_stage2.clear()
    asyncio.run(pipeline.stage1.process(labels))
    carried = [messages.decode_all(value) for _key, value, _partition in pipeline.to_stage2]
    packs = [
        [m for m in c if isinstance(m, messages.LabelsMessage)]
        for c in carried
        if all(isinstance(m, messages.LabelsMessage) for m in c)
    ]
    assert len(packs) == 1
    assert sorted(m.window_start for m in packs[0]) == [
        scenario.START + w * scenario.WINDOW for w in range(6)
    ]
    assert sum(len(m.y_true) for m in packs[0]) == len(labels)
