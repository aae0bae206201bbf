"""A file of past predictions (and labels) read into events, in event-time order, for the topics.

``driftline replay`` reads CSV, Parquet or JSON lines with pandas, maps the file's columns onto
the contract's (``ReplayColumns``: every column not mapped to something else is a feature),
checks every row before anything is sent (a row that cannot be placed in time or has no id
is a usage error naming the row), and merges predictions and labels by event time. A label
comes from the predictions file (a label column, with a delay column, a fixed delay, or a
timestamp column of its own) or from a labels file of its own.

Values are written as the model's configuration expects them: a classifier's predictions and
labels as strings (its classes are strings), a regressor's as numbers; a missing feature
value is sent as null.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftline.errors import ConfigurationError

READERS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
# Epoch seconds past this are milliseconds or nonsense (the contract's own bound: 2200-01-01).
LAST_SECOND = 7_258_118_400.0
EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class ReplayColumns:
    """Which column of the file holds what the contract calls each field."""

    prediction_id: str = "prediction_id"
    timestamp: str = "timestamp"
    prediction: str = "prediction"
    score: str = "score"
    label: str = "label"
    label_delay: str | None = None  # seconds after the prediction
    label_timestamp: str | None = None
    features: tuple[str, ...] = ()  # empty: every column not named above

    def named(self) -> set[str]:
        found = {self.prediction_id, self.timestamp, self.prediction, self.score, self.label}
        return found | {c for c in (self.label_delay, self.label_timestamp) if c}


@dataclass
class ReplayEvents:
    """What a file holds, ready to send: predictions and labels, each sorted by time."""

    model_id: str
    features: list[str]
    prediction_times: np.ndarray
    predictions: list[dict[str, Any]]  # the records of the contract, in time order
    label_times: np.ndarray
    labels: list[tuple[str, Any, float]] = field(default_factory=list)  # (id, label, time)

    @property
    def total(self) -> int:
        return len(self.predictions) + len(self.labels)

    def in_time_order(self) -> Iterator[tuple[str, Any]]:
        """``("prediction", record)`` and ``("label", (id, label, time))``, merged by time (a
        label at the same moment as a prediction comes after it)."""
        i = j = 0
        while i < len(self.predictions) or j < len(self.labels):
            take_label = j < len(self.labels) and (
                i == len(self.predictions) or self.label_times[j] < self.prediction_times[i]
            )
            if take_label:
                yield "label", self.labels[j]
                j += 1
            else:
                yield "prediction", self.predictions[i]
                i += 1

    def span(self) -> tuple[float, float] | None:
        times = [t for t in (self.prediction_times, self.label_times) if len(t)]
        if not times:
            return None
        return min(float(t.min()) for t in times), max(float(t.max()) for t in times)


def read_table(path: Path) -> pd.DataFrame:
    """The file as a frame, its kind told by its suffix."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise ConfigurationError(
            f"{path}: cannot tell the format from {path.suffix or 'no suffix'!r}; name it "
            f"{', '.join(sorted(READERS))}"
        )
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist")
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, precise_float=True)
    except (ValueError, OSError, ImportError) as error:
        raise ConfigurationError(f"{path}: cannot read it as {kind}: {error}") from None


def epoch_seconds(values: pd.Series, what: str, path: Path) -> np.ndarray:
    """ISO 8601 (no offset means UTC) or epoch seconds, as float seconds; a value that is
    neither stops the replay naming its row (numbered from 1, as an editor shows data rows)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        seconds = values.to_numpy(dtype=float)
        bad = ~np.isfinite(seconds) | (seconds >= LAST_SECOND) | (seconds < 0)
        hint = "epoch seconds before 2200 (milliseconds? divide by 1,000)"
    else:
        if pd.api.types.is_datetime64_any_dtype(values):  # Parquet's timestamps; naive: UTC
            parsed = values.dt.tz_localize("UTC") if values.dt.tz is None else values
        else:
            parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        seconds = (parsed - EPOCH).dt.total_seconds().to_numpy(dtype=float)
        bad = ~np.isfinite(seconds)
        hint = "ISO 8601 (2026-05-01T00:00:00Z) or epoch seconds"
    if bad.any():
        row = int(np.argmax(bad))
        raise ConfigurationError(
            f"{path}: row {row + 1}: {what} {values.iloc[row]!r} is not {hint}"
        )
    return np.asarray(seconds, dtype=float)


def _require(frame: pd.DataFrame, column: str, option: str, path: Path) -> pd.Series:
    if column not in frame.columns:
        raise ConfigurationError(
            f"{path} has no column {column!r} (its columns: {', '.join(map(str, frame.columns))}); "
            f"name yours with {option}"
        )
    series = frame[column]
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise ConfigurationError(f"{path}: row {row + 1}: {column!r} is empty")
    return series


def _as_task(values: pd.Series, task: str | None, path: Path) -> list[Any]:
    """Predictions or labels as the model's configuration expects them: a classifier's as
    strings (its classes are), a regressor's as numbers, a model without a task's as read."""
    if task in ("binary", "multiclass"):
        as_text = values.map(
            lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        )
        return list(as_text)
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = (numbers.isna() & values.notna()).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise ConfigurationError(
                f"{path}: row {row + 1}: {values.name} {values.iloc[row]!r} is not a number "
                "(the model is a regressor)"
            )
        return list(numbers.astype(float))
    return list(values.tolist())


def _features(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    # NaN (a missing value) goes as null: pandas writes it as None with object columns.
    part = frame[names].astype(object).where(frame[names].notna(), None)
    return [{str(k): v for k, v in row.items()} for row in part.to_dict("records")]


def load_events(
    model_id: str,
    task: str | None,
    predictions_file: Path,
    columns: ReplayColumns,
    *,
    labels_file: Path | None = None,
    label_delay: float | None = None,
) -> ReplayEvents:
    """Every prediction and label of the files, checked and sorted by event time."""
    frame = read_table(predictions_file)
    ids = _require(frame, columns.prediction_id, "--id-column", predictions_file).astype(str)
    times = epoch_seconds(
        _require(frame, columns.timestamp, "--timestamp-column", predictions_file),
        columns.timestamp,
        predictions_file,
    )
    predicted = _as_task(
        _require(frame, columns.prediction, "--prediction-column", predictions_file),
        task,
        predictions_file,
    )
    names = list(columns.features) or [c for c in frame.columns if c not in columns.named()]
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise ConfigurationError(f"{predictions_file} has no feature column {absent[0]!r}")
    if not names:
        raise ConfigurationError(f"{predictions_file}: no feature columns left to send")
    features = _features(frame, names)
    scores = frame[columns.score].tolist() if columns.score in frame.columns else None
    records = []
    for i in range(len(frame)):
        record: dict[str, Any] = {
            "prediction_id": ids.iat[i],
            "timestamp": float(times[i]),
            "features": features[i],
            "prediction": predicted[i],
        }
        if scores is not None and scores[i] == scores[i]:  # NaN: no score
            record["score"] = float(scores[i])
        records.append(record)
    order = np.argsort(times, kind="stable")
    label_rows = _labels(
        frame, ids, times, task, columns, predictions_file, labels_file, label_delay
    )
    label_order = np.argsort(np.array([t for _, _, t in label_rows]), kind="stable")
    sorted_labels = [label_rows[k] for k in label_order]
    return ReplayEvents(
        model_id=model_id,
        features=names,
        prediction_times=times[order],
        predictions=[records[k] for k in order],
        label_times=np.array([t for _, _, t in sorted_labels], dtype=float),
        labels=sorted_labels,
    )


def _labels(
    frame: pd.DataFrame,
    ids: pd.Series,
    times: np.ndarray,
    task: str | None,
    columns: ReplayColumns,
    path: Path,
    labels_file: Path | None,
    label_delay: float | None,
) -> list[tuple[str, Any, float]]:
    """(prediction id, label, time) of every row with a label, from either file."""
    if labels_file is not None:
        table = read_table(labels_file)
        label_ids = _require(table, columns.prediction_id, "--id-column", labels_file).astype(str)
        label_values = _require(table, columns.label, "--label-column", labels_file)
        stamp = columns.label_timestamp or columns.timestamp
        when = epoch_seconds(
            _require(table, stamp, "--label-timestamp-column", labels_file), stamp, labels_file
        )
        found = _as_task(label_values, task, labels_file)
        return list(zip(label_ids.tolist(), found, when.tolist(), strict=True))
    if columns.label not in frame.columns:
        return []
    present = frame[columns.label].notna().to_numpy().copy()  # pandas may hand out a read-only view
    if columns.label_timestamp:
        stamps = frame[columns.label_timestamp]
        present &= stamps.notna().to_numpy()
        when = np.zeros(len(frame))
        when[present] = epoch_seconds(stamps[present], columns.label_timestamp, path)
    elif columns.label_delay:
        delays = _require(frame[present], columns.label_delay, "--label-delay-column", path)
        when = times.copy()
        when[present] += delays.to_numpy(dtype=float)
    else:
        when = times + (label_delay or 0.0)
    values = _as_task(frame[columns.label][present], task, path)
    return list(zip(ids[present].tolist(), values, when[present].tolist(), strict=True))
