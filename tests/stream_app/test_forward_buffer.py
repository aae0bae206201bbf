"""The summaries a batch forwards, kept as column pieces and sent as segments
(``stream_app.forward_buffer``): what the receiver reads back is what the strict path (the
summaries one by one, the last of an id's winning) would have kept, whatever mix of
envelope pieces and single summaries came, and however early whole chunks went."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.forward_buffer import ForwardBuffer
from stream_app.summary_columns import Summary, SummarySegment
from tests.examples import examples

MODELS = ["churn", "fraud"]
WINDOWS = [0.0, 60.0, 1_800_000_000.0, -0.0]
PREDICTED = [0, 1, True, 1.0, "yes", 2.5, -0.0]

row = st.tuples(
    st.integers(0, 30),  # the id (a small pool: repeats)
    st.sampled_from(WINDOWS),
    st.sampled_from(PREDICTED),
    st.one_of(st.none(), st.floats(0, 1)),
    st.floats(0, 2e9),
)
step: st.SearchStrategy[tuple[str, str, list[Any]]] = st.one_of(
    st.tuples(st.just("columns"), st.sampled_from(MODELS), st.lists(row, min_size=1, max_size=12)),
    st.tuples(st.just("one"), st.sampled_from(MODELS), st.lists(row, min_size=1, max_size=1)),
    st.tuples(st.just("ready"), st.just(""), st.just([])),
)


def _received(segments: list[bytes]) -> dict[str, tuple[Any, ...]]:
    """What a receiver keeps of the segments, in the order they were sent."""
    kept: dict[str, tuple[Any, ...]] = {}
    for data in segments:
        segment = SummarySegment.from_bytes(data)
        for row_, summary in enumerate(segment.summaries(np.arange(len(segment)))):
            assert summary[6:] == ("j", -1)  # the receiver gives the origin
            kept[segment.id_at(row_)] = _exact(summary[:6])
    return kept


def _exact(values: tuple[Any, ...]) -> tuple[Any, ...]:
    # 1, 1.0 and True are equal in Python; kept apart here, as the join keeps them.
    return tuple((type(v), v.hex() if isinstance(v, float) else v) for v in values)


def _run(steps: list[tuple[str, str, list[Any]]], most: int) -> tuple[list[bytes], dict[str, Any]]:
    buffer, sent = ForwardBuffer(), []
    strict: dict[str, tuple[Any, ...]] = {}
    for kind, model, rows in steps:
        if kind == "ready":
            sent.extend(buffer.ready(most))
            continue
        ids = [f"p{number}" for number, *_ in rows]
        starts = np.array([start for _, start, *_ in rows], dtype=np.float64)
        ends = starts + 60.0
        predicted = [value for _, _, value, _, _ in rows]
        scores = [score for *_, score, _ in rows]
        expires = np.array([expiry for *_, expiry in rows], dtype=np.float64)
        for at, prediction_id in enumerate(ids):
            summary = (model, starts[at], ends[at], predicted[at], scores[at], expires[at])
            strict[prediction_id] = _exact(
                tuple(float(v) if isinstance(v, np.floating) else v for v in summary)
            )
        if kind == "columns":
            buffer.add_columns(ids, model, starts, ends, predicted, scores, expires)
        else:
            buffer.append(
                ids[0],
                Summary(
                    model,
                    float(starts[0]),
                    float(ends[0]),
                    predicted[0],
                    scores[0],
                    float(expires[0]),
                    "p",
                    7,
                ),
            )
    sent.extend(buffer.segments(most))
    return sent, strict


@settings(max_examples=examples(300), deadline=None)
@given(steps=st.lists(step, max_size=25), most=st.integers(2, 9))
def test_the_receiver_keeps_what_the_strict_path_keeps(
    steps: list[tuple[str, str, list[Any]]], most: int
) -> None:
    sent, strict = _run(steps, most)
    assert _received(sent) == strict
    assert all(len(SummarySegment.from_bytes(data)) <= most for data in sent)


@settings(max_examples=examples(200), deadline=None)
@given(sizes=st.lists(st.integers(1, 40), max_size=12), most=st.integers(2, 16))
def test_no_small_remainder_once_there_are_a_chunk_of_rows(sizes: list[int], most: int) -> None:
    """Distinct ids: every segment holds between half of ``most`` and ``most`` rows when
    the batch had at least ``most``, early (ready) or at the end."""
    buffer, sent, number = ForwardBuffer(), [], 0
    for size in sizes:
        ids = [f"p{n}" for n in range(number, number + size)]
        number += size
        starts = np.zeros(size)
        buffer.add_columns(ids, "m", starts, starts + 60, [1] * size, [0.5] * size, starts + 1)
        sent.extend(buffer.ready(most))
    early = len(sent)
    sent.extend(buffer.segments(most))
    rows = [len(SummarySegment.from_bytes(data)) for data in sent]
    assert sum(rows) == number
    assert all(size <= most for size in rows)
    if number >= most:
        assert min(rows) >= most // 2
    assert all(size == most for size in rows[:early])  # whole chunks go early
    assert len(buffer) == 0 and buffer.segments(most) == []


def test_a_chunk_that_cannot_be_built_leaves_every_row_in_the_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = ForwardBuffer()
    starts = np.zeros(6)
    ids = [f"p{n}" for n in range(6)]
    buffer.add_columns(ids, "m", starts, starts + 60, [1] * 6, [0.5] * 6, starts + 1)
    built = SummarySegment.forwarded

    def broken(*args: Any) -> SummarySegment:
        raise RuntimeError("a bug")

    monkeypatch.setattr(SummarySegment, "forwarded", broken)
    with pytest.raises(RuntimeError):
        buffer.ready(3)
    assert len(buffer) == 6
    monkeypatch.setattr(SummarySegment, "forwarded", built)
    assert set(_received(buffer.segments(3))) == set(ids)
