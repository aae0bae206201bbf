"""Reading a replay file (no broker): CSV, Parquet and JSON lines give the same events;
columns are mapped; labels come from a column (with a delay or their own time) or a file;
events leave in event-time order; a row that cannot be sent stops the replay naming it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest

from driftline.errors import ConfigurationError
from driftline.replay import ReplayColumns, load_events
from tests.stream_app import scenario


def frame(n: int = 40) -> pd.DataFrame:
    """The scenario's events in a file's shape, out of time order (the file needn't be)."""
    events = list(scenario.events(2, n // 2, drift_from=1, decay_from=99))
    rows = [
        {
            "prediction_id": e.prediction_id,
            "timestamp": e.timestamp,
            **e.features,
            "prediction": int(e.prediction),
            "score": e.score,
            "label": int(e.label),
        }
        for e in events
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


def write(table: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:  # orjson: every digit of a float (pandas' to_json keeps 15 at most)
        rows = table.astype(object).where(table.notna(), None).to_dict("records")
        path.write_bytes(b"\n".join(orjson.dumps(row) for row in rows))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_gives_the_contracts_records_in_time_order(
    tmp_path: Path, suffix: str
) -> None:
    table = frame()
    events = load_events("churn", "binary", write(table, tmp_path / f"p{suffix}"), ReplayColumns())
    assert len(events.predictions) == len(table) and len(events.labels) == len(table)
    times = [r["timestamp"] for r in events.predictions]
    assert times == sorted(times) == sorted(table["timestamp"].tolist())
    first = events.predictions[0]
    row = table.loc[table["prediction_id"] == first["prediction_id"]].iloc[0]
    assert first["features"] == {k: row[k] for k in ("age", "income", "plan", "tenure")}
    assert first["prediction"] == str(row["prediction"])  # a classifier's classes are strings
    assert first["score"] == pytest.approx(row["score"])
    assert events.features == ["age", "income", "plan", "tenure"]


def test_labels_and_predictions_merge_by_event_time(tmp_path: Path) -> None:
    events = load_events(
        "churn", "binary", write(frame(), tmp_path / "p.csv"), ReplayColumns(), label_delay=30.0
    )
    merged = list(events.in_time_order())
    moments = [item["timestamp"] if kind == "prediction" else item[2] for kind, item in merged]
    assert moments == sorted(moments)
    assert {kind for kind, _ in merged[:5]} == {"prediction"}  # labels come 30 s later
    assert len(merged) == events.total


def test_columns_of_other_names_and_iso_times(tmp_path: Path) -> None:
    table = frame().rename(columns={"prediction_id": "id", "timestamp": "ts", "prediction": "yhat"})
    table["ts"] = pd.to_datetime(table["ts"], unit="s", utc=True).map(lambda t: t.isoformat())
    table["label_at"] = table["ts"]
    columns = ReplayColumns(
        prediction_id="id",
        timestamp="ts",
        prediction="yhat",
        label_timestamp="label_at",
        features=("age", "plan"),
    )
    events = load_events("churn", "binary", write(table, tmp_path / "p.csv"), columns)
    assert events.features == ["age", "plan"]
    assert set(events.predictions[0]["features"]) == {"age", "plan"}
    expected = sorted(frame()["timestamp"].tolist())
    assert [r["timestamp"] for r in events.predictions] == pytest.approx(expected, abs=1e-6)
    assert events.label_times.tolist() == pytest.approx(expected, abs=1e-6)


def test_labels_from_a_file_of_their_own_and_missing_labels_skipped(tmp_path: Path) -> None:
    table = frame()
    labels = table[["prediction_id", "label", "timestamp"]].iloc[:10].copy()
    labels["timestamp"] += 3600
    predictions = table.drop(columns=["label"])
    events = load_events(
        "churn",
        "binary",
        write(predictions, tmp_path / "p.parquet"),
        ReplayColumns(),
        labels_file=write(labels, tmp_path / "l.csv"),
    )
    assert len(events.labels) == 10
    assert {lab for _, lab, _ in events.labels} <= {"0", "1"}
    with_gaps = table.copy()
    with_gaps.loc[:4, "label"] = None
    events = load_events("churn", "binary", write(with_gaps, tmp_path / "g.csv"), ReplayColumns())
    assert len(events.labels) == len(table) - 5


def test_a_missing_feature_value_is_sent_as_null(tmp_path: Path) -> None:
    table = frame()
    table.loc[0, "income"] = None
    events = load_events("churn", "binary", write(table, tmp_path / "p.csv"), ReplayColumns())
    gap = next(r for r in events.predictions if r["prediction_id"] == table.loc[0, "prediction_id"])
    assert gap["features"]["income"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(timestamp=t["timestamp"] * 1000), "row 1: timestamp"),
        (lambda t: t.assign(timestamp=["soon", *t["timestamp"].iloc[1:].astype(str)]), "'soon'"),
        (lambda t: t.drop(columns=["prediction"]), "--prediction-column"),
        (lambda t: t.assign(prediction_id=[None, *t["prediction_id"].iloc[1:]]), "row 1"),
    ],
    ids=["milliseconds", "not-a-time", "no-prediction-column", "no-id"],
)
def test_a_row_that_cannot_be_sent_stops_the_replay_naming_it(
    tmp_path: Path, change: object, message: str
) -> None:
    table = change(frame())  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match=message):
        load_events("churn", "binary", write(table, tmp_path / "p.csv"), ReplayColumns())


def test_an_unknown_format_or_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot tell the format"):
        load_events("churn", "binary", tmp_path / "p.xlsx", ReplayColumns())
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_events("churn", "binary", tmp_path / "p.csv", ReplayColumns())


def test_values_as_the_models_task_reads_them(tmp_path: Path) -> None:
    table = frame().assign(prediction=lambda t: t["score"] * 10)
    path = write(table, tmp_path / "p.csv")
    regression = load_events("m", "regression", path, ReplayColumns())
    assert all(isinstance(r["prediction"], float) for r in regression.predictions)
    untyped = load_events(
        "m", None, write(frame().assign(prediction="yes"), tmp_path / "q.csv"), ReplayColumns()
    )
    assert {r["prediction"] for r in untyped.predictions} == {"yes"}
    with pytest.raises(ConfigurationError, match="not a number"):
        load_events(
            "m",
            "regression",
            write(frame().assign(prediction="yes"), tmp_path / "r.csv"),
            ReplayColumns(),
        )
