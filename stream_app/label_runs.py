"""Runs of single-label messages that stage 1 joins at once, like one label envelope.

Most services publish a label per message. Joined one by one, each paid the id index's
probe, the table's lookup and the stage-2 grouping on its own; consecutive single labels
of one model on one partition are joined together instead (``LabelJoin.add_labels``).

Each message is still parsed on its own, by the strict parser: a run is made only of
messages that parse, so a message that breaks the contract is left to the per-message path,
which dead-letters it alone with its reason. A run whose labels are not all certainly fine
(a label to check one by one, a timestamp too far ahead) is left to that path too, whole:
there each message is judged on its own. A run naming an id twice is joined label by label,
as an envelope that does. A lone single label is a run of one, so it is not parsed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.events import LabelColumns
from schemas.parsing import parse_label_columns

if TYPE_CHECKING:
    from stream_app.registry import ModelRuntime
    from stream_app.stage1_inputs import StageInput

_RECORDS = b'"records"'


@dataclass(frozen=True)
class LabelRun:
    """Consecutive single-label messages of one model on one partition, parsed at once."""

    runtime: ModelRuntime
    labels: LabelColumns  # one label per message, in the messages' order
    indexes: tuple[int, ...]  # the messages' positions in their batch
    offsets: tuple[int, ...]  # of each label's message


def label_runs(
    batch: Sequence[StageInput],
    runtime_of: Callable[[str], ModelRuntime | None],
    future_error: Callable[[float], str | None],
) -> tuple[dict[int, LabelRun], set[int]]:
    """The runs of ``batch`` (sorted by partition, then kind, then offset) that are joined
    together: by the position of their first message, and the positions of every other
    message they cover. A single label alone is a run of one: parsed here, not again."""
    runs: dict[int, LabelRun] = {}
    covered: set[int] = set()
    for runtime, run in _candidates(batch, runtime_of):
        assert runtime.task_check is not None  # as _single_label saw
        indexes = tuple(index for index, _ in run)
        ids = [labels.prediction_ids[0] for _, labels in run]
        values = [labels.labels[0] for _, labels in run]
        times = [labels.timestamps[0] for _, labels in run]
        if not runtime.task_check.labels_certainly_ok(values) or future_error(max(times)):
            continue
        joined = LabelColumns(run[0][1].model_id, ids, values, times)
        offsets = tuple(batch[index].offset for index in indexes)
        runs[indexes[0]] = LabelRun(runtime, joined, indexes, offsets)
        covered.update(indexes[1:])
    return runs, covered


_Run = tuple["ModelRuntime", list[tuple[int, LabelColumns]]]


def _candidates(
    batch: Sequence[StageInput], runtime_of: Callable[[str], ModelRuntime | None]
) -> list[_Run]:
    """Maximal runs of consecutive single labels that parse, of one model with a task, on
    one partition (anything else in between ends a run), with that model."""
    runs: list[_Run] = []
    current: _Run | None = None
    partition: int | None = None
    for index, message in enumerate(batch):
        found = _single_label(message, runtime_of)
        if (
            found is None
            or message.partition != partition
            or (current is not None and found[0].model_id != current[1][0][1].model_id)
        ):
            if current is not None:
                runs.append(current)
            current = None
        partition = message.partition
        if found is not None:
            labels, runtime = found
            if current is None:
                current = (runtime, [])
            current[1].append((index, labels))
    if current is not None:
        runs.append(current)
    return runs


def _single_label(
    message: StageInput, runtime_of: Callable[[str], ModelRuntime | None]
) -> tuple[LabelColumns, ModelRuntime] | None:
    """The message's label and model when it is one valid single label of a model with a
    task."""
    if message.kind != "label" or _RECORDS in message.value:
        return None
    try:
        labels = parse_label_columns(message.value)
    except Exception:  # the per-message path parses it again, says why and dead-letters it
        return None
    runtime = runtime_of(labels.model_id)
    if runtime is None or runtime.task_check is None:
        return None
    return labels, runtime
