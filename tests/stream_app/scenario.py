"""A generated prediction stream with known drift and known label quality, for stream tests.

Shared by the stage unit tests (in-memory stores) and the integration tests (real broker):
both assert against what this module says it injected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from schemas.model_config import ModelConfig

MODEL_ID = "churn"
WINDOW = 60
LATENESS = 5
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a window boundary
DRIFTED_FEATURES = ("income", "plan")


def model_config(**overrides: Any) -> ModelConfig:
    data: dict[str, Any] = {
        "model_id": MODEL_ID,
        "task": "binary",
        "classes": ["0", "1"],
        "features": {
            "age": "numeric",
            "income": "numeric",
            "plan": "categorical",
            "tenure": "numeric",
        },
        "window_seconds": WINDOW,
        "allowed_lateness_seconds": LATENESS,
        "label_horizon_seconds": 3600,
        "anomaly": {"min_history": 3},
        "retrain": {
            "min_drifted_windows": 2,
            "of_last_windows": 3,
            "cooldown_seconds": 100 * WINDOW,
        },
    }
    data.update(overrides)
    return ModelConfig.from_dict(data)


def _frame(rng: np.random.Generator, n: int, drift: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "income": rng.lognormal(10 + (0.9 if drift else 0.0), 0.4, n),
            "plan": rng.choice(
                ["free", "pro", "team"], p=[0.2, 0.3, 0.5] if drift else [0.6, 0.3, 0.1], size=n
            ),
            "tenure": rng.exponential(3.0, n),
        }
    )
    frame["score"] = 1 / (1 + np.exp(-(frame["age"].to_numpy() - 40) / 8))
    frame["prediction"] = (frame["score"] >= 0.5).astype(int).astype(str)
    return frame


def reference(seed: int = 1, n: int = 5000) -> pd.DataFrame:
    return _frame(np.random.default_rng(seed), n, drift=False)


@dataclass(frozen=True)
class Event:
    prediction_id: str
    timestamp: float
    features: dict[str, Any]
    prediction: str
    score: float
    label: str
    window: int

    def prediction_json(self) -> bytes:
        return orjson.dumps(
            {
                "model_id": MODEL_ID,
                "model_version": "v1",
                "prediction_id": self.prediction_id,
                "timestamp": self.timestamp,
                "features": self.features,
                "prediction": self.prediction,
                "score": self.score,
            }
        )

    def label_json(self) -> bytes:
        return orjson.dumps(
            {
                "model_id": MODEL_ID,
                "prediction_id": self.prediction_id,
                "label": self.label,
                "timestamp": self.timestamp + 1,
            }
        )


def events(
    windows: int,
    per_window: int,
    drift_from: int,
    decay_from: int,
    seed: int = 2,
    drift_windows: frozenset[int] | None = None,
) -> Iterator[Event]:
    """Events window by window, in time order; drift and label decay from known windows.

    ``drift_windows``, when given, are the drifted windows instead of ``drift_from`` on.
    """
    rng = np.random.default_rng(seed)
    for w in range(windows):
        drifted = w in drift_windows if drift_windows is not None else w >= drift_from
        frame = _frame(rng, per_window, drift=drifted)
        times = START + w * WINDOW + np.sort(rng.uniform(0, WINDOW - 0.001, per_window))
        truth = rng.random(per_window) < frame["score"].to_numpy()
        if w >= decay_from:
            truth = np.where(rng.random(per_window) < 0.45, ~truth, truth)
        for i in range(per_window):
            row = frame.iloc[i]
            yield Event(
                prediction_id=f"w{w}-{i}",
                timestamp=float(times[i]),
                features={
                    "age": float(row["age"]),
                    "income": float(row["income"]),
                    "plan": str(row["plan"]),
                    "tenure": float(row["tenure"]),
                },
                prediction=str(row["prediction"]),
                score=float(row["score"]),
                label=str(int(truth[i])),
                window=w,
            )


def label_envelope(events: Sequence[Event]) -> bytes:
    """The labels of ``events`` in one label envelope."""
    records = []
    for event in events:
        record = orjson.loads(event.label_json())
        del record["model_id"]
        records.append(record)
    return orjson.dumps({"model_id": MODEL_ID, "records": records})
