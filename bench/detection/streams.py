"""Tabular streams of our own making, with known change points and magnitudes.

One population of ten columns, chosen for the ways real features differ: four normal,
two log-normal (skewed), two discrete (a Poisson count, and ``month``: 12 equally common
integers), two categorical (four and six categories with unequal shares). A scenario
draws a reference from it, then runs of windows, the first ``before`` windows from the
population itself and the rest from a changed one (or none changed: stationary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Change = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]

PLAN = (["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1])
REGION = (["n", "s", "e", "w", "c", "x"], [0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
COLUMNS = [
    "normal0", "normal1", "normal2", "normal3", "income", "spend", "visits", "month", "plan",
    "region",
]  # fmt: skip


def population(rng: np.random.Generator, n: int) -> pd.DataFrame:
    data: dict[str, object] = {f"normal{i}": rng.normal(0.0, 1.0, size=n) for i in range(4)}
    data["income"] = rng.lognormal(10.0, 0.5, size=n)
    data["spend"] = rng.lognormal(3.0, 1.0, size=n)
    data["visits"] = rng.poisson(3.0, size=n).astype(float)
    data["month"] = rng.integers(1, 13, size=n).astype(float)
    data["plan"] = rng.choice(PLAN[0], p=PLAN[1], size=n)
    data["region"] = rng.choice(REGION[0], p=REGION[1], size=n)
    return pd.DataFrame(data)


def mean_shift(column: str, sigmas: float) -> Change:
    def change(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        frame[column] = frame[column] + sigmas  # the normal columns have sigma 1
        return frame

    return change


def scale_change(column: str, factor: float) -> Change:
    def change(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        frame[column] = frame[column] * factor
        return frame

    return change


def category_mix(column: str, moved: float) -> Change:
    """Total variation ``moved``: that share of the events of the most common category
    become the least common one."""

    def change(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        categories, shares = PLAN if column == "plan" else REGION
        first, last = categories[0], categories[-1]
        switch = (frame[column] == first).to_numpy() & (rng.random(len(frame)) < moved / shares[0])
        frame.loc[switch, column] = last
        return frame

    return change


def vanishing_value(column: str, value: float) -> Change:
    """The value disappears; its events take the other values (at their shares)."""

    def change(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        gone = (frame[column] == value).to_numpy()
        others = frame.loc[~gone, column].to_numpy()
        frame.loc[gone, column] = rng.choice(others, size=int(gone.sum()))
        return frame

    return change


def missing_burst(column: str, share: float) -> Change:
    """That share of the column's values go missing (a broken upstream join, say)."""

    def change(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        frame.loc[rng.random(len(frame)) < share, column] = np.nan
        return frame

    return change


@dataclass(frozen=True)
class Scenario:
    """``runs`` runs of ``before + after`` windows of ``window`` events each; the change
    (if any) applies from window ``before`` on and concerns ``target``."""

    name: str
    window: int
    runs: int
    before: int
    after: int
    change: Change | None = None
    target: str | None = None
    description: str = ""
    reference_rows: int = 20_000
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def change_point(self) -> int | None:
        return None if self.change is None else self.before

    def windows(self, rng: np.random.Generator) -> list[pd.DataFrame]:
        frames = []
        for index in range(self.before + self.after):
            frame = population(rng, self.window)
            if self.change is not None and index >= self.before:
                frame = self.change(frame, rng)
            frames.append(frame)
        return frames


STATIONARY_SIZES = {200: 3_000, 1_000: 1_000, 5_000: 300, 20_000: 80, 100_000: 30, 1_000_000: 8}


def scenarios(quick: bool = False) -> list[Scenario]:
    scale = 4 if quick else 1
    found = [
        Scenario(
            f"stationary, {size:,} events",
            size,
            runs=1,
            before=max(4, count // scale),
            after=0,
            description="every window from the reference's population",
        )
        for size, count in STATIONARY_SIZES.items()
        if not (quick and size > 100_000)
    ]
    runs = max(10, 40 // scale)
    found += [
        Scenario(
            "mean shift 0.5 σ",
            5_000,
            runs,
            3,
            3,
            mean_shift("normal0", 0.5),
            "normal0",
            "normal0 + 0.5 σ",
        ),
        Scenario(
            "category mix, TV 0.1",
            1_000,
            runs,
            3,
            3,
            category_mix("plan", 0.1),
            "plan",
            "10 % of the events move from plan a (40 %) to d (10 %)",
        ),
        Scenario(
            "vanishing value (8 %)",
            1_000,
            runs,
            3,
            3,
            vanishing_value("month", 1.0),
            "month",
            "month 1 (1/12 of the events) disappears",
        ),
        Scenario(
            "missing values (15 %)",
            1_000,
            runs,
            8,
            3,
            missing_burst("normal2", 0.15),
            "normal2",
            "15 % of normal2's values go missing (none are in the reference)",
        ),
        Scenario(
            "scale × 1.5",
            1_000,
            runs,
            3,
            3,
            scale_change("normal1", 1.5),
            "normal1",
            "normal1's spread grows by half",
        ),
    ]
    return found
