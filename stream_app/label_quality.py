"""Labels applied to a window's quality state in memory across a stage-2 batch, written once.

A batch of window-partials messages carries labels messages for many windows, several for
one window when labels arrive for recent predictions. Reading a window's stored quality part
(JSON: a confusion matrix and sparse score histograms) and writing it again cost about
100 µs a message, more than the labels themselves. :class:`QualityBuffer` holds each touched
window's record and its decoded quality state for the rest of the batch; stage 2 writes
them once when the batch settles (before any other kind of message, and at its end).

It also keeps the states it last saw written, decoded, for windows labels touch again in
a later batch: one is reused only while the stored quality part still equals the bytes it
was written as (a restore or any other write replaces them, and the state is read again).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detectors.quality import empty_quality_state, quality_state_from_dict
from detectors.quality_task import QualityTask
from detectors.window import QualityState

if TYPE_CHECKING:
    from stream_app.stage2 import WindowRecord

# A binary state is about 16 KB decoded (two histograms of 1,000 bins): 2,048 windows with
# recent labels (a week of 5-minute windows) stay near 32 MB. Labels for random predictions
# of a long horizon touch every window of it: with 256, each labels message past the 256th
# window parsed its window's quality part again (~50 µs for a binary one).
DECODED_CAPACITY = 2048


@dataclass
class HeldLabels:
    """A window's record and its quality state, changed by labels and not written yet."""

    partition: int
    record: WindowRecord
    state: QualityState


class QualityBuffer:
    """Windows changed by the labels of the current batch, and recently written states."""

    def __init__(self, capacity: int = DECODED_CAPACITY) -> None:
        self._held: dict[str, HeldLabels] = {}
        # Per window: the quality part as written, its state decoded, and its other fields
        # (revision, recent labels, ...: QUALITY_FIELDS but the state, and applied_offset).
        self._decoded: OrderedDict[str, tuple[bytes, QualityState, dict[str, Any]]] = OrderedDict()
        self._capacity = capacity

    def __bool__(self) -> bool:
        return bool(self._held)

    def held(self, key: str) -> HeldLabels | None:
        """The window held under ``key`` (its record key), if labels changed it this batch."""
        return self._held.get(key)

    def state_for(
        self, key: str, stored: bytes | None, quality: dict[str, Any] | None, task: QualityTask
    ) -> QualityState:
        """The decoded quality state of a window not held: reused if ``stored`` (its
        quality part now) is what was last written, else read from ``quality``. After
        :meth:`known` said the part is kept, with nothing written in between, it is reused
        (the caller did not parse ``quality``)."""
        cached = self._decoded.pop(key, None)
        # Taken out either way: the caller changes it, and holds it until the batch settles.
        if cached is not None and stored is not None and cached[0] == stored:
            return cached[1]
        return quality_state_from_dict(quality) if quality else empty_quality_state(task)

    def hold(self, key: str, partition: int, record: WindowRecord, state: QualityState) -> None:
        self._held[key] = HeldLabels(partition, record, state)

    def release(self) -> dict[str, HeldLabels]:
        """Every held window, to be written now; nothing is held afterwards."""
        held, self._held = self._held, {}
        return held

    def known(self, key: str, stored: bytes | None) -> dict[str, Any] | None:
        """The quality part's fields other than the state, if ``stored`` (the part now) is
        what was last written and its state is kept: the part need not be parsed (a
        binary window's is ~6 KB of JSON, ~50 µs). The dict is shared: replace, not change,
        what it holds."""
        cached = self._decoded.get(key)
        if cached is None or stored is None or cached[0] != stored:
            return None
        return cached[2]

    def remember(
        self, key: str, written: bytes, state: QualityState, fields: dict[str, Any]
    ) -> None:
        """``state`` was just written as ``written`` with ``fields``: keep them for the next
        batch."""
        self._decoded[key] = (written, state, fields)
        self._decoded.move_to_end(key)
        while len(self._decoded) > self._capacity:
            self._decoded.popitem(last=False)

    def discard(self) -> None:
        """The batch failed: nothing held is written, and the held states (changed in
        place) are not reused."""
        self._held.clear()

    def forget(self, key: str) -> None:
        """The window is gone from the store."""
        self._decoded.pop(key, None)
