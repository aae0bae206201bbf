"""Windows a model had no events in, for its volume alert rules.

A window without events never gets a record in stage 2 (records are made by partials), so
nothing would ever say that a model went quiet. For models with a ``volume`` rule, stage 2
asks after each finalization round which of the model's windows since its last one have
closed without a record, and evaluates its alert rules on each as an empty window (no
result rows are written: the window has no results, only alerts).

Only the last ``limit`` of a long silence are evaluated: alert states count windows in a
row, so more of the same empty window changes nothing, and a stream that stopped months ago
(an idle watermark follows the wall clock) must not cost one evaluation per window since.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from schemas.alert_rules import AlertRuleSpec


def evaluations_needed(rules: Sequence[AlertRuleSpec]) -> int:
    """How many empty windows in a row can still change an alert (0: no volume rule)."""
    if not any(rule.kind == "volume" for rule in rules):
        return 0
    return max(rule.for_windows + rule.keep_firing_windows for rule in rules) + 1


def empty_window_starts(
    after: float,
    size: float,
    lateness: float,
    watermark: float,
    *,
    limit: int,
) -> list[float]:
    """Starts of the windows after the one starting at ``after`` that have closed by
    ``watermark`` (windows are aligned to multiples of ``size``), the last ``limit`` of them.

    >>> empty_window_starts(60.0, 60.0, 5.0, 250.0, limit=10)  # 180 closed at 245
    [120.0, 180.0]
    >>> empty_window_starts(60.0, 60.0, 5.0, 1e6, limit=2)
    [999840.0, 999900.0]
    >>> empty_window_starts(60.0, 60.0, 5.0, 184.0, limit=2)  # 120 closes at 185
    []
    """
    if limit <= 0:
        return []
    last = math.floor((watermark - lateness - size) / size) * size  # latest closed start
    first = after + size
    if last < first:
        return []
    count = round((last - first) / size) + 1
    return [last - size * i for i in range(min(count, limit))][::-1]
