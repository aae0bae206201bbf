"""A reference file registration cannot read is a ConfigurationError naming the file, never a
parser's exception. (That registration stays below the worker and the API is a layering
contract in pyproject.toml, ``[tool.importlinter]``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.errors import ConfigurationError
from registration import profile_reference
from tests.stream_app import scenario


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.csv", b"", "r.csv is not readable CSV: No columns to parse"),
        ("r.csv", b"a,b\n1,2\n3,4,5,6\n", "r.csv is not readable CSV: Error tokenizing data"),
        ("r.parquet", b"age,plan\n1,a\n", "r.parquet is not readable Parquet"),
    ],
)
def test_an_unreadable_file_is_a_configuration_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message) as raised:
        profile_reference(scenario.model_config(), path)
    assert str(tmp_path) not in str(raised.value)  # the server's paths stay out of API errors


def test_a_false_alarm_budget_lowers_alpha_to_fit_the_day() -> None:
    from registration.profiling import drift_config_of
    from schemas import ModelConfig

    def alpha(window_seconds: int, per_day: float | None) -> float:
        config = ModelConfig.from_dict(
            {
                "model_id": "m",
                "features": {"x": "numeric"},
                "window_seconds": window_seconds,
                "drift": {"false_alarms_per_day": per_day},
            }
        )
        return drift_config_of(config).alpha

    assert alpha(300, None) == 0.01
    assert alpha(300, 1.0) == pytest.approx(1.0 * 300 / 86400)  # 288 windows a day
    assert alpha(300, 1.0) * 86400 / 300 == pytest.approx(1.0), "the budget, exactly"
    assert alpha(86400, 1.0) == 0.01, "a budget looser than alpha leaves alpha alone"
    with pytest.raises(ConfigurationError, match="false_alarms_per_day"):
        alpha(300, 0.0)


def test_per_value_psi_bins_follow_the_model_setting() -> None:
    import numpy as np
    import pandas as pd

    from schemas import ModelConfig

    # 24 equally common values: none heavy enough (4 %) for a bin of its own by share.
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"rating": rng.integers(1, 25, 4800).astype(float)})

    def psi_edges(value_bins_max: int) -> int:
        config = ModelConfig.from_dict(
            {
                "model_id": "m",
                "features": {"rating": "numeric"},
                "drift": {"value_bins_max": value_bins_max},
            }
        )
        column = profile_reference(config, reference).columns["rating"]
        return len(column.psi_edges)  # type: ignore[union-attr]

    assert psi_edges(30) >= 24, "one PSI bin per value"
    assert psi_edges(20) <= 12, "24 values are more than 20: quantile bins"
    assert psi_edges(0) <= 12, "the rule turned off"
