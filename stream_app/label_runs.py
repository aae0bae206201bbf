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
from schemas.label_decoder import decode_label_run
from schemas.parsing import parse_label_columns
from stream_app.stage1_inputs import FetchedLabels, FetchedRecords, StageInput

if TYPE_CHECKING:
    from stream_app.registry import ModelRuntime

_RECORDS = b'"records"'


@dataclass(frozen=True)
class LabelRun:
    """Consecutive single-label messages of one model on one partition, parsed at once."""

    runtime: ModelRuntime
    labels: LabelColumns  # one label per message, in the messages' order
    indexes: tuple[int, ...]  # the messages' positions in their batch (none: a whole fetch)
    offsets: Sequence[int]  # of each label's message


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
    for runtime, indexes, joined in _candidates(batch, runtime_of):
        if not _certainly_ok(runtime, joined, future_error):
            continue
        offsets = tuple(batch[index].offset for index in indexes)
        runs[indexes[0]] = LabelRun(runtime, joined, indexes, offsets)
        covered.update(indexes[1:])
    return runs, covered


def fetch_run(
    fetch: FetchedLabels,
    runtime_of: Callable[[str], ModelRuntime | None],
    future_error: Callable[[float], str | None],
) -> LabelRun | None:
    """A fetch's label messages as one run, when :func:`label_runs` would find them one
    run (every record a single label the native decoder certifies, of one model with a
    task, all certainly fine), without a message object per record; else None, and the
    fetch is taken apart."""
    values = fetch.columns.values()
    if values is None or any(_RECORDS in value for value in values):
        return None
    joined = decode_label_run(values)
    runtime = _with_task(joined.model_id, runtime_of) if joined is not None else None
    if joined is None or runtime is None or not _certainly_ok(runtime, joined, future_error):
        return None
    return LabelRun(runtime, joined, (), fetch.columns.offsets.tolist())


def _certainly_ok(
    runtime: ModelRuntime, labels: LabelColumns, future_error: Callable[[float], str | None]
) -> bool:
    """Whether every label is of the task and none is ahead of time; else each message is
    judged on its own."""
    assert runtime.task_check is not None  # as _with_task saw
    return runtime.task_check.labels_certainly_ok(labels.labels) and not future_error(
        max(labels.timestamps)
    )


_Run = tuple["ModelRuntime", tuple[int, ...], LabelColumns]


def _candidates(
    batch: Sequence[StageInput], runtime_of: Callable[[str], ModelRuntime | None]
) -> list[_Run]:
    """Maximal runs of consecutive single labels that parse, of one model with a task, on
    one partition (anything else in between ends a run), with that model.

    Each stretch of consecutive single-label messages of a partition is first read in
    one native call; only a stretch it declines (a message that breaks the contract,
    labels of two models, no native decoder) is parsed message by message, which finds
    the same runs the long way."""
    runs: list[_Run] = []
    for stretch in _stretches(batch):
        whole = decode_label_run([batch[index].value for index in stretch])
        runtime = _with_task(whole.model_id, runtime_of) if whole is not None else None
        if whole is not None and runtime is not None:
            runs.append((runtime, stretch, whole))
        elif whole is None:
            runs.extend(_parsed_one_by_one(batch, stretch, runtime_of))
    return runs


def _stretches(batch: Sequence[StageInput]) -> list[tuple[int, ...]]:
    """The positions of each maximal stretch of single-label messages of one partition."""
    stretches: list[tuple[int, ...]] = []
    current: list[int] = []
    partition: int | None = None
    for index, message in enumerate(batch):
        single = (
            message.kind == "label"
            and not isinstance(message, FetchedRecords)  # a whole fetch is a run of its own
            and _RECORDS not in message.value
        )
        if current and (not single or message.partition != partition):
            stretches.append(tuple(current))
            current = []
        if single:
            current.append(index)
            partition = message.partition
    if current:
        stretches.append(tuple(current))
    return stretches


def _parsed_one_by_one(
    batch: Sequence[StageInput],
    stretch: tuple[int, ...],
    runtime_of: Callable[[str], ModelRuntime | None],
) -> list[_Run]:
    """The runs of a stretch, each message parsed by the strict parser: a message that does
    not parse, or names a model without a task, ends the run before it."""
    runs: list[_Run] = []
    current: list[tuple[int, LabelColumns]] = []
    current_runtime: ModelRuntime | None = None

    def close() -> None:
        if current and current_runtime is not None:
            indexes = tuple(index for index, _ in current)
            first = current[0][1]
            joined = LabelColumns(
                first.model_id,
                [labels.prediction_ids[0] for _, labels in current],
                [labels.labels[0] for _, labels in current],
                [labels.timestamps[0] for _, labels in current],
            )
            runs.append((current_runtime, indexes, joined))
        current.clear()

    for index in stretch:
        found = _single_label(batch[index], runtime_of)
        if found is None or (current and found[0].model_id != current[0][1].model_id):
            close()
        if found is None:
            current_runtime = None
            continue
        labels, current_runtime = found
        current.append((index, labels))
    close()
    return runs


def _with_task(
    model_id: str, runtime_of: Callable[[str], ModelRuntime | None]
) -> ModelRuntime | None:
    runtime = runtime_of(model_id)
    return runtime if runtime is not None and runtime.task_check is not None else None


def _single_label(
    message: StageInput, runtime_of: Callable[[str], ModelRuntime | None]
) -> tuple[LabelColumns, ModelRuntime] | None:
    """The message's label and model when it is one valid single label of a model with a
    task."""
    try:
        labels = parse_label_columns(message.value)
    except Exception:  # the per-message path parses it again, says why and dead-letters it
        return None
    runtime = _with_task(labels.model_id, runtime_of)
    return None if runtime is None else (labels, runtime)
