"""What a monitored model predicts, which fixes the shape of its quality state.

:class:`QualityTask` is the frozen spec shared by the classification states in
:mod:`detectors.quality` and the regression state in :mod:`detectors.quality_regression`.
The helpers below read and check what every stored quality state has in common (its
version and its task) and turn raw numbers into floats by the rules of
:mod:`detectors.encoding`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detectors.encoding import FloatArray, category_key
from driftline.errors import ConfigurationError, IncompatibleStateError, InvalidInputError

TaskKind = Literal["binary", "multiclass", "regression"]

QUALITY_STATE_VERSION = 1
"""Version written into every stored quality state; bump it when the layout changes."""

TASK_KINDS: tuple[TaskKind, ...] = ("binary", "multiclass", "regression")
MIN_SCORE_BINS = 10


@dataclass(frozen=True)
class QualityTask:
    """The kind of prediction a model makes, its classes and the AUC resolution.

    Parameters
    ----------
    kind
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    classes
        The class labels, normalised with :func:`detectors.encoding.category_key` (so ``0``,
        ``0.0`` and ``"0"`` are one class). A binary task needs exactly 2, a multiclass task
        at least 2, a regression task none. Per-pair score lists follow this order.
    positive_class
        Binary tasks only: the class whose probability a score is. Defaults to
        ``classes[1]``.
    score_bins
        Number of uniform bins on ``[0, 1]`` in the score histograms behind ROC AUC (at
        least 10). More bins give a tighter AUC and a larger state.

    Raises
    ------
    ConfigurationError
        When a parameter is not allowed; the message says what is.

    Examples
    --------
    >>> task = QualityTask("binary", classes=(0, 1))
    >>> task.classes, task.positive_class
    (('0', '1'), '1')
    >>> QualityTask("multiclass", classes=("cat", "dog", "bird")).positive_class is None
    True
    """

    kind: TaskKind
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    score_bins: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ConfigurationError(f"kind must be one of {list(TASK_KINDS)}, got {self.kind!r}")
        bins = self.score_bins
        if (
            isinstance(bins, bool)
            or not isinstance(bins, int | np.integer)
            or bins < MIN_SCORE_BINS
        ):
            raise ConfigurationError(
                f"score_bins must be an integer >= {MIN_SCORE_BINS}, got {bins!r}"
            )
        classes = _normalise_classes(self.classes)
        positive = self.positive_class
        if self.kind == "regression":
            if classes or positive is not None:
                raise ConfigurationError("a regression task takes no classes and no positive_class")
        elif self.kind == "binary":
            if len(classes) != 2:
                raise ConfigurationError(
                    f"a binary task needs exactly 2 classes, got {list(classes)}"
                )
            positive = classes[1] if positive is None else category_key(positive)
            if positive not in classes:
                raise ConfigurationError(
                    f"positive_class must be one of {list(classes)}, got {self.positive_class!r}"
                )
        else:
            if len(classes) < 2:
                raise ConfigurationError(
                    f"a multiclass task needs at least 2 classes, got {list(classes)}"
                )
            if positive is not None:
                raise ConfigurationError("positive_class is only allowed for a binary task")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "positive_class", positive)
        object.__setattr__(self, "score_bins", int(bins))

    def to_dict(self) -> dict[str, Any]:
        """Return the task as a JSON-safe dict (read back with :meth:`from_dict`)."""
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "score_bins": self.score_bins,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityTask:
        """Rebuild a task written by :meth:`to_dict`."""
        return cls(
            kind=data["kind"],
            classes=tuple(data["classes"]),
            positive_class=data["positive_class"],
            score_bins=data["score_bins"],
        )


def _normalise_classes(classes: Any) -> tuple[str, ...]:
    # A bare string is iterable too, but "abc" as three classes is never what was meant.
    if isinstance(classes, str | bytes) or not isinstance(classes, Iterable):
        raise ConfigurationError(f"classes must be a sequence of labels, got {classes!r}")
    keys = [category_key(label) for label in classes]
    if None in keys:
        raise ConfigurationError("classes must not contain a missing label (None or NaN)")
    if len(set(keys)) != len(keys):
        raise ConfigurationError(f"classes must be distinct after normalisation, got {keys}")
    return tuple(key for key in keys if key is not None)


def read_state_header(data: Any, kinds: Collection[str]) -> QualityTask:
    """Check a stored state's version and return its task.

    Raises :class:`IncompatibleStateError` for an unknown version, a malformed task or a
    task of another kind than ``kinds``.
    """
    if not isinstance(data, Mapping):
        raise IncompatibleStateError(
            f"a stored quality state is a mapping, got {type(data).__name__}"
        )
    version = data.get("version")
    # JSON true equals 1 in Python; a bool version is corruption, not version 1.
    if isinstance(version, bool) or version != QUALITY_STATE_VERSION:
        raise IncompatibleStateError(
            f"unknown quality state version {version!r}; "
            f"this Driftline reads version {QUALITY_STATE_VERSION}"
        )
    try:
        task = QualityTask.from_dict(data["task"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IncompatibleStateError(f"stored quality state has no valid task: {exc}") from exc
    if task.kind not in kinds:
        raise IncompatibleStateError(
            f"stored quality state is for a {task.kind} task, expected one of {sorted(kinds)}"
        )
    return task


def as_float(value: Any, what: str) -> float:
    """Return a raw number as a float; bools, strings, ``None`` and others are invalid."""
    # bool is an int subclass: True as a score or a target is a producer bug, not 1.0.
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise InvalidInputError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError as exc:
        raise InvalidInputError(f"{what} {value!r} does not fit a float") from exc


def require_finite(values: FloatArray, what: str) -> None:
    """Raise :class:`InvalidInputError` naming the first non-finite value, if any."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise InvalidInputError(f"{what} must be finite, got {float(values[bad].flat[0])!r}")
