"""Model quality from labeled pairs ``(y_true, y_pred, score)`` as mergeable state.

A quality state holds sufficient statistics only, so its size is fixed by the task (number
of classes, number of score bins) and never grows with the number of events; partial
states from partitions and workers merge into the state one worker would have built.
This module is the entry point: it turns states into metrics and dispatches on the task
kind. The pieces live in :mod:`detectors.quality_task` (:class:`QualityTask`),
:mod:`detectors.quality_classification` (:class:`ClassificationState`) and
:mod:`detectors.quality_regression` (:class:`RegressionState`), all re-exported here.

The metrics equal scikit-learn's (``accuracy_score``, ``precision_recall_fscore_support``
with ``zero_division=0``, ``log_loss``, ``mean_absolute_error``,
``root_mean_squared_error``, ``r2_score``) up to floating-point rounding. ROC AUC is the
exception: it comes from score histograms, so it is exact up to a bound that the metrics
report (see :func:`classification_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.encoding import FloatArray
from detectors.quality_classification import ClassificationState
from detectors.quality_regression import RegressionMetrics, RegressionState, regression_metrics
from detectors.quality_task import (
    QUALITY_STATE_VERSION,
    TASK_KINDS,
    QualityTask,
    TaskKind,
    read_state_header,
)

__all__ = [
    "QUALITY_STATE_VERSION",
    "ClassificationMetrics",
    "ClassificationState",
    "QualityTask",
    "RegressionMetrics",
    "RegressionState",
    "TaskKind",
    "classification_metrics",
    "empty_quality_state",
    "quality_state_from_dict",
    "regression_metrics",
]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Classification quality of a window; a metric is ``None`` when it is undefined.

    Attributes
    ----------
    n_labeled
        Number of labeled pairs.
    accuracy
        Fraction of pairs predicted right.
    precision, recall, f1
        Binary: of ``positive_class``. Multiclass: unweighted mean over the classes.
    precision_weighted, recall_weighted, f1_weighted
        Mean over the classes weighted by their number of true pairs (support).
    per_class
        ``{class: {"precision", "recall", "f1", "support"}}``; empty with no pairs.
    roc_auc
        Binary: AUC of the positive-class score. Multiclass: one-vs-rest, unweighted mean
        over the classes. ``None`` unless every class has scored positives and negatives.
    roc_auc_weighted
        Multiclass: one-vs-rest weighted by class prevalence among scored pairs. Binary:
        ``roc_auc``.
    roc_auc_error_bound
        Largest possible distance of ``roc_auc`` (and ``roc_auc_weighted``) from the exact
        AUC of the unbinned scores.
    log_loss
        Mean cross-entropy of the scored pairs.
    n_scored
        Number of labeled pairs that came with a score.
    """

    n_labeled: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    precision_weighted: float | None
    recall_weighted: float | None
    f1_weighted: float | None
    per_class: dict[str, dict[str, float]]
    roc_auc: float | None
    roc_auc_weighted: float | None
    roc_auc_error_bound: float | None
    log_loss: float | None
    n_scored: int


def classification_metrics(state: ClassificationState) -> ClassificationMetrics:
    """Compute accuracy, precision, recall, F1, ROC AUC and log loss from a state.

    Precision, recall and F1 follow scikit-learn with ``zero_division=0``: a class never
    predicted has precision 0, a class never seen has recall 0. A metric is ``None`` only
    when the window has no labeled pairs (or, for AUC and log loss, no scored pairs).

    ROC AUC is ``P(pos bin > neg bin) + 0.5 · P(same bin)`` over the score histograms.
    Binning preserves the order of scores in different bins, so only pairs sharing a bin
    can be misjudged, and each is counted as half a win: the AUC differs from the exact
    one by at most ``0.5 · Σ_b (pos_b / P) · (neg_b / N)``, reported as
    ``roc_auc_error_bound`` (multiclass: the largest over the classes). With 1000 bins and
    scores that are not concentrated in a few bins this is well under 0.005.

    Examples
    --------
    >>> task = QualityTask("binary", classes=("no", "yes"))
    >>> state = ClassificationState.empty(task).update(
    ...     ["yes", "no", "yes", "no"], ["yes", "no", "no", "yes"], [0.9, 0.2, 0.4, None]
    ... )
    >>> metrics = classification_metrics(state)
    >>> metrics.accuracy, metrics.precision, metrics.recall, metrics.roc_auc
    (0.5, 0.5, 0.5, 1.0)
    >>> round(metrics.log_loss, 4), metrics.n_scored
    (0.4149, 3)
    >>> classification_metrics(ClassificationState.empty(task)).accuracy is None
    True
    """
    task = state.task
    roc_auc, roc_auc_weighted, bound = _roc_auc(state)
    n_scored = state.n_scored
    log_loss = state.log_loss_sum / n_scored if n_scored else None
    counts = state.confusion_matrix.astype(np.float64)
    n_labeled = state.n_labeled
    if n_labeled == 0:
        return ClassificationMetrics(
            n_labeled=0,
            accuracy=None,
            precision=None,
            recall=None,
            f1=None,
            precision_weighted=None,
            recall_weighted=None,
            f1_weighted=None,
            per_class={},
            roc_auc=None,
            roc_auc_weighted=None,
            roc_auc_error_bound=None,
            log_loss=None,
            n_scored=0,
        )
    true_positives = np.diag(counts)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = _ratio(true_positives, predicted)
    recall = _ratio(true_positives, support)
    f1 = _ratio(2.0 * true_positives, support + predicted)
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(task.classes)
    }
    if task.kind == "binary":
        positive = task.classes.index(task.positive_class)
        headline = [float(metric[positive]) for metric in (precision, recall, f1)]
    else:
        headline = [float(metric.mean()) for metric in (precision, recall, f1)]
    weighted = [float(np.average(metric, weights=support)) for metric in (precision, recall, f1)]
    return ClassificationMetrics(
        n_labeled=n_labeled,
        accuracy=float(true_positives.sum() / n_labeled),
        precision=headline[0],
        recall=headline[1],
        f1=headline[2],
        precision_weighted=weighted[0],
        recall_weighted=weighted[1],
        f1_weighted=weighted[2],
        per_class=per_class,
        roc_auc=roc_auc,
        roc_auc_weighted=roc_auc_weighted,
        roc_auc_error_bound=bound,
        log_loss=log_loss,
        n_scored=n_scored,
    )


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.zeros_like(numerator)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _roc_auc(state: ClassificationState) -> tuple[float | None, float | None, float | None]:
    positives, negatives = (hist.astype(np.float64) for hist in state.score_histograms)
    n_pos = positives.sum(axis=1)
    n_neg = negatives.sum(axis=1)
    if not ((n_pos > 0) & (n_neg > 0)).all():
        return None, None, None
    # float64 holds counts exactly up to 2**53, and their products cannot overflow as int64 can.
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    wins = (positives * negatives_below).sum(axis=1)
    ties = (positives * negatives).sum(axis=1)
    pairs = n_pos * n_neg
    auc = (wins + 0.5 * ties) / pairs
    bound = float((0.5 * ties / pairs).max())
    if state.task.kind == "binary":
        return float(auc[0]), float(auc[0]), bound
    return float(auc.mean()), float(np.average(auc, weights=n_pos)), bound


def empty_quality_state(task: QualityTask) -> ClassificationState | RegressionState:
    """Return the empty state that fits ``task``.

    Examples
    --------
    >>> empty_quality_state(QualityTask("regression"))
    RegressionState(n_labeled=0)
    """
    if task.kind == "regression":
        return RegressionState.empty(task)
    return ClassificationState.empty(task)


def quality_state_from_dict(data: Any) -> ClassificationState | RegressionState:
    """Read any quality state written by ``to_dict``, dispatching on its task.

    Raises :class:`IncompatibleStateError` for an unknown version or a malformed state.

    Examples
    --------
    >>> state = empty_quality_state(QualityTask("multiclass", classes=("a", "b", "c")))
    >>> quality_state_from_dict(state.update(["a"], ["b"]).to_dict())
    ClassificationState(kind='multiclass', n_labeled=1, n_scored=0)
    """
    task = read_state_header(data, TASK_KINDS)
    if task.kind == "regression":
        return RegressionState.from_dict(data)
    return ClassificationState.from_dict(data)
