"""Stage 1's stored window values: a state stamped with the input it covers, or a marker.

A crash can leave some of a batch's state writes on the changelog and not others (they
are many keys). The restarted stage 1 replays the input after its checkpoint, and each
window's stamp (the offset of the last predictions message whose events the stored state
holds) tells it which events that window already has. A window stage 1 closed (sent to
stage 2) stays as a *closed* marker with its stamp until a checkpoint covers the stamp,
so the replay knows those events went out with the window instead of counting them late.
Values written before stamps existed read as unstamped (stamp -1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_MAGIC = b"\x00dls"
_HEADER = struct.Struct(">4scq")  # magic, b"S" (state) or b"C" (closed), stamp
_STATE, _CLOSED = b"S", b"C"


@dataclass(frozen=True)
class StoredWindow:
    stamp: int  # offset of the last predictions message folded in (-1: unknown)
    state: bytes  # empty for a closed marker
    closed: bool = False


def stamped(stamp: int, state: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, _STATE, stamp) + state


def closed_marker(stamp: int) -> bytes:
    return _HEADER.pack(_MAGIC, _CLOSED, stamp)


def read(value: bytes) -> StoredWindow:
    """
    >>> read(stamped(7, b"abc"))
    StoredWindow(stamp=7, state=b'abc', closed=False)
    >>> read(closed_marker(9)).closed
    True
    >>> read(b"x\\x01legacy").stamp
    -1
    """
    if value[:4] != _MAGIC:
        return StoredWindow(-1, value)
    _, kind, stamp = _HEADER.unpack_from(value)
    if kind == _CLOSED:
        return StoredWindow(stamp, b"", closed=True)
    return StoredWindow(stamp, value[_HEADER.size :])
