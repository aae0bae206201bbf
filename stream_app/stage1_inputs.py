"""What stage 1 is given: consumed messages, and fetched single events still as columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from stream_app.fetch_events import columns_of, records_of
from stream_app.record_columns import RecordColumns

if TYPE_CHECKING:
    from schemas.fast_batch import EnvelopeColumns
    from stream_app.label_runs import LabelRun
    from stream_app.registry import ModelRuntime

TopicKind = Literal["prediction", "label", "join"]


class InputMessage(NamedTuple):
    """One consumed Kafka message, as stage 1 needs it.

    A named tuple: a worker builds one per consumed message, and a frozen dataclass cost
    several times as much to build (measured in the single-event profile).
    """

    kind: TopicKind
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class CertifiedRun(NamedTuple):
    """What stage 1 found a whole :class:`FetchedEvents` to be: one model's single events."""

    runtime: ModelRuntime
    columns: EnvelopeColumns


class FetchedRecords:
    """Consecutive messages of one topic partition, read from a fetch as columns.

    Stands in a stage-1 batch like the message of its first record (``offset``, ``key``,
    ``value`` are that one's), and covers every record up to ``last_offset``. Stage 1 takes
    it whole when it can certify that the per-message path would take its records as one
    run (``run``), and otherwise as :meth:`messages`, one at a time.
    """

    __slots__ = ("columns", "key", "last_offset", "offset", "partition", "run", "topic", "value")
    kind: TopicKind

    def __init__(self, columns: RecordColumns) -> None:
        self.columns = columns
        self.topic = columns.topic
        self.partition = columns.partition
        self.offset = columns.first_offset
        self.last_offset = columns.last_offset
        self.key = columns.key(0)
        self.value = columns.value(0) or b""
        self.run: CertifiedRun | LabelRun | None = None

    def __len__(self) -> int:
        return len(self.columns)

    def messages(self) -> list[InputMessage]:
        """Each record as a message of its own."""
        return messages_of(self.columns, self.kind)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.topic}[{self.partition}]@{self.offset}.."
            f"{self.last_offset})"
        )


class FetchedEvents(FetchedRecords):
    """Prediction messages of a fetch; whole when they are one model's plain single events."""

    __slots__ = ()
    kind: TopicKind = "prediction"


class FetchedLabels(FetchedRecords):
    """Label messages of a fetch; whole when they are one run of single labels."""

    __slots__ = ()
    kind: TopicKind = "label"


StageInput = InputMessage | FetchedEvents | FetchedLabels


_FETCHED: dict[TopicKind, type[FetchedEvents | FetchedLabels]] = {
    "prediction": FetchedEvents,
    "label": FetchedLabels,
}


def messages_of(columns: RecordColumns, kind: TopicKind) -> list[InputMessage]:
    """Each record of a fetch read as columns as a message (no record object in between)."""
    data, topic, partition = columns.data, columns.topic, columns.partition
    return [
        InputMessage(
            kind,
            topic,
            partition,
            offset,
            None if key_length < 0 else data[key_start : key_start + key_length],
            b"" if value_length < 0 else data[value_start : value_start + value_length],
        )
        for offset, _, key_start, key_length, value_start, value_length in columns.rows.tolist()
    ]


def columnar_inputs(columns: RecordColumns, kind: TopicKind, size: int) -> list[StageInput]:
    """A fetch read as columns as stage 1's inputs: a prediction or label fetch stays
    columns, in pieces of at most ``size`` records; any other becomes its messages."""
    fetched = _FETCHED.get(kind)
    if fetched is None:
        return list(messages_of(columns, kind))
    return [fetched(piece) for piece in columns.slices(size)]


def last_offset_of(message: StageInput) -> int:
    return message.last_offset if isinstance(message, FetchedRecords) else message.offset


def inputs_of(
    messages: Iterable[Any], kinds: Mapping[str, TopicKind], size: int
) -> list[StageInput]:
    """Stage 1's inputs for consumed Faust messages (whole fetches or single records).

    A prediction or label fetch read as columns stays columns, in pieces of at most
    ``size`` records; every other record becomes an :class:`InputMessage`.
    """
    inputs: list[StageInput] = []
    for message in messages:
        columns = columns_of(message)
        if columns is not None:
            inputs.extend(columnar_inputs(columns, kinds[columns.topic], size))
            continue
        inputs.extend(
            InputMessage(
                kind=kinds[record.topic],
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value if record.value is not None else b"",
            )
            for record in records_of(message)
        )
    return inputs


def chunks(inputs: Sequence[StageInput], size: int) -> list[list[StageInput]]:
    """The inputs in order, cut so that each chunk holds about ``size`` records."""
    cut: list[list[StageInput]] = []
    current: list[StageInput] = []
    count = 0
    for item in inputs:
        weight = len(item) if isinstance(item, FetchedRecords) else 1
        if current and count + weight > size:
            cut.append(current)
            current, count = [], 0
        current.append(item)
        count += weight
    if current:
        cut.append(current)
    return cut
