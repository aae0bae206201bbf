"""The cheap acceptance of labels and predictions never accepts what stage 2 would refuse."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from detectors import QualityTask
from stream_app.task_checks import REGRESSION_LIMIT, TaskCheck

BINARY = TaskCheck(QualityTask("binary", classes=("0", "1"), positive_class="1"))
MULTI = TaskCheck(QualityTask("multiclass", classes=("a", "b", "c")))
REGRESSION = TaskCheck(QualityTask("regression"))

outcomes = st.one_of(
    st.sampled_from(["0", "1", "a", "b", "c", "true", "7", ""]),
    st.integers(-2, 3),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)
scores = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-1, 2),
    st.booleans(),
    st.lists(st.floats(0, 1), min_size=0, max_size=4),
)


def _within(check: TaskCheck, values: list[Any]) -> bool:
    # The documented bound on regression values (their squared errors must stay finite).
    return check.task.kind != "regression" or not any(
        type(v) in (int, float) and abs(v) > REGRESSION_LIMIT and abs(v) != float("inf")
        for v in values
    )


def _exact(check: TaskCheck, predictions: list[Any], given_scores: list[Any]) -> bool:
    truth = [0.0 if check.task.kind == "regression" else check.task.classes[0]] * len(predictions)
    exact = check._exact_error(truth, predictions, given_scores) is None
    return exact and _within(check, predictions)


@given(st.lists(st.tuples(outcomes, scores), min_size=1, max_size=30))
def test_predictions_are_accepted_exactly_when_stage_2_accepts_them(
    rows: list[tuple[Any, Any]],
) -> None:
    predictions = [p for p, _ in rows]
    given_scores = [s for _, s in rows]
    for check in (BINARY, MULTI, REGRESSION):
        accepted = check.predictions_error(predictions, given_scores) is None
        assert accepted == _exact(check, predictions, given_scores)


@given(outcomes)
def test_labels_are_accepted_exactly_when_stage_2_accepts_them(label: Any) -> None:
    for check in (BINARY, MULTI, REGRESSION):
        accepted = check.label_error(label) is None
        exact = check._exact_error([label], [label], None) is None
        assert accepted == (exact and _within(check, [label]))
