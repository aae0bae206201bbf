"""Classification quality (binary, multiclass) as mergeable sufficient statistics.

The state is bounded by the task, never by the number of events: a C-by-C confusion matrix,
per-class histograms of the scores of positives and negatives, a log-loss sum and a count.
Metrics are read from it by :func:`detectors.quality.classification_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.encoding import FloatArray, IntArray, category_key
from detectors.quality_task import QUALITY_STATE_VERSION, QualityTask, as_float, read_state_header
from driftline.errors import ConfigurationError, IncompatibleStateError, InvalidInputError

Values = Sequence[Any] | npt.NDArray[Any]

# scikit-learn's log_loss clips probabilities to [eps, 1 - eps] so a confident miss costs
# about 36 nats instead of infinity; the same clip keeps the sums equal.
_EPS = float(np.finfo(np.float64).eps)
# Up to this many pairs, an update of a binary state counts them in Python (_update_few).
FEW_PAIRS = 16


_PLAIN_LABEL_TYPES = frozenset({int, str})


def _plain_index(index: dict[str, int]) -> dict[int | str, int]:
    """``index`` (category key to code) with each key also as the ``int`` whose
    ``category_key`` it is: ``"3"`` as ``3``, but not ``"03"`` or ``"3.5"``."""
    plain: dict[int | str, int] = {}
    for key, code in index.items():
        plain[key] = code
        try:
            number = int(key)
        except ValueError:
            continue
        if str(number) == key:
            plain[number] = code
    return plain


class ClassificationState:
    """Mergeable sufficient statistics for the quality of a binary or multiclass model.

    The state is a C-by-C confusion matrix, per-class histograms of the scores of positives
    and negatives (``score_bins`` bins each; a binary task needs only the positive class),
    the sum of per-pair log losses and the number of scored pairs. Build one with
    :meth:`empty`, count pairs with :meth:`update`, combine with :meth:`merge` or ``+=``,
    store with :meth:`to_dict` and read metrics with :func:`classification_metrics`.

    Examples
    --------
    >>> import json
    >>> task = QualityTask("binary", classes=("no", "yes"))
    >>> state = ClassificationState.empty(task)
    >>> state = state.update(["yes", "no", "yes"], ["yes", "no", "no"], [0.9, 0.2, 0.4])
    >>> other = ClassificationState.empty(task).update(["no"], ["yes"], [None])
    >>> merged = state.merge(other)
    >>> merged.n_labeled, merged.n_scored
    (4, 3)
    >>> ClassificationState.from_dict(json.loads(json.dumps(merged.to_dict()))) == merged
    True
    """

    def __init__(self, task: QualityTask) -> None:
        if task.kind not in ("binary", "multiclass"):
            raise ConfigurationError(
                f"ClassificationState needs a binary or multiclass task, got {task.kind!r}"
            )
        self._task = task
        self._index = {label: code for code, label in enumerate(task.classes)}
        self._plain_index = _plain_index(self._index)
        n_classes = len(task.classes)
        if task.kind == "binary":
            self._score_rows = np.array([task.classes.index(task.positive_class)], np.int64)
        else:
            self._score_rows = np.arange(n_classes, dtype=np.int64)
        self._confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        self._pos_hist = np.zeros((self._score_rows.size, task.score_bins), dtype=np.int64)
        self._neg_hist = np.zeros_like(self._pos_hist)
        self._log_loss_sum = 0.0
        self._n_scored = 0

    @classmethod
    def empty(cls, task: QualityTask) -> ClassificationState:
        """Return the state of a window with no labeled pairs."""
        return cls(task)

    @property
    def task(self) -> QualityTask:
        """The task this state belongs to."""
        return self._task

    @property
    def n_labeled(self) -> int:
        """Number of labeled pairs counted."""
        return int(self._confusion.sum())

    @property
    def n_scored(self) -> int:
        """Number of labeled pairs that came with a score."""
        return self._n_scored

    @property
    def confusion_matrix(self) -> IntArray:
        """Read-only confusion counts: row = true class, column = predicted class."""
        return _read_only(self._confusion)

    @property
    def score_histograms(self) -> tuple[IntArray, IntArray]:
        """Read-only score counts of positives and negatives, one row per scored class.

        Row ``r`` counts the scores of class ``task.classes[r]`` (binary: one row, for
        ``positive_class``) in ``score_bins`` uniform bins on ``[0, 1]``.
        """
        return _read_only(self._pos_hist), _read_only(self._neg_hist)

    @property
    def log_loss_sum(self) -> float:
        """Sum of the per-pair log losses of the scored pairs."""
        return self._log_loss_sum

    def update(
        self, y_true: Values, y_pred: Values, scores: Values | None = None
    ) -> ClassificationState:
        """Count a batch of labeled pairs and return ``self``.

        Parameters
        ----------
        y_true, y_pred
            True and predicted labels; each must be one of ``task.classes`` after
            :func:`~detectors.encoding.category_key`.
        scores
            Binary: the probability of ``positive_class`` per pair. Multiclass: a list of
            ``len(classes)`` probabilities per pair in the order of ``task.classes``, or
            an ``(n, len(classes))`` array. A ``None`` entry (or ``scores=None``) leaves
            the pair out of ROC AUC and log loss only.

        Raises
        ------
        InvalidInputError
            For an unknown or missing label, lengths that differ, or a score that is not
            a finite number in ``[0, 1]``. The whole batch is checked first, so the state
            is unchanged then.
        """
        if self._update_few(y_true, y_pred, scores):
            return self
        truth = self._encode(y_true, "y_true")
        predicted = self._encode(y_pred, "y_pred")
        if truth.size != predicted.size:
            raise InvalidInputError(
                f"y_true has {truth.size} values but y_pred has {predicted.size}"
            )
        parsed = None if scores is None else self._parse_scores(scores, truth.size)
        if truth.size == 0:
            return self
        n_classes = len(self._task.classes)
        pair_codes = truth * n_classes + predicted
        counts = np.bincount(pair_codes, minlength=n_classes * n_classes)
        self._confusion += counts.reshape(n_classes, n_classes)
        if parsed is not None:
            scored, probabilities = parsed
            self._add_scores(truth[scored], probabilities)
        return self

    def _update_few(self, y_true: Values, y_pred: Values, scores: Values | None) -> bool:
        """:meth:`update` of a few valid binary pairs in lists, without numpy's fixed cost
        per call (~25 µs: labels spread over many windows come a pair or two per window);
        False, changing nothing, for anything else, which the general path takes.

        The counts and bins are the general path's arithmetic on the same floats, and the
        log losses are summed by numpy as there, so the state is the same to the bit.
        """
        if (
            self._task.kind != "binary"
            or type(y_true) is not list
            or type(y_pred) is not list
            or not 0 < len(y_true) == len(y_pred) <= FEW_PAIRS
            or (scores is not None and (type(scores) is not list or len(scores) != len(y_true)))
        ):
            return False
        index = self._index
        truth = [index.get(category_key(label)) for label in y_true]  # type: ignore[arg-type]
        predicted = [index.get(category_key(label)) for label in y_pred]  # type: ignore[arg-type]
        if None in truth or None in predicted:
            return False
        if scores is not None and not all(
            score is None or (type(score) is float and 0.0 <= score <= 1.0) for score in scores
        ):
            return False  # an int, a bool, NaN or a score out of range: the general path
        for true_code, predicted_code in zip(truth, predicted, strict=True):
            self._confusion[true_code, predicted_code] += 1
        if scores is not None:
            self._add_few_scores(truth, scores)
        return True

    def _add_few_scores(self, truth: list[int | None], scores: list[float | None]) -> None:
        n_bins = self._task.score_bins
        positive_code = int(self._score_rows[0])
        p_true: list[float] = []
        for true_code, score in zip(truth, scores, strict=True):
            if score is None:
                continue
            cell = min(int(score * n_bins), n_bins - 1)  # as the general path's astype
            if true_code == positive_code:
                self._pos_hist[0, cell] += 1
                p = score
            else:
                self._neg_hist[0, cell] += 1
                p = 1.0 - score
            p_true.append(min(max(p, _EPS), 1.0 - _EPS))  # np.clip's answer for a number
        if p_true:
            # Summed by numpy, as the general path sums; -(a + b) is -a + -b exactly.
            self._log_loss_sum += -float(np.log(np.array(p_true, dtype=np.float64)).sum())
            self._n_scored += len(p_true)

    def _encode(self, labels: Values, what: str) -> IntArray:
        if isinstance(labels, str | bytes):
            raise InvalidInputError(f"{what} must be a sequence of labels, got {labels!r}")
        if isinstance(labels, np.ndarray):
            if labels.ndim != 1:
                raise InvalidInputError(f"{what} must be one-dimensional, got {labels.shape}")
            if labels.dtype.kind in "biufU":
                # Windows repeat few labels many times: normalise each distinct one once.
                uniques, inverse = np.unique(labels, return_inverse=True)
                return self._codes(uniques.tolist(), what)[inverse]
        return self._codes(labels, what)

    def _codes(self, labels: Iterable[Any], what: str) -> IntArray:
        plain = self._plain_codes(labels)
        if plain is not None:
            return plain
        codes: list[int] = []
        for label in labels:
            key = category_key(label)
            code = None if key is None else self._index.get(key)
            if code is None:
                raise InvalidInputError(
                    f"{what} value {label!r} is not one of the classes {list(self._task.classes)}"
                )
            codes.append(code)
        return np.array(codes, dtype=np.int64)

    def _plain_codes(self, labels: Iterable[Any]) -> IntArray | None:
        """The codes of a list of plain ``int`` and ``str`` labels, all of them classes,
        looked up as they are; ``None`` for anything else, which ``category_key`` decides.

        Why: labels arrive as JSON ints or strings, and a window's batch holds hundreds;
        a ``category_key`` per label was a tenth of what stage 2 spent on them. Exact types
        only: ``True == 1`` and ``1.0 == 1``, but their keys are ``"true"`` and ``"1"``.
        """
        if type(labels) is not list or not set(map(type, labels)) <= _PLAIN_LABEL_TYPES:
            return None
        codes = list(map(self._plain_index.get, labels))
        if None in codes:
            return None  # not a class: the general path words the error
        return np.array(codes, dtype=np.int64)

    def _parse_scores(self, scores: Values, n: int) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        width = self._score_rows.size
        if isinstance(scores, np.ndarray) and scores.dtype.kind in "fiu":
            expected = (n,) if self._task.kind == "binary" else (n, width)
            if scores.shape != expected:
                raise InvalidInputError(f"scores must have shape {expected}, got {scores.shape}")
            scored = np.ones(n, dtype=bool)
            matrix = scores.astype(np.float64).reshape(n, width)
        else:
            if len(scores) != n:
                raise InvalidInputError(f"scores has {len(scores)} entries but y_true has {n}")
            if self._plain_binary(scores):
                # Each is its own as_float: numpy reads the list as it is (most batches).
                scored = np.ones(n, dtype=bool)
                matrix = np.array(scores, dtype=np.float64).reshape(n, 1)
            else:
                scored = np.array([score is not None for score in scores], dtype=bool)
                rows = [self._score_row(score, width) for score in scores if score is not None]
                matrix = np.array(rows, dtype=np.float64).reshape(len(rows), width)
        # Written as a negation so that NaN, which fails every comparison, is caught too.
        invalid = ~((matrix >= 0.0) & (matrix <= 1.0))
        if invalid.any():
            raise InvalidInputError(
                f"scores must be probabilities in [0, 1], got {float(matrix[invalid][0])!r}"
            )
        return scored, matrix

    def _plain_binary(self, scores: Values) -> bool:
        """Whether ``scores`` is a list of a binary task's scores, every one a float."""
        return (
            self._task.kind == "binary"
            and type(scores) is list
            and all(type(score) is float for score in scores)
        )

    def _score_row(self, score: Any, width: int) -> list[float]:
        if self._task.kind == "binary":
            return [as_float(score, "score")]
        is_row = isinstance(score, Sequence | np.ndarray) and not isinstance(score, str | bytes)
        if not is_row or len(score) != width:
            raise InvalidInputError(
                f"a multiclass score is a list of {width} probabilities "
                f"in the order {list(self._task.classes)}, got {score!r}"
            )
        return [as_float(value, "score") for value in score]

    def _add_scores(self, truth: IntArray, matrix: FloatArray) -> None:
        n_bins = self._task.score_bins
        n_rows = self._score_rows.size
        # Truncation is floor for scores >= 0; a score of exactly 1.0 joins the last bin.
        bins = np.minimum((matrix * n_bins).astype(np.int64), n_bins - 1)
        cells = bins + np.arange(n_rows, dtype=np.int64) * n_bins
        positive = truth[:, None] == self._score_rows[None, :]
        size = n_rows * n_bins
        self._pos_hist += np.bincount(cells[positive], minlength=size).reshape(n_rows, n_bins)
        self._neg_hist += np.bincount(cells[~positive], minlength=size).reshape(n_rows, n_bins)
        if self._task.kind == "binary":
            p_true = np.where(positive[:, 0], matrix[:, 0], 1.0 - matrix[:, 0])
        else:
            p_true = matrix[np.arange(truth.size), truth]
        self._log_loss_sum += float(-np.log(np.clip(p_true, _EPS, 1.0 - _EPS)).sum())
        self._n_scored += int(truth.size)

    def merge(self, other: ClassificationState) -> ClassificationState:
        """Return a new state counting the pairs of both; neither input changes."""
        merged = ClassificationState(self._task)
        merged += self
        merged += other
        return merged

    def __iadd__(self, other: ClassificationState) -> ClassificationState:
        if not isinstance(other, ClassificationState):
            raise IncompatibleStateError(
                f"cannot merge a {type(other).__name__} into a ClassificationState"
            )
        if other._task != self._task:
            raise IncompatibleStateError(
                f"cannot merge states of different tasks: {self._task} and {other._task}"
            )
        self._confusion += other._confusion
        self._pos_hist += other._pos_hist
        self._neg_hist += other._neg_hist
        self._log_loss_sum += other._log_loss_sum
        self._n_scored += other._n_scored
        return self

    def to_dict(self, as_arrays: bool = False) -> dict[str, Any]:
        """Return the state as a JSON-safe dict carrying its version and task.

        Histograms are stored sparsely, as ``[bin, count]`` pairs of the non-empty bins
        per row, because a window rarely fills most of a thousand bins. ``as_arrays``: the
        counts as numpy arrays, for ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)``, which
        writes the same JSON several times faster than lists made of them (stage 2 writes a
        window's state for each batch of its labels).
        """
        sparse = _sparse_arrays if as_arrays else _sparse
        return {
            "version": QUALITY_STATE_VERSION,
            "task": self._task.to_dict(),
            "confusion": self._confusion if as_arrays else self._confusion.tolist(),
            "positive_score_counts": sparse(self._pos_hist),
            "negative_score_counts": sparse(self._neg_hist),
            "log_loss_sum": self._log_loss_sum,
            "n_scored": self._n_scored,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ClassificationState:
        """Read a state written by :meth:`to_dict`.

        Raises :class:`IncompatibleStateError` for an unknown version or a malformed state.
        """
        state = cls(read_state_header(data, ("binary", "multiclass")))
        try:
            state._confusion = _counts(data["confusion"], state._confusion.shape)
            state._pos_hist = _dense(data["positive_score_counts"], state._pos_hist.shape)
            state._neg_hist = _dense(data["negative_score_counts"], state._neg_hist.shape)
            state._log_loss_sum = float(data["log_loss_sum"])
            state._n_scored = data["n_scored"]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise IncompatibleStateError(f"malformed classification state: {exc}") from exc
        # Every scored pair is a positive or a negative in each histogram row exactly once.
        row_totals = state._pos_hist.sum(axis=1) + state._neg_hist.sum(axis=1)
        n_scored = state._n_scored
        if (
            isinstance(n_scored, bool)
            or not isinstance(n_scored, int)
            or not (row_totals == n_scored).all()
            or n_scored > state.n_labeled
            or not 0.0 <= state._log_loss_sum < float("inf")
        ):
            raise IncompatibleStateError("malformed classification state: inconsistent counts")
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassificationState):
            return NotImplemented
        return (
            self._task == other._task
            and np.array_equal(self._confusion, other._confusion)
            and np.array_equal(self._pos_hist, other._pos_hist)
            and np.array_equal(self._neg_hist, other._neg_hist)
            and self._log_loss_sum == other._log_loss_sum
            and self._n_scored == other._n_scored
        )

    def __repr__(self) -> str:
        return (
            f"ClassificationState(kind={self._task.kind!r}, "
            f"n_labeled={self.n_labeled}, n_scored={self._n_scored})"
        )


def _sparse(hist: IntArray) -> list[list[list[int]]]:
    # One tolist per row, not an int() per bin: a busy window fills most of its bins.
    return [pairs.tolist() for pairs in _sparse_arrays(hist)]


def _sparse_arrays(hist: IntArray) -> list[IntArray]:
    """Per row, its non-empty bins as ``[bin, count]`` rows of an int64 array."""
    rows = []
    for row in hist:
        filled = np.flatnonzero(row)
        rows.append(np.stack([filled, row[filled]], axis=1).astype(np.int64, copy=False))
    return rows


def _counts(values: Any, shape: tuple[int, ...]) -> IntArray:
    array = np.asarray(values)
    if (array.size and array.dtype.kind != "i") or array.shape != shape or (array < 0).any():
        raise ValueError(f"expected non-negative integer counts of shape {shape}")
    return array.astype(np.int64)


def _dense(rows: Any, shape: tuple[int, ...]) -> IntArray:
    hist = np.zeros(shape, dtype=np.int64)
    if len(rows) != shape[0]:
        raise ValueError(f"expected {shape[0]} histogram rows, got {len(rows)}")
    for row, pairs in enumerate(rows):
        if len(pairs):
            cells = _counts(pairs, (len(pairs), 2))
            if (cells[:, 0] >= shape[1]).any():
                raise ValueError(f"histogram bin out of range [0, {shape[1]})")
            hist[row, cells[:, 0]] = cells[:, 1]
    return hist


def _read_only(array: IntArray) -> IntArray:
    view = array.view()
    view.flags.writeable = False
    return view
