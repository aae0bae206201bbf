"""Calibrated verdicts: how large a binned score gets by chance in a window of n events.

A fixed cutoff (PSI 0.2) is wrong at both ends. When nothing changed, the window and the
reference are two samples of one population, and the score of a window of ``n`` events
still spreads by about ``(1/n + 1/N)·χ²(k - 1)`` (``N`` reference rows, ``k`` bins): at 200
events a stable feature crosses 0.2 now and then, at a million events a trivial shift
stays under it forever. A calibrated verdict asks instead how likely the observed score
is under that spread, which gives every binned score a p-value: the p-values of a
window's features are then adjusted together (Benjamini-Hochberg, as the test methods'
are), and a feature drifts when its shift is both statistically real (adjusted p-value
at most ``alpha``) and large enough to matter (the score at least an effect floor).

How the spread is estimated, per column, method and window size:

- **A parametric bootstrap on the reference's bins, both sides drawn.** Each of ``draws``
  replicates draws a reference of ``N`` and a window of ``n`` from the reference's bin
  shares and scores the pair. Comparing draws with the reference they came from would
  treat the reference as exact and understate the spread (the bias of thresholds taken
  from reference chunks compared with a reference that contains them, nannyml#426).
- **A scaled chi-square matched to the replicates' mean and variance**, ``a·χ²(nu)``, the
  large-sample law of PSI, gives the tail: a p-value of 1e-6 cannot be read off a few
  hundred replicates, but the fitted law follows them where they are dense. Binned
  Jensen-Shannon is a distance (a square root): its square is fitted the same way.
- **Seeded and cached.** The seed comes from the reference's fingerprint, the column, the
  method and the size, so a verdict is reproducible; sizes are bucketed (four buckets per
  doubling, each estimated at its smallest size, which errs on the side of a larger
  spread), and a bucket is estimated once per process.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

import numpy as np
from scipy import special

from detectors.encoding import FloatArray, IntArray
from detectors.methods import PSI_EPSILON

CALIBRATED_METHODS = ("psi", "jensenshannon")
"""Methods with a calibrated verdict: the binned scores without a p-value of their own."""

DRAWS = 400
BUCKETS_PER_DOUBLING = 4
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class NullModel:
    """The fitted law of a method's (squared, for a distance) score under no drift."""

    scale: float
    dof: float

    def p_value(self, score: float, *, squared: bool = False) -> float:
        """P(score >= the observed one | no drift)."""
        statistic = score * score if squared else score
        if self.scale <= 0.0 or not math.isfinite(self.dof) or self.dof <= 0.0:
            # Every replicate scored the same (a constant column): any larger score is news.
            return 1.0 if statistic <= 0.0 else 0.0
        # special.chdtrc is chi2.sf without scipy.stats' ~50 µs of argument handling.
        return float(special.chdtrc(self.dof, statistic / self.scale))


def size_bucket(n: int) -> int:
    """The smallest size of ``n``'s bucket (four buckets per doubling)."""
    if n < 1:
        raise ValueError(f"a window size is at least 1, got {n}")
    level = math.floor(BUCKETS_PER_DOUBLING * math.log2(n) + 1e-9)
    smallest: float = math.pow(2.0, level / BUCKETS_PER_DOUBLING)
    return max(1, math.ceil(smallest - 1e-9))


def _psi_rows(reference: IntArray, current: IntArray) -> FloatArray:
    p = reference / reference.sum(axis=1, keepdims=True)
    q = current / current.sum(axis=1, keepdims=True)
    p = np.where(p == 0.0, PSI_EPSILON, p)
    q = np.where(q == 0.0, PSI_EPSILON, q)
    return np.asarray(np.sum((q - p) * np.log(q / p), axis=1), dtype=np.float64)


def _js_squared_rows(reference: IntArray, current: IntArray) -> FloatArray:
    # scipy's jensenshannon(base=2), squared: the divergence in bits.
    p = reference / reference.sum(axis=1, keepdims=True)
    q = current / current.sum(axis=1, keepdims=True)
    m = (p + q) / 2.0
    divergence = (special.rel_entr(p, m).sum(axis=1) + special.rel_entr(q, m).sum(axis=1)) / 2.0
    return np.asarray(np.maximum(divergence, 0.0) / math.log(2.0), dtype=np.float64)


_REPLICATE_SCORES: dict[str, Callable[[IntArray, IntArray], FloatArray]] = {
    "psi": _psi_rows,
    "jensenshannon": _js_squared_rows,
}


def is_squared(method: str) -> bool:
    """Whether the null law is fitted to the square of the method's score (a distance)."""
    return method == "jensenshannon"


def replicate_scores(
    reference_counts: IntArray, n: int, method: str, draws: int, seed: int
) -> FloatArray:
    """``draws`` scores (squared for a distance) of a window of ``n`` against a reference of
    the same size as this one, both drawn from this reference's bin shares."""
    counts = np.asarray(reference_counts, dtype=np.int64)
    total = int(counts.sum())
    shares = counts / total
    rng = np.random.default_rng(seed)
    references = rng.multinomial(total, shares, size=draws)
    windows = rng.multinomial(n, shares, size=draws)
    return _REPLICATE_SCORES[method](references, windows)


def fit_scaled_chi_square(scores: FloatArray) -> NullModel:
    """``a·χ²(nu)`` with the scores' mean and variance: ``a = var / (2·mean)``,
    ``nu = 2·mean² / var``."""
    mean, variance = float(np.mean(scores)), float(np.var(scores, ddof=1))
    if mean <= 0.0 or variance <= 0.0:
        return NullModel(scale=0.0, dof=0.0)
    return NullModel(scale=variance / (2.0 * mean), dof=2.0 * mean * mean / variance)


def _seed(fingerprint: str, column: str, method: str, bucket: int) -> int:
    digest = hashlib.sha256(f"{fingerprint}\0{column}\0{method}\0{bucket}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class NullModels:
    """Null laws per (reference, column, method, size bucket), estimated on first use.

    Thread-safe (the worker judges windows from several threads) and bounded: the least
    recently used entries go first.
    """

    def __init__(self, draws: int = DRAWS, capacity: int = _CACHE_SIZE) -> None:
        self.draws = draws
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, str, str, int], NullModel] = OrderedDict()
        self._lock = Lock()

    def get(
        self, fingerprint: str, column: str, method: str, reference_counts: IntArray, n: int
    ) -> NullModel:
        bucket = size_bucket(n)
        key = (fingerprint, column, method, bucket)
        with self._lock:
            found = self._models.get(key)
            if found is not None:
                self._models.move_to_end(key)
                return found
        seed = _seed(fingerprint, column, method, bucket)
        model = fit_scaled_chi_square(
            replicate_scores(reference_counts, bucket, method, self.draws, seed)
        )
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model


DEFAULT_NULL_MODELS = NullModels()
"""The process's cache (a window's verdicts reuse what earlier windows estimated)."""
