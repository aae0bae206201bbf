"""An open-addressing hash index from prediction ids to 64-bit handles, in numpy arrays.

A Python dict costs ~100 bytes per entry with its key string; this index costs 16 bytes
per slot (a 64-bit hash and a 64-bit handle), 23 to 46 per entry as it fills, and
looks up and inserts whole batches with a few numpy passes. It stores no ids: a hash
match is confirmed by the caller's ``id_at(handle)``, so two ids with one hash are two
entries and a lookup is exact whatever the hash function (the tests force collisions).

Linear probing; slot keys 0 and 1 mean empty and deleted, so hashes below 2 are moved up
by 2 (still confirmed by id, so still exact). Process-local: Python's ``hash`` of a string
is salted per process, and the index is rebuilt from the stored ids after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

# The probing loops in C (``stream_app/_id_slots.c``), when built; else numpy and Python.
native: ModuleType | None
try:
    from stream_app import _id_slots as native
except ImportError:  # pragma: no cover - a build without a C compiler
    native = None

EMPTY = np.uint64(0)
DELETED = np.uint64(1)
MAX_LOAD = 0.7
MISSING = -1
# Below this many ids a call probes one id at a time: numpy's per-call cost, paid once a
# probing round, is more than the Python loop (new ids into 250,000, per id, with the
# stragglers below finished one at a time: 2.6 µs in rounds for batches of 125 against
# 1.6 one at a time, 0.9 against 1.5 for 500, 0.7 against 1.2 for 1,000).
SCALAR_BELOW = 256
# Probing rounds done with numpy before the few ids still probing (long runs of taken
# slots) finish one at a time: each round costs numpy's fixed price for a handful of ids.
VECTOR_ROUNDS = 3
STRAGGLERS = 64

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def python_slot_key(prediction_id: str) -> int:
    """Python's (cached, per-process) string hash of an id, as a slot key (2 to 2**64 - 1)."""
    key = hash(prediction_id) % (1 << 64)
    return key if key >= 2 else key + 2


def _python_slot_keys(ids: Sequence[str]) -> U64:
    """:func:`python_slot_key` of each id, at numpy's speed."""
    keys = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)).view(np.uint64)
    return np.where(keys < 2, keys + np.uint64(2), keys)


class IdIndex:
    """Prediction id -> handle (a non-negative int64 the caller defines)."""

    def __init__(
        self,
        id_at: Callable[[int], str],
        capacity: int = 1024,
        slot_key: Callable[[str], int] = python_slot_key,
        segments: Mapping[int, Any] | None = None,
        row_bits: int = 0,
    ) -> None:
        """``segments`` (optional): the caller's own id store, when a handle is
        ``number << row_bits | row`` and ``segments[number]`` has ``id_blob`` and ``id_ends``
        as :class:`~stream_app.summary_columns.SummarySegment` does; the C probe then
        confirms a match from those bytes without calling ``id_at``."""
        self._id_at = id_at
        self._segments = segments
        self._row_bits = row_bits
        self._slot_key = slot_key
        size = 1 << max(4, (capacity - 1).bit_length())
        self._keys: U64 = np.zeros(size, dtype=np.uint64)
        self._handles: I64 = np.full(size, MISSING, dtype=np.int64)
        self._live = 0
        self._deleted = 0
        self._native = native  # read once: the tests compare both paths

    def __len__(self) -> int:
        return self._live

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._handles.nbytes)

    def _hasher(self, ids: Sequence[str]) -> U64:
        if self._slot_key is python_slot_key:
            return _python_slot_keys(ids)
        return np.fromiter(map(self._slot_key, ids), dtype=np.uint64, count=len(ids))

    # -- lookups -----------------------------------------------------------------------

    def find(self, ids: Sequence[str]) -> I64:
        """The handle of each id, or -1 (``MISSING``)."""
        return self._probe(ids, self._hasher(ids))[0]

    def find_one(self, prediction_id: str) -> int:
        """The handle of one id, or -1: a label alone in its message, without numpy calls."""
        return self._probe_one(prediction_id)[0]

    def _probe_one(self, prediction_id: str) -> tuple[int, int]:
        wanted = self._slot_key(prediction_id)
        return self._probe_from(prediction_id, wanted, wanted & (self._keys.size - 1))

    def _probe_from(self, prediction_id: str, wanted: int, at: int) -> tuple[int, int]:
        """One id's handle and slot, probing from slot ``at`` on (-1, -1: absent)."""
        keys, handles = self._keys, self._handles
        mask = keys.size - 1
        while True:
            key = keys.item(at)
            if key == 0:
                return MISSING, MISSING
            if key == wanted:
                handle: int = handles.item(at)
                if self._id_at(handle) == prediction_id:
                    return handle, at
            at = (at + 1) & mask

    def _probe(self, ids: Sequence[str], hashes: U64) -> tuple[I64, I64]:
        """Per id: its handle and slot, both -1 where absent."""
        if self._native is not None:
            handles = np.empty(len(ids), dtype=np.int64)
            slots = np.empty(len(ids), dtype=np.int64)
            self._native.probe(
                self._keys,
                self._handles,
                hashes,
                ids,
                self._id_at,
                handles,
                slots,
                self._segments,
                self._row_bits,
            )
            return handles, slots
        return self._probe_numpy(ids, hashes)

    def _probe_numpy(self, ids: Sequence[str], hashes: U64) -> tuple[I64, I64]:
        n = len(ids)
        handles = np.full(n, MISSING, dtype=np.int64)
        slots = np.full(n, MISSING, dtype=np.int64)
        mask = np.uint64(self._keys.size - 1)
        at = (hashes & mask).astype(np.int64)
        pending = np.arange(n)
        rounds = 0
        while pending.size:
            if rounds >= VECTOR_ROUNDS and pending.size <= STRAGGLERS:
                for i in pending.tolist():
                    handles[i], slots[i] = self._probe_from(ids[i], hashes.item(i), at.item(i))
                break
            rounds += 1
            keys = self._keys[at[pending]]
            same = np.flatnonzero(keys == hashes[pending])
            found = np.zeros(pending.size, dtype=bool)
            for j in same.tolist():  # a hash match: the same id, or a collision
                i = int(pending[j])
                handle = int(self._handles[at[i]])
                if self._id_at(handle) == ids[i]:
                    handles[i], slots[i], found[j] = handle, at[i], True
            done = found | (keys == EMPTY)
            pending = pending[~done]
            at[pending] = (at[pending] + 1) & int(mask)
        return handles, slots

    # -- changes -----------------------------------------------------------------------

    def put(self, ids: Sequence[str], handles: I64) -> I64:
        """Point each id at its handle; the handles replaced (-1 where the id was new).

        Ids must be distinct within one call (the caller keeps the last of repeats).
        """
        if len(ids) < SCALAR_BELOW and self._native is None:
            self._reserve(len(ids))
            pairs = zip(ids, handles.tolist(), strict=True)
            return np.array([self._put_one(i, h) for i, h in pairs], dtype=np.int64)
        hashes = self._hasher(ids)
        old, slots = self._probe(ids, hashes)
        there = slots >= 0
        self._handles[slots[there]] = handles[there]
        new = np.flatnonzero(~there)
        if new.size:
            self._reserve(new.size)
            self._insert(hashes[new], handles[new])
        return old

    def _put_one(self, prediction_id: str, handle: int) -> int:
        """Point one id at ``handle`` (room reserved by the caller); the handle replaced."""
        wanted = self._slot_key(prediction_id)
        keys, handles = self._keys, self._handles
        mask = keys.size - 1
        at = wanted & mask
        free = MISSING
        while True:
            key = keys.item(at)
            if key == 0:
                break
            if key == 1:
                if free == MISSING:
                    free = at
            elif key == wanted and self._id_at(handles.item(at)) == prediction_id:
                old: int = handles.item(at)
                handles[at] = handle
                return old
            at = (at + 1) & mask
        if free != MISSING:  # the first deleted slot of the probe: the id is not further on
            at = free
            self._deleted -= 1
        keys[at] = wanted
        handles[at] = handle
        self._live += 1
        return MISSING

    def remove(self, ids: Sequence[str]) -> I64:
        """Forget each id; the handles they had (-1 where absent)."""
        old, slots = self._probe(ids, self._hasher(ids))
        gone = np.unique(slots[slots >= 0])
        self._keys[gone] = DELETED
        self._handles[gone] = MISSING
        self._live -= gone.size
        self._deleted += gone.size
        self._maybe_shrink()
        return old

    def locate(self, prediction_id: str) -> tuple[int, int]:
        """One id's handle and slot (both -1 where absent), for :meth:`delete_slot`."""
        return self._probe_one(prediction_id)

    def locate_many(self, ids: Sequence[str]) -> tuple[I64, I64]:
        """:meth:`locate` of many ids at once, for :meth:`delete_slots`."""
        return self._probe(ids, self._hasher(ids))

    def delete_slots(self, slots: I64) -> None:
        """Forget the ids :meth:`locate_many` found at ``slots`` (distinct; nothing changed
        since): a shrink happens after all of them, so the slots stay valid until then."""
        self._keys[slots] = DELETED
        self._handles[slots] = MISSING
        self._live -= slots.size
        self._deleted += slots.size
        self._maybe_shrink()

    def delete_slot(self, slot: int) -> None:
        """Forget the id :meth:`locate` found at ``slot`` (nothing changed since)."""
        self._keys[slot] = DELETED
        self._handles[slot] = MISSING
        self._live -= 1
        self._deleted += 1
        self._maybe_shrink()

    def _maybe_shrink(self) -> None:
        if self._keys.size > 16 and self._live < MAX_LOAD * self._keys.size / 8:
            self._rebuild(0)  # mostly deleted (a horizon's worth expired): give it back

    def _reserve(self, more: int) -> None:
        if self._live + self._deleted + more > MAX_LOAD * self._keys.size:
            self._rebuild(more)

    def _rebuild(self, more: int) -> None:
        # The smallest table at most half its limit full of what it holds (so one that
        # filled up doubles, to 35 % full) with room for what comes: 16 bytes a slot come
        # to 23 to 46 bytes an entry. Shrinks too, when deletions dominate.
        size = 16
        while self._live + more > MAX_LOAD * size or self._live > MAX_LOAD * size / 2:
            size *= 2
        live = (self._keys != EMPTY) & (self._keys != DELETED)
        keys, handles = self._keys[live], self._handles[live]
        self._keys = np.zeros(size, dtype=np.uint64)
        self._handles = np.full(size, MISSING, dtype=np.int64)
        self._live = self._deleted = 0
        self._insert(keys, handles)

    def _place_from(self, key: int, handle: int, at: int) -> None:
        """Place one entry known to be absent at the first free slot from ``at`` on."""
        keys = self._keys
        mask = keys.size - 1
        while True:
            found = keys.item(at)
            if found == 0 or found == 1:
                break
            at = (at + 1) & mask
        if found == 1:
            self._deleted -= 1
        keys[at] = key
        self._handles[at] = handle
        self._live += 1

    def _insert(self, hashes: U64, handles: I64) -> None:
        """Place entries known to be absent at the first free slot of their probe."""
        if self._native is not None:
            hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
            handles = np.ascontiguousarray(handles, dtype=np.int64)
            reused = self._native.insert(self._keys, self._handles, hashes, handles)
            self._live += hashes.size
            self._deleted -= reused
            return
        mask = np.uint64(self._keys.size - 1)
        at = (hashes & mask).astype(np.int64)
        pending = np.arange(hashes.size)
        rounds = 0
        while pending.size:
            if rounds >= VECTOR_ROUNDS and pending.size <= STRAGGLERS:
                for i in pending.tolist():
                    self._place_from(hashes.item(i), handles.item(i), at.item(i))
                break
            rounds += 1
            slot = at[pending]
            keys = self._keys[slot]
            free = np.flatnonzero((keys == EMPTY) | (keys == DELETED))
            # Of the entries aiming at one free slot, the first takes it; the others find
            # it taken in the next round and move on.
            _, first = np.unique(slot[free], return_index=True)
            winners = pending[free[first]]
            was_deleted = self._keys[at[winners]] == DELETED
            self._keys[at[winners]] = hashes[winners]
            self._handles[at[winners]] = handles[winners]
            self._live += winners.size
            self._deleted -= int(np.count_nonzero(was_deleted))
            placed = np.zeros(pending.size, dtype=bool)
            placed[free[first]] = True
            aimed_free = np.zeros(pending.size, dtype=bool)
            aimed_free[free] = True
            moving = pending[~aimed_free]
            at[moving] = (at[moving] + 1) & int(mask)
            pending = pending[~placed]
