"""3-sigma limits on drift scores frozen from the reference, without judging a chunk against
itself.

A drift score's limits taken from the reference need a series of scores under no drift:
cut the reference into chunks of a window's size and score each chunk. Scored against a
profile of the whole reference, a chunk is compared with data that contains it, so its
score comes out too small and so do the limits: every real window, which the reference
does not contain, then looks drifted (NannyML's issue 426). Here each chunk is scored
against a profile of the *other* chunks (leave one chunk out), which is how a window the
reference has never seen is scored; ``in_sample=True`` gives the biased series, for
comparison (``bench/detection`` measures both).

Cost: one profile of the rest of the reference per chunk (``max_chunks`` bounds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from detectors.control import ControlLimits, FrozenBaseline
from detectors.drift import DriftConfig, evaluate_window
from detectors.profile import ProfileSettings, build_profile
from detectors.window import WindowState
from driftline.errors import InvalidInputError

SCORING = DriftConfig(verdicts="fixed", also_report=())  # scores only: no verdicts needed


def chunk_drift_scores(
    reference: pd.DataFrame,
    chunk_rows: int,
    *,
    schema: Mapping[str, Any] | None = None,
    settings: ProfileSettings | None = None,
    config: DriftConfig = SCORING,
    max_chunks: int = 20,
    in_sample: bool = False,
) -> dict[str, list[float]]:
    """Per feature (``"drift:<feature>"``, the stream's series names): each chunk's score.

    Chunks are consecutive ``chunk_rows`` rows of ``reference`` (at most ``max_chunks``,
    the remainder dropped); each is scored against a profile of the rest of the reference,
    or of all of it when ``in_sample``.
    """
    chunks = min(len(reference) // chunk_rows, max_chunks)
    if chunks < 3 or chunk_rows < 1:
        raise InvalidInputError(
            f"a reference of {len(reference)} rows holds {chunks} chunks of {chunk_rows}: "
            "at least 3 are needed for limits"
        )
    whole = build_profile(reference, schema=schema, settings=settings) if in_sample else None
    scores: dict[str, list[float]] = {}
    for index in range(chunks):
        chunk = reference.iloc[index * chunk_rows : (index + 1) * chunk_rows]
        if whole is None:
            rest = reference.drop(reference.index[index * chunk_rows : (index + 1) * chunk_rows])
            profile = build_profile(rest, schema=schema, settings=settings)
        else:
            profile = whole
        columns = {name: chunk[name].to_numpy() for name in chunk.columns}
        state = WindowState.empty(profile).update(profile, columns)
        for feature in evaluate_window(profile, state, config).features:
            score = feature.primary.score
            scores.setdefault(f"drift:{feature.feature}", []).append(
                np.nan if score is None else float(score)
            )
    return scores


def drift_score_baselines(
    reference: pd.DataFrame,
    chunk_rows: int,
    limits: ControlLimits | None = None,
    **options: Any,
) -> dict[str, FrozenBaseline]:
    """Frozen 3-sigma limits per drift-score series, from leave-one-chunk-out scores.

    ``options`` go to :func:`chunk_drift_scores`. ``limits`` gives ``n_sigma``, ``min_std``
    and the fewest usable chunks (``min_history``, here at most the number of chunks).
    """
    scores = chunk_drift_scores(reference, chunk_rows, **options)
    chosen = limits or ControlLimits()
    found = {}
    for series, values in scores.items():
        usable = min(chosen.min_history, len(values))
        freeze = ControlLimits(
            chosen.n_sigma, max(chosen.window, 2), max(usable, 2), chosen.min_std
        )
        found[series] = freeze.baseline(values)
    return found
