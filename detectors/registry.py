"""The drift-method registry: a frozen spec per method, kept apart from its function.

A model's configuration names methods (``"psi"``, ``"ks"`` …); the registry turns names into
:class:`DriftMethod` objects and says which names exist. It is built explicitly from a list
(:func:`default_registry`), not filled by import side effects, so what is registered is
visible in one place and tests can build their own.

The direction of a verdict is data, not a hidden comparison in each function:
``SCORE_AT_LEAST`` means drift when ``score >= threshold``; ``P_VALUE_BELOW`` means drift
when ``p_value < threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from detectors.methods import (
    FeatureDistributions,
    MethodScore,
    chi_square,
    jensen_shannon,
    kolmogorov_smirnov,
    psi,
    wasserstein,
)
from detectors.profile import FeatureKind
from detectors.window import WINDOW_STATE_VERSION
from driftline.errors import ConfigurationError


class UnknownDetectorError(ConfigurationError):
    """A configuration names a drift method that is not registered (it lists the valid ones)."""


class Direction(StrEnum):
    """Which side of the threshold is drift."""

    SCORE_AT_LEAST = "score_at_least"
    P_VALUE_BELOW = "p_value_below"


@dataclass(frozen=True)
class MethodSpec:
    """What a drift method is, apart from how it is computed.

    Parameters
    ----------
    name
        Key used in configuration.
    display_name
        Name for people (alerts, dashboard).
    kinds
        Feature kinds the method accepts.
    default_threshold
        Drift threshold when the configuration gives none.
    direction
        Whether a high score or a low p-value is drift.
    state_version
        Version of the window state the method reads; stored results carry it.
    """

    name: str
    display_name: str
    kinds: frozenset[FeatureKind]
    default_threshold: float
    direction: Direction
    state_version: int = WINDOW_STATE_VERSION

    def is_drift(self, value: float, threshold: float) -> bool:
        """Apply the direction: ``value`` is the score or the (adjusted) p-value."""
        if self.direction is Direction.SCORE_AT_LEAST:
            return value >= threshold
        return value < threshold


@dataclass(frozen=True)
class DriftMethod:
    """A spec and the pure function that computes it."""

    spec: MethodSpec
    compute: Callable[[FeatureDistributions], MethodScore]

    @property
    def name(self) -> str:
        return self.spec.name


NUMERIC = frozenset({FeatureKind.NUMERIC})
CATEGORICAL = frozenset({FeatureKind.CATEGORICAL})
ANY_KIND = NUMERIC | CATEGORICAL

PSI = MethodSpec("psi", "Population Stability Index", ANY_KIND, 0.2, Direction.SCORE_AT_LEAST)
KS = MethodSpec("ks", "Kolmogorov-Smirnov (p-value)", NUMERIC, 0.05, Direction.P_VALUE_BELOW)
CHI_SQUARE = MethodSpec(
    "chisquare", "Chi-square (p-value)", CATEGORICAL, 0.05, Direction.P_VALUE_BELOW
)
JENSEN_SHANNON = MethodSpec(
    "jensenshannon", "Jensen-Shannon distance", ANY_KIND, 0.1, Direction.SCORE_AT_LEAST
)
WASSERSTEIN = MethodSpec(
    "wasserstein", "Wasserstein distance (normed)", NUMERIC, 0.1, Direction.SCORE_AT_LEAST
)


class MethodRegistry:
    """Drift methods by name.

    Examples
    --------
    >>> registry = default_registry()
    >>> registry.names(FeatureKind.CATEGORICAL)
    ['chisquare', 'jensenshannon', 'psi']
    >>> registry.get("psi").spec.default_threshold
    0.2
    >>> registry.get("kl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors.registry.UnknownDetectorError: unknown drift method 'kl'; valid: chisquare, ...
    """

    def __init__(self, methods: Iterable[DriftMethod]) -> None:
        self._methods: dict[str, DriftMethod] = {}
        for method in methods:
            if method.name in self._methods:
                raise ConfigurationError(f"drift method {method.name!r} is registered twice")
            self._methods[method.name] = method

    def get(self, name: str, kind: FeatureKind | None = None) -> DriftMethod:
        """The method called ``name``; with ``kind``, also check that it accepts that kind."""
        method = self._methods.get(name)
        if method is None:
            raise UnknownDetectorError(
                f"unknown drift method {name!r}; valid: {', '.join(self.names())}"
            )
        if kind is not None and kind not in method.spec.kinds:
            raise ConfigurationError(
                f"drift method {name!r} does not apply to {kind.value} features; "
                f"for those use one of: {', '.join(self.names(kind))}"
            )
        return method

    def names(self, kind: FeatureKind | None = None) -> list[str]:
        return sorted(
            name for name, m in self._methods.items() if kind is None or kind in m.spec.kinds
        )

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[DriftMethod]:
        return iter(self._methods.values())

    def __len__(self) -> int:
        return len(self._methods)


def default_registry() -> MethodRegistry:
    """The methods Driftline ships, in one explicit list."""
    return MethodRegistry(
        [
            DriftMethod(PSI, psi),
            DriftMethod(KS, kolmogorov_smirnov),
            DriftMethod(CHI_SQUARE, chi_square),
            DriftMethod(JENSEN_SHANNON, jensen_shannon),
            DriftMethod(WASSERSTEIN, wasserstein),
        ]
    )
