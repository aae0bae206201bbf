"""Type stub of the label join's native loops (stream_app/_id_slots.c)."""

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

def probe(
    keys: npt.NDArray[np.uint64],
    handles: npt.NDArray[np.int64],
    hashes: npt.NDArray[np.uint64],
    ids: Sequence[str],
    id_at: Callable[[int], str],
    out_handles: npt.NDArray[np.int64],
    out_slots: npt.NDArray[np.int64],
    /,
) -> None: ...
def insert(
    keys: npt.NDArray[np.uint64],
    handles: npt.NDArray[np.int64],
    hashes: npt.NDArray[np.uint64],
    new_handles: npt.NDArray[np.int64],
    /,
) -> int: ...
def partitions(ids: Sequence[str], n_partitions: int, out: npt.NDArray[np.int64], /) -> None: ...
def partition(prediction_id: str, n_partitions: int, /) -> int: ...
