"""A few binary pairs are counted in Python; the state is the general path's to the bit."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors import quality_classification
from detectors.quality import ClassificationState, QualityTask
from driftline.errors import InvalidInputError

TASK = QualityTask("binary", classes=("0", "1"), score_bins=10)
label = st.sampled_from([0, 1, "0", "1", 1.0])
score = st.floats(0, 1) | st.sampled_from([0.0, 1.0, 0.1, 0.7, 1e-17, 1 - 1e-17, -0.0, None])
BAD = {
    "label": [2, "x", None, math.nan, True],
    "score": [0, 1, True, -0.1, 1.1, math.nan, math.inf, "0.5"],
}


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    """Valid pairs (up to a few more than FEW_PAIRS), sometimes with one thing wrong: a bad
    label or score, or lists of different lengths."""
    n = draw(st.integers(0, 20))
    batch: list[Any] = [
        draw(st.lists(label, min_size=n, max_size=n)),
        draw(st.lists(label, min_size=n, max_size=n)),
        draw(st.none() | st.lists(score, min_size=n, max_size=n)),
    ]
    fault = draw(st.sampled_from(["none", "none", "label", "score", "length"]))
    if fault == "length":
        which = draw(st.sampled_from([1, 2]))
        batch[which] = (batch[which] or []) + [0.5 if which == 2 else 1]
    elif n and (fault == "label" or (fault == "score" and batch[2] is not None)):
        which = 2 if fault == "score" else draw(st.sampled_from([0, 1]))
        batch[which][draw(st.integers(0, n - 1))] = draw(st.sampled_from(BAD[fault]))
    return batch[0], batch[1], batch[2]


scored = st.tuples(
    st.lists(st.sampled_from([0, 1]), min_size=1, max_size=5),
    st.lists(st.floats(0, 1), min_size=5, max_size=5),
)


def _outcome(state: ClassificationState, batch: tuple[Any, Any, Any]) -> Any:
    try:
        state.update(*batch)
    except InvalidInputError as exc:
        return str(exc)
    return None


def _dump(state: ClassificationState) -> dict[str, Any]:
    return {
        key: value.tolist() if isinstance(value, np.ndarray) else value
        for key, value in state.to_dict().items()
    }


@contextmanager
def few_pairs(n: int) -> Iterator[None]:
    original = quality_classification.FEW_PAIRS
    quality_classification.FEW_PAIRS = n
    try:
        yield
    finally:
        quality_classification.FEW_PAIRS = original


@given(before=scored, batch=pairs())
def test_a_few_pairs_give_the_general_paths_state(
    before: tuple[list[int], list[float]], batch: tuple[Any, Any, Any]
) -> None:
    truth, scores = before
    states = []
    outcomes = []
    for few in (quality_classification.FEW_PAIRS, 0):  # 0: the general path only
        with few_pairs(few):
            state = ClassificationState.empty(TASK).update(truth, truth, scores[: len(truth)])
            outcomes.append(_outcome(state, batch))
        states.append(_dump(state))
    assert outcomes[0] == outcomes[1]
    assert states[0] == states[1]  # log_loss_sum included, exactly


def test_a_few_valid_pairs_take_the_small_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    general = ClassificationState._encode

    def counted(self: ClassificationState, labels: Any, what: str) -> Any:
        calls.append(what)
        return general(self, labels, what)

    monkeypatch.setattr(ClassificationState, "_encode", counted)
    state = ClassificationState.empty(TASK).update([1, "0"], [1, 1], [0.9, None])
    assert calls == []
    assert state.n_labeled == 2 and state.n_scored == 1
    state.update([1] * 17, [1] * 17, [0.5] * 17)  # more than FEW_PAIRS: numpy
    assert calls == ["y_true", "y_pred"]


@given(
    truth=st.lists(st.sampled_from([0, 1]), min_size=17, max_size=60),
    floats=st.lists(
        st.floats(0, 1) | st.sampled_from([-0.0, 1.0, -0.1, 1.1, math.nan, math.inf]),
        min_size=60,
        max_size=60,
    ),
)
def test_a_list_of_float_scores_gives_each_scores_own_answer(
    truth: list[int], floats: list[float]
) -> None:
    """Many binary scores, all floats, are read by numpy as a list (no ``as_float`` each);
    the same scores as a tuple go one by one. Same state, same error."""
    scores = floats[: len(truth)]
    fast, strict = ClassificationState.empty(TASK), ClassificationState.empty(TASK)
    assert _outcome(fast, (truth, truth, scores)) == _outcome(strict, (truth, truth, tuple(scores)))
    assert _dump(fast) == _dump(strict)


def test_float_scores_in_a_list_skip_the_per_score_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def as_float(value: Any, what: str) -> Any:
        calls.append(value)
        return value

    monkeypatch.setattr(quality_classification, "as_float", as_float)
    ClassificationState.empty(TASK).update([1] * 20, [1] * 20, [0.5] * 20)
    assert calls == []
    ClassificationState.empty(TASK).update([1] * 20, [1] * 20, [0.5] * 19 + [None])
    assert len(calls) == 19  # a None among them: each is checked


MULTICLASS = QualityTask("multiclass", classes=("3", "-1", "03", "x", "true", "2.5"))
# Per task: labels that are its classes, of every type, and labels that are not (some equal
# to a class's int in Python, as True == 1, without being that class).
LABELS = {
    TASK: ([0, 1, "0", "1", np.int64(1), 1.0, -0.0], [True, False, "01", 1.5, 2, None, math.nan]),
    MULTICLASS: (
        [3, -1, "3", "-1", "03", "x", "true", "2.5", True, 3.0, 2.5, np.int64(3)],
        [1, False, "y", 4, "1.0", -0.0, None, math.nan, "+3"],
    ),
}


@given(task=st.sampled_from([TASK, MULTICLASS]), data=st.data())
def test_a_list_of_plain_labels_gives_each_labels_own_answer(
    task: QualityTask, data: st.DataObject
) -> None:
    """A list of ``int`` and ``str`` labels is looked up as it is (no ``category_key`` each);
    the same labels as a tuple go one by one. Same state, same error, whatever the types:
    ``True == 1`` and ``3.0 == 3`` must not find the codes of the classes ``"1"`` and
    ``"3"`` unless ``category_key`` would."""
    valid, other = LABELS[task]
    labels = data.draw(st.lists(st.sampled_from(valid), min_size=34, max_size=34))
    if data.draw(st.booleans()):
        labels[data.draw(st.integers(0, 33))] = data.draw(st.sampled_from(other))
    truth, predicted = labels[0::2], labels[1::2]
    fast, strict = ClassificationState.empty(task), ClassificationState.empty(task)
    assert _outcome(fast, (truth, predicted, None)) == _outcome(
        strict, (tuple(truth), tuple(predicted), None)
    )
    assert _dump(fast) == _dump(strict)
