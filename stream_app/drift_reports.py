"""The reports of final windows, kept for the quality revisions their labels call for.

Labels that arrive for a final window revise its quality metrics on the next tick
(``Stage2._revise_quality``), which evaluated the whole window again: drift, data quality
and output drift of every feature with every method, about two thirds of a revision's
time, and labels for random predictions revise hundreds of windows a tick. Those parts
are read from the window's binned columns alone, which labels do not touch.

So the report a window was evaluated to is kept (a bounded number, the most recently used),
with what it was evaluated from: a digest of the binned state, the reference's
fingerprint and the drift settings. Evaluating the same window again from the same three
reads only its quality part again (:func:`detectors.revise_quality`); anything else is
evaluated in full: a state that changed (a late partial merged into it), another
reference or settings, a window binned from its sample, a report not kept (or no longer).
The report is :func:`detectors.evaluate_window`'s either way; a test holds stage 2's
results with and without kept reports to the same rows.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors import DriftConfig, WindowReport, WindowState, evaluate_window, revise_quality

if TYPE_CHECKING:
    from stream_app.registry import ModelRuntime
    from stream_app.stage2 import WindowRecord

# A report of 25 features is ~10 KB: a few MB at most, for the windows labels revise.
KEPT_REPORTS = 512


@dataclass(frozen=True)
class _Kept:
    digest: bytes
    fingerprint: str
    config: DriftConfig
    report: WindowReport


class DriftReports:
    """``evaluate_window`` of stage 2's windows, with the drift part of a window's last
    report reused while its binned state, reference and settings stay the same."""

    def __init__(self, capacity: int = KEPT_REPORTS) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.reused = 0  # evaluations that read the quality part alone

    def evaluate(
        self, key: str, runtime: ModelRuntime, record: WindowRecord, state: WindowState
    ) -> WindowReport:
        """The report of the window ``key`` (its record and its state, as stage 2 built
        them for ``runtime``, bound to the window's version)."""
        profile = runtime.profile
        assert profile is not None  # stage 2 evaluates only windows with a reference
        config = runtime.drift_config
        digest = _digest(record)
        kept = self._kept.get(key)
        if (
            digest is not None
            and kept is not None
            and kept.digest == digest
            and kept.fingerprint == profile.fingerprint
            and kept.config == config
        ):
            self._kept.move_to_end(key)
            self.reused += 1
            return revise_quality(kept.report, state)
        report = evaluate_window(profile, state, config)
        if digest is not None and self.capacity > 0:
            self._kept[key] = _Kept(digest, profile.fingerprint, config, report)
            self._kept.move_to_end(key)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        return report

    def forget(self, key: str) -> None:
        """Drop a window's report (the window is gone)."""
        self._kept.pop(key, None)


def _digest(record: WindowRecord) -> bytes | None:
    """What the binned columns are read from; None: not from the state alone (a sample)."""
    if record.sample is not None and record.sample.get("rows"):
        return None
    return hashlib.blake2b(record.state or b"", digest_size=16).digest()
