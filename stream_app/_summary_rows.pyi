"""Type stub of the label join's native take of waiting rows (stream_app/_summary_rows.c)."""

from typing import Any

import numpy as np
import numpy.typing as npt

def take_rows(
    taken: list[Any],
    positions: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    which: npt.NDArray[np.int64],
    segments: list[Any],
    layouts: list[tuple[int, ...] | None],
    took: npt.NDArray[np.uint8],
) -> int: ...
def by_window(
    summaries: list[Any], labels: list[Any], identities: list[tuple[int, int]]
) -> list[tuple[tuple[str, float, float], list[list[Any]]]]: ...
