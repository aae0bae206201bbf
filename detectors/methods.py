"""Drift methods: pure functions from binned reference and current counts to a score.

Each method reads a :class:`FeatureDistributions` (built from a profile column and the
window's counts) and returns a :class:`MethodScore`. What the score *means* (which way is
drift, the default threshold) is not here but in the method's spec in
:mod:`detectors.registry`.

Accuracy against the same computation on raw data:

- **PSI**, **Jensen-Shannon** and **chi-square** are defined on bins; they use the
  reference's quantile bins (numeric) or categories (categorical), so there is nothing
  to approximate.
- **KS**: the statistic is evaluated at the fine edges, where both empirical CDFs are
  exact, so ours is never above the exact one. Between edges the current CDF is monotone
  and the reference CDF rises by at most the reference mass of one fine bin. Edges are
  reference quantiles, so a bin holds less than ``1 / ks_resolution`` of the reference
  strictly between its edges, plus possibly a value at its upper edge carrying at most half
  that (heavier values get a bin of their own): the exact statistic exceeds ours by less
  than ``1.5 / ks_resolution``, 0.0075 at the default 200 bins, inside the 0.01 target.
  For columns with at most ``ks_resolution + 1`` distinct reference values every value has
  its own bin and the statistic is exact.
- **Wasserstein**: exact beyond the reference range (the window keeps the summed distances
  there). Inside it, both distributions' mass in a fine bin is placed at the reference's
  mean of that bin. The error is at most the reference's own displacement (its mean
  distance to its bin mean, small with 1/200 of the mass per bin) plus, for the window,
  the bin width times its mass in the bin; for a discrete reference (every distinct value
  an edge) it is exact on windows holding reference values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

from detectors.encoding import FloatArray, IntArray
from detectors.profile import ColumnProfile, FeatureKind, NumericProfile
from detectors.window import CategoricalCounts, ColumnCounts, NumericCounts

PSI_EPSILON = 1e-4
"""Share substituted for an empty bin in PSI and chi-square.

An empty bin makes ``ln(q / p)`` infinite; 1e-4 (one event in ten thousand) is the value
Evidently and most PSI write-ups use, so scores stay comparable with theirs. It caps the
contribution of a bin that is empty on one side at about ``share * ln(share / 1e-4)``.
"""


@dataclass(frozen=True)
class MethodScore:
    """What a method measured: a score, and a p-value when the method is a test."""

    score: float
    p_value: float | None = None


@dataclass(frozen=True)
class FeatureDistributions:
    """Reference and current counts of one column, as the methods need them."""

    kind: FeatureKind
    reference: IntArray
    current: IntArray
    fine_reference: IntArray | None = None
    fine_current: IntArray | None = None
    fine_means: FloatArray | None = None
    below_excess: float = 0.0
    above_excess: float = 0.0
    reference_std: float | None = None

    @property
    def n_reference(self) -> int:
        return int(self.reference.sum())

    @property
    def n_current(self) -> int:
        return int(self.current.sum())

    @classmethod
    def of(cls, profile: ColumnProfile, counts: ColumnCounts) -> FeatureDistributions:
        """Pair a profile column with a window's counts of it."""
        if isinstance(profile, NumericProfile) and isinstance(counts, NumericCounts):
            coarse = np.bincount(
                profile.coarse_index, weights=counts.counts, minlength=profile.n_coarse_bins
            ).astype(np.int64)
            coarse_reference = np.bincount(
                profile.coarse_index, weights=profile.counts_array, minlength=profile.n_coarse_bins
            ).astype(np.int64)
            return cls(
                kind=FeatureKind.NUMERIC,
                reference=coarse_reference,
                current=coarse,
                fine_reference=profile.counts_array,
                fine_current=counts.counts,
                fine_means=profile.bin_means_array,
                below_excess=counts.below_excess,
                above_excess=counts.above_excess,
                reference_std=profile.std,
            )
        if isinstance(counts, CategoricalCounts) and not isinstance(profile, NumericProfile):
            return cls(
                kind=FeatureKind.CATEGORICAL, reference=profile.bin_counts, current=counts.counts
            )
        raise TypeError(f"profile of kind {profile.kind} does not match {type(counts).__name__}")


def _shares(counts: IntArray) -> FloatArray:
    return np.asarray(counts / counts.sum(), dtype=np.float64)


def _smoothed_shares(counts: IntArray) -> FloatArray:
    shares = _shares(counts)
    return np.where(shares == 0.0, PSI_EPSILON, shares)


def psi(dist: FeatureDistributions) -> MethodScore:
    """Population Stability Index on the reference bins, empty bins set to ``PSI_EPSILON``.

    Examples
    --------
    >>> d = FeatureDistributions(FeatureKind.CATEGORICAL, np.array([50, 50]), np.array([30, 70]))
    >>> round(psi(d).score, 4)
    0.1695
    """
    reference = _smoothed_shares(dist.reference)
    current = _smoothed_shares(dist.current)
    return MethodScore(float(np.sum((current - reference) * np.log(current / reference))))


def jensen_shannon(dist: FeatureDistributions) -> MethodScore:
    """Jensen-Shannon distance (base 2, so in [0, 1]) on the reference bins."""
    return MethodScore(
        float(distance.jensenshannon(_shares(dist.reference), _shares(dist.current), base=2))
    )


def chi_square(dist: FeatureDistributions) -> MethodScore:
    """Pearson's chi-square goodness of fit of the window counts to the reference shares.

    Expected counts use the smoothed reference shares, renormalised to the window's total,
    so a category absent from the reference gives a large (finite) statistic.
    """
    expected_shares = _smoothed_shares(dist.reference)
    expected = expected_shares / expected_shares.sum() * dist.n_current
    result = stats.chisquare(f_obs=dist.current, f_exp=expected)
    return MethodScore(float(result.statistic), float(result.pvalue))


KS_EXACT_MAX_SIZE = 400
"""Largest effective size ``n·m / (n + m)`` for which the KS p-value uses the exact
finite-n Kolmogorov distribution (as ``ks_2samp(method="asymp")`` does); above it the
corrected limiting distribution is used. See :func:`kolmogorov_smirnov`."""


def kolmogorov_smirnov(dist: FeatureDistributions) -> MethodScore:
    """Two-sample KS statistic on the fine bins, with its p-value.

    The p-value is that of ``scipy.stats.ks_2samp(method="asymp")`` for our statistic,
    ``kstwo.sf(D, round(en))`` with ``en = n·m / (n + m)``, while ``en <= 400``. That
    finite-n distribution costs 1.5 ms per feature at en = 4,500 and 9 ms at 25,000, which
    would blow the 5 ms budget of a 25-feature window, so larger windows use the limiting
    Kolmogorov distribution with Stephens' (1970) correction,
    ``kstwobign.sf((√en + 0.12 + 0.11/√en)·D)``: about 15 µs, and never more than 0.0065
    from scipy's value at en > 400 (0.0022 at en >= 4,000; measured over all D in
    ``tests/detectors/test_methods.py``).
    """
    reference, current = _fine(dist)
    n, m = int(reference.sum()), int(current.sum())
    cdf_reference = np.cumsum(reference) / n
    cdf_current = np.cumsum(current) / m
    statistic = float(np.max(np.abs(cdf_reference - cdf_current)))
    effective = n * m / (n + m)
    if effective <= KS_EXACT_MAX_SIZE:
        p_value = float(stats.kstwo.sf(statistic, round(effective)))
    else:
        root = math.sqrt(effective)
        # special.kolmogorov is kstwobign.sf itself, without the ~60 µs of argument
        # handling around it (x >= 0 here, inside the distribution's support).
        p_value = float(special.kolmogorov((root + 0.12 + 0.11 / root) * statistic))
    return MethodScore(statistic, min(1.0, max(0.0, p_value)))


def wasserstein(dist: FeatureDistributions) -> MethodScore:
    """First Wasserstein distance divided by the reference standard deviation.

    Dividing by the reference spread makes one threshold (0.1) work for every feature;
    for a constant reference column (std 0) the distance is reported undivided.
    """
    return MethodScore(wasserstein_distance(dist) / (dist.reference_std or 1.0))


def wasserstein_distance(dist: FeatureDistributions) -> float:
    """Unnormalised W1 between the binned reference and current distributions."""
    reference, current = _fine(dist)
    means = dist.fine_means
    assert means is not None
    n, m = reference.sum(), current.sum()
    below, above = float(current[0] / m), float(current[-1] / m)
    # Both distributions' mass in each inner fine bin sits at the reference's mean of that
    # bin, so W1 is the integral of |F - G| between consecutive bin means; mass beyond the
    # range is added from the window's exact summed distances.
    gaps = np.cumsum(reference[1:-1])[:-1] / n - (below + np.cumsum(current[1:-1])[:-1] / m)
    inner_means = means[1:-1]
    inside = float(np.sum(np.abs(gaps) * np.diff(inner_means)))
    inside += below * float(inner_means[0] - means[0]) + above * float(means[-1] - inner_means[-1])
    return inside + (dist.below_excess + dist.above_excess) / float(m)


def _fine(dist: FeatureDistributions) -> tuple[IntArray, IntArray]:
    if dist.fine_reference is None or dist.fine_current is None:
        raise TypeError("this method needs a numeric column's fine bins")
    return dist.fine_reference, dist.fine_current
