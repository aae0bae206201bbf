"""The summaries one batch of stage 1 forwards to another partition's label join.

An envelope's rows for another partition arrive as arrays (windows and expiries, computed
with numpy) and list slices (ids, predictions and scores, as the decoder gives them). They
are kept here as those pieces and made into segments once: as lists, each row cost a
Python object per column on the way in, an extend per column, a slice per chunk, and a
conversion back to an array per column. Summaries given one at a time (the strict path)
are kept in a :class:`SummaryBuffer` and become a piece of their own, so the order of
arrival, which decides which of an id's summaries wins, is kept.

Whole chunks can go before the batch ends (:meth:`ForwardBuffer.ready`), so that the
broker stores them while stage 1 goes on with the batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from stream_app.summary_columns import (
    F64,
    ForwardColumns,
    Summary,
    SummaryBuffer,
    SummarySegment,
    even_bounds,
    last_rows,
)

_Piece = tuple[list[str], ForwardColumns]


class ForwardBuffer:
    """Summaries for one other join partition, in arrival order (repeats kept)."""

    def __init__(self) -> None:
        self._pieces: list[_Piece] = []
        self._rows = SummaryBuffer()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add_columns(
        self,
        ids: list[str],
        model_id: str,
        window_starts: F64,
        window_ends: F64,
        predicted: list[Any],
        scores: list[float | None],
        expires: F64,
    ) -> None:
        """Rows of one model, as columns of one length."""
        self._close_rows()
        codes = np.zeros(len(ids), dtype=np.intp)
        columns = ForwardColumns(
            [model_id], codes, window_starts, window_ends, predicted, scores, expires
        )
        self._pieces.append((ids, columns))
        self._size += len(ids)

    def append(self, prediction_id: str, summary: Summary) -> None:
        """One summary (its origin is the receiver's to give)."""
        self._rows.append(prediction_id, summary)
        self._size += 1

    def _close_rows(self) -> None:
        rows = self._rows
        if not rows:
            return
        columns = rows.columns
        models = list(dict.fromkeys(columns.model_ids))
        code_of = {model: code for code, model in enumerate(models)}
        codes = np.fromiter(map(code_of.__getitem__, columns.model_ids), np.intp, len(rows))
        piece = ForwardColumns(
            models,
            codes,
            np.array(columns.window_starts, dtype=np.float64),
            np.array(columns.window_ends, dtype=np.float64),
            columns.predicted,
            columns.scores,
            np.array(columns.expires, dtype=np.float64),
        )
        self._pieces.append((rows.ids, piece))
        self._rows = SummaryBuffer()

    def ready(self, most: int) -> list[bytes]:
        """Segments of ``most`` rows that can go before the batch ends, once there are
        twice as many rows: at least ``most`` stay, so that :meth:`segments` still cuts the
        batch's last rows into chunks of at least half of ``most``."""
        if self._size < 2 * most:
            return []
        self._close_rows()
        ids, columns = _joined(self._pieces)
        cut = (self._size // most - 1) * most
        sent = _segments(ids[:cut], _rows(columns, 0, cut), most)  # first: it may raise
        self._pieces = [(ids[cut:], _rows(columns, cut, None))]
        self._size -= cut
        return sent

    def segments(self, most: int) -> list[bytes]:
        """The summaries as segments in their changelog form (``SummarySegment.to_bytes``)
        of at most ``most`` rows each and of even sizes, the last of an id's summaries
        kept (as the receiver would keep it)."""
        self._close_rows()
        if not self._pieces:
            return []
        segments = _segments(*_joined(self._pieces), most)
        self._pieces, self._size = [], 0
        return segments


def _rows(columns: ForwardColumns, start: int, stop: int | None) -> ForwardColumns:
    return ForwardColumns(
        columns.models,
        columns.model_codes[start:stop],
        columns.window_starts[start:stop],
        columns.window_ends[start:stop],
        columns.predicted[start:stop],
        columns.scores[start:stop],
        columns.expires[start:stop],
    )


def _segments(ids: list[str], columns: ForwardColumns, most: int) -> list[bytes]:
    ids, columns = _last_of_each(ids, columns)
    out = []
    for start, stop in even_bounds(len(ids), most):
        chunk = _rows(columns, start, stop)
        if len(chunk.models) > 1:  # a chunk names the models its rows have, no other
            used, codes = np.unique(chunk.model_codes, return_inverse=True)
            models = [chunk.models[code] for code in used.tolist()]
            chunk = chunk._replace(models=models, model_codes=codes.reshape(-1))
        out.append(SummarySegment.forwarded(ids[start:stop], chunk).to_bytes())
    return out


def _joined(pieces: Sequence[_Piece]) -> tuple[list[str], ForwardColumns]:
    """The pieces as one set of columns, their models coded anew."""
    parts = [columns for _, columns in pieces]
    models = list(dict.fromkeys(itertools.chain.from_iterable(p.models for p in parts)))
    code_of = {model: code for code, model in enumerate(models)}
    codes = [np.array([code_of[m] for m in p.models], dtype=np.intp)[p.model_codes] for p in parts]
    ids = list(itertools.chain.from_iterable(ids for ids, _ in pieces))
    columns = ForwardColumns(
        models,
        np.concatenate(codes),
        np.concatenate([p.window_starts for p in parts]),
        np.concatenate([p.window_ends for p in parts]),
        list(itertools.chain.from_iterable(p.predicted for p in parts)),
        list(itertools.chain.from_iterable(p.scores for p in parts)),
        np.concatenate([p.expires for p in parts]),
    )
    return ids, columns


def _last_of_each(ids: list[str], columns: ForwardColumns) -> tuple[list[str], ForwardColumns]:
    """The rows of distinct ids, the last of each, in their order."""
    picked = last_rows(ids)
    if picked is None:
        return ids, columns
    rows = np.array(picked, dtype=np.intp)
    return [ids[row] for row in picked], ForwardColumns(
        columns.models,
        columns.model_codes[rows],
        columns.window_starts[rows],
        columns.window_ends[rows],
        [columns.predicted[row] for row in picked],
        [columns.scores[row] for row in picked],
        columns.expires[rows],
    )
