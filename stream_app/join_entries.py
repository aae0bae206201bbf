"""The join table's values for one prediction id, typed.

Under ``{partition}|{prediction id}`` the join table keeps one of:

- :class:`WaitingLabel`: a label read before its prediction's summary came;
- :class:`JoinedMark`: the pair left for stage 2; kept until a checkpoint covers the label,
  so that a replay joins nothing twice;
- a summary as versions before the columnar segments kept it (read, never written now).

They are stored as JSON objects whose ``"k"`` says which (``"l"``, ``"d"``, ``"p"``), with
the one-letter keys of the first version, so that tables written by any earlier version
read the same: the format is version 1, and a value written by a newer version (an
unknown ``"k"``) is refused with a message that says so.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from stream_app.summary_columns import Summary

_MARK_PREFIX = b'{"k":"d"'


class WaitingLabel(NamedTuple):
    """A label waiting for its prediction's summary."""

    model_id: str
    label: Any
    expires: float
    # The label's offset and position in its message (None: stored before they were kept).
    offset: int | None
    position: int = 0

    @property
    def identity(self) -> tuple[int, int] | None:
        return None if self.offset is None else (self.offset, self.position)

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {"k": "l", "m": self.model_id, "y": self.label, "x": self.expires}
        if self.offset is not None:
            data["o"] = self.offset
        if self.position:
            data["i"] = self.position  # absent for a label alone in its message, as before
        return orjson.dumps(data)


class JoinedMark(NamedTuple):
    """A prediction whose label joined it: what a replay must not join again."""

    offset: int
    position: int
    expires: float

    @property
    def identity(self) -> tuple[int, int]:
        return (self.offset, self.position)

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {"k": "d", "o": self.offset, "x": self.expires}
        if self.position:
            data["i"] = self.position
        return orjson.dumps(data)


JoinEntry = WaitingLabel | JoinedMark | Summary


def read_entry(raw: bytes) -> JoinEntry:
    """The value stored for an id; a summary in the form earlier versions stored it comes
    back as a :class:`Summary`."""
    data = orjson.loads(raw)
    kind = data.get("k")
    if kind == "l":
        return WaitingLabel(data["m"], data["y"], data["x"], data.get("o"), data.get("i", 0))
    if kind == "d":
        return JoinedMark(data["o"], data.get("i", 0), data["x"])
    if kind == "p":
        return summary_of(data)
    raise ValueError(
        f"a join-table value of unknown kind {kind!r}: written by a newer Driftline? "
        "Run the version that wrote it, or reset the worker's tables"
    )


def summary_of(data: dict[str, Any]) -> Summary:
    """A summary from its one-letter dict (a stored ``"p"`` value, or one an earlier
    version forwarded in a list)."""
    return Summary(
        data["m"],
        data["ws"],
        data["we"],
        data["y"],
        data["s"],
        data["x"],
        data.get("sk", "p"),
        data.get("so", -1),
    )


def is_joined_mark(raw: bytes) -> bool:
    """Whether a stored value is a joined mark, without parsing it."""
    return raw.startswith(_MARK_PREFIX)
