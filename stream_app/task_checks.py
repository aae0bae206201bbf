"""Whether a prediction or a label can enter its model's quality state, decided in stage 1.

A label outside the model's classes (``"7"``, ``true`` or ``2.5`` for classes ``["0", "1"]``),
a classifier's prediction that is not a class, or a score that is not a probability would
only fail in stage 2, where labeled pairs of many messages travel together: one bad value
would make the whole group fail there, long after its message was acknowledged. Checked
here, the message that carries it goes to the dead-letter topic with the reason and nothing
else is affected.

The check *is* stage 2's acceptance: it runs the values through a throwaway quality state
of the model's task (the same code that counts them later), so the two can never disagree.

Examples
--------
>>> from detectors import QualityTask
>>> check = TaskCheck(QualityTask("binary", classes=("0", "1"), positive_class="1"))
>>> check.label_error("1") is None, check.label_error(1) is None
(True, True)
>>> check.label_error("7")
"label value '7' is not one of the classes ['0', '1']"
>>> check.predictions_error(["0", "1"], [0.2, 1.5])
'scores must be probabilities in [0, 1], got 1.5'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors import QualityTask
from detectors.encoding import category_key
from detectors.quality import ClassificationState, empty_quality_state
from driftline.errors import InvalidInputError

# Regression values beyond this would make squared errors overflow once paired (stage 2
# would then refuse a whole group of pairs): refused on their own instead.
REGRESSION_LIMIT = 1e100


class TaskCheck:
    """Validates labels and predictions (with their scores) against one model's task.

    A cheap test accepts the common case (every value a class, every score a float in
    [0, 1]); anything it does not certify is judged by the exact check, which also words
    the reason. The cheap test only ever says "valid" for what the exact one accepts
    (property-tested).
    """

    def __init__(self, task: QualityTask) -> None:
        self.task = task
        self._class_keys = frozenset(task.classes)

    def labels_certainly_ok(self, labels: Sequence[Any]) -> bool:
        """True when every one of ``labels`` is certainly a label :meth:`label_error`
        accepts; False says only that some need :meth:`label_error` one by one."""
        return self._outcomes_certainly_ok(labels)

    def label_error(self, label: Any) -> str | None:
        """Why ``label`` cannot be counted as a true label, or None when it can."""
        if self._outcomes_certainly_ok([label]):
            return None
        beyond = self._beyond_limit([label])
        if beyond is not None:
            return f"label {beyond}"
        # A label is paired with a prediction of the same class set, so checking it as both
        # sides of one pair tests exactly what stage 2 will do with it.
        reason = self._exact_error([label], [label], None)
        if reason is None:
            return None
        return reason.replace("y_true value", "label value", 1)

    def predictions_error(
        self, predictions: Sequence[Any], scores: Sequence[Any] | None
    ) -> str | None:
        """Why these predictions (and scores) cannot be counted, or None when they can."""
        if len(predictions) == 0:
            return None
        if self._outcomes_certainly_ok(predictions) and self._scores_certainly_ok(scores):
            return None
        beyond = self._beyond_limit(predictions)
        if beyond is not None:
            return f"prediction {beyond}"
        truth = _any_valid_labels(self.task, len(predictions))
        reason = self._exact_error(truth, predictions, scores)
        if reason is None:
            return None
        return reason.replace("y_pred value", "prediction value", 1)

    def _outcomes_certainly_ok(self, values: Sequence[Any]) -> bool:
        # Distinct values by type first (C-speed): True == 1 for a set, but they are
        # different classes, so a plain set is only sound when one type is present.
        types = set(map(type, values))
        if self.task.kind == "regression":
            if not types <= {int, float}:
                return False
            return all(abs(value) <= REGRESSION_LIMIT for value in set(values))
        if len(types) != 1 or not types <= {str, int}:
            return False
        return all(category_key(value) in self._class_keys for value in set(values))

    def _beyond_limit(self, values: Sequence[Any]) -> str | None:
        if self.task.kind != "regression":
            return None
        for value in values:
            if (
                type(value) in (int, float)
                and math.isfinite(value)
                and abs(value) > REGRESSION_LIMIT
            ):
                return (
                    f"{value!r} is beyond ±{REGRESSION_LIMIT:g}: its squared error would overflow"
                )
        return None

    def _scores_certainly_ok(self, scores: Sequence[Any] | None) -> bool:
        if scores is None or self.task.kind == "regression":
            return True
        types = set(map(type, scores))
        if self.task.kind != "binary" or not types <= {float, type(None)}:
            return types <= {type(None)}
        if type(None) in types:
            scores = [score for score in scores if score is not None]
        array = np.fromiter(scores, dtype=np.float64, count=len(scores))
        # Written so that NaN fails: it fails every comparison.
        return bool(((array >= 0.0) & (array <= 1.0)).all())

    def _exact_error(self, y_true: Sequence[Any], y_pred: Sequence[Any], scores: Any) -> str | None:
        state = empty_quality_state(self.task)
        try:
            if isinstance(state, ClassificationState):
                state.update(y_true, y_pred, scores)
            else:
                state.update(y_true, y_pred)
        except InvalidInputError as exc:
            return str(exc)
        return None


def _any_valid_labels(task: QualityTask, n: int) -> list[Any]:
    # Stand-ins for the true side, so that only the predictions are judged.
    if task.kind == "regression":
        return [0.0] * n
    return [task.classes[0]] * n
