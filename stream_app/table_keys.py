"""The stages' table keys: made and read here only.

Per stage-1 partition ``p``, the windows table holds ``p|w|<model>|<start>``, the
partition's partial window state, and ``p|cp``, its checkpoint.

Per stage-2 partition ``p``, the records table holds:

- ``p|r|<model>|<start>``: a window record's drift part, ``p|q|<model>|<start>`` its
  quality part (``<start>`` is the window start's ``repr``, which reads back exactly);
- ``p|h|<model>``: the model's history (control limits, the retraining policy);
- ``p|wm|<source>`` and ``p|lwm|<source>``: the prediction and label watermarks each input
  partition sent, and ``p|np``: how many input partitions there are;
- ``p|next``: the next offsets to read (``stream_app.input_order``).
"""

from __future__ import annotations

from typing import NamedTuple


class WindowKey(NamedTuple):
    """The key of a (model, window) record in one stage-2 partition."""

    partition: int
    model_id: str
    start: float

    @property
    def record(self) -> str:
        """Where the record's drift part is."""
        return f"{self.partition}|r|{self.model_id}|{self.start!r}"

    @property
    def quality(self) -> str:
        """Where the record's quality part is."""
        return f"{self.partition}|q|{self.model_id}|{self.start!r}"

    @property
    def window(self) -> str:
        """Where stage 1 keeps the partition's state of the window."""
        return f"{self.partition}|w|{self.model_id}|{self.start!r}"


def window_prefix(partition: int) -> str:
    """What the keys of stage 1's window states of the partition begin with."""
    return f"{partition}|w|"


def checkpoint_key(partition: int) -> str:
    """Where stage 1 keeps the partition's checkpoint."""
    return f"{partition}|cp"


def record_prefix(partition: int, model_id: str = "") -> str:
    """What the keys of the partition's drift parts (of one model, if given) begin with."""
    return f"{partition}|r|{model_id}|" if model_id else f"{partition}|r|"


def quality_prefix(partition: int) -> str:
    return f"{partition}|q|"


def window_of(key: str, prefix: str) -> WindowKey:
    """The window of a window-state, drift-part or quality-part key, read after its
    ``prefix``."""
    partition = int(key.split("|", 1)[0])
    model_id, start = key[len(prefix) :].rsplit("|", 1)
    return WindowKey(partition, model_id, float(start))


def quality_key_of(record_key: str) -> str:
    """The quality part's key of the record whose drift part is under ``record_key``."""
    return record_key.replace("|r|", "|q|", 1)


def history_key(partition: int, model_id: str) -> str:
    return f"{partition}|h|{model_id}"


def history_prefix(partition: int) -> str:
    return f"{partition}|h|"


def is_history_key(key: str) -> bool:
    return key.split("|", 2)[1:2] == ["h"]


def watermark_key(partition: int, source: int) -> str:
    return f"{partition}|wm|{source}"


def watermark_prefix(partition: int) -> str:
    return f"{partition}|wm|"


def label_watermark_key(partition: int, source: int) -> str:
    return f"{partition}|lwm|{source}"


def label_watermark_prefix(partition: int) -> str:
    return f"{partition}|lwm|"


def sources_key(partition: int) -> str:
    """Where the number of input partitions is."""
    return f"{partition}|np"
