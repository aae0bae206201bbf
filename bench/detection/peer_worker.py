"""Runs one peer, Evidently or NannyML with its default configuration, on a scenario that
bench/detection/peers.py wrote, under the peer's own interpreter::

    python peer_worker.py evidently|nannyml SCENARIO_DIR WINDOW_SIZE OUT.json

Imports nothing from Driftline (it runs in the peer's venv, with the peer's pandas and
numpy). Writes to OUT.json: ``verdicts`` (per run, per window, the drifted columns),
``seconds`` (in the peer's own calls, over ``windows`` windows), ``version``, and what the
peer chose per column (``methods``).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd


def evidently(
    manifest: dict[str, Any], reference: pd.DataFrame, runs: list[pd.DataFrame], window_size: int
) -> dict[str, Any]:
    # Only the peer's venv has these (mypy, run from ours, cannot see them).
    from evidently import DataDefinition, Dataset, Report  # type: ignore[import-not-found]
    from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]

    definition = DataDefinition(
        numerical_columns=manifest["numerical"], categorical_columns=manifest["categorical"]
    )
    baseline = Dataset.from_pandas(reference, data_definition=definition)
    verdicts, seconds, methods = [], 0.0, {}
    for run in runs:
        windows = [
            run.iloc[i : i + window_size].reset_index(drop=True)
            for i in range(0, len(run), window_size)
        ]
        found = []
        for frame in windows:
            began = time.perf_counter()
            current = Dataset.from_pandas(frame, data_definition=definition)
            # include_tests only adds each ValueDrift's own verdict (score against its
            # method's threshold) to the snapshot; it changes no method or threshold.
            snapshot = Report([DataDriftPreset()], include_tests=True).run(current, baseline)
            tests = snapshot.dict()["tests"]
            seconds += time.perf_counter() - began
            drifted = []
            for test in tests:
                params = test["metric_config"]["params"]
                if params.get("type", "").endswith("ValueDrift"):
                    column = params["column"]
                    methods[column] = f"{params['method']}, threshold {params['threshold']}"
                    if test["status"] == "FAIL":
                        drifted.append(column)
            found.append(sorted(drifted))
        verdicts.append(found)
    return {"verdicts": verdicts, "seconds": seconds, "methods": methods}


def nannyml(
    manifest: dict[str, Any], reference: pd.DataFrame, runs: list[pd.DataFrame], window_size: int
) -> dict[str, Any]:
    import nannyml as nml  # type: ignore[import-not-found]

    calculator = nml.UnivariateDriftCalculator(
        column_names=manifest["numerical"] + manifest["categorical"],
        # Named, since NannyML silently skips columns whose dtype it cannot place.
        treat_as_numerical=manifest["numerical"],
        treat_as_categorical=manifest["categorical"],
        chunk_size=window_size,
    )
    began = time.perf_counter()
    calculator.fit(reference)  # thresholds: mean + 3 std over the reference's own chunks
    fit_seconds = time.perf_counter() - began
    verdicts, seconds = [], 0.0
    for run in runs:
        began = time.perf_counter()
        result = calculator.calculate(run).filter(period="analysis")
        seconds += time.perf_counter() - began
        data = result.to_df()
        starts = list(data[("chunk", "chunk", "start_index")])
        ends = list(data[("chunk", "chunk", "end_index")])
        expected = list(range(0, len(run), window_size))
        if starts != expected or ends != [s + window_size - 1 for s in expected]:
            raise SystemExit(
                f"NannyML's chunks {list(zip(starts, ends, strict=True))} are not the windows"
            )
        alerts = data[[key for key in data.columns if key[2] == "alert"]]
        if alerts.isna().any().any():  # NannyML logs a failed method and carries on
            raise SystemExit(f"NannyML computed no alert for {alerts.columns[alerts.isna().any()]}")
        found = []
        for _, row in alerts.iterrows():
            found.append(sorted({column for (column, _, _), alert in row.items() if alert}))
        verdicts.append(found)
    methods = {
        column: ", ".join(m.column_name for m in models)
        for column, models in calculator._column_to_models_mapping.items()
    }
    return {
        "verdicts": verdicts,
        "seconds": seconds,
        "fit_seconds": fit_seconds,
        "methods": methods,
    }


def main(argv: list[str]) -> int:
    peer, directory, window_size, out = argv[0], Path(argv[1]), int(argv[2]), Path(argv[3])
    manifest = json.loads((directory / "manifest.json").read_text())
    if any(size != window_size for run in manifest["windows"] for size in run):
        raise SystemExit(f"windows of other than {window_size} events: {manifest['windows']}")
    reference = pd.read_parquet(directory / "reference.parquet")
    runs = [
        pd.read_parquet(directory / f"run-{index:03d}.parquet")
        for index in range(len(manifest["windows"]))
    ]
    compute = {"evidently": evidently, "nannyml": nannyml}[peer]
    result = compute(manifest, reference, runs, window_size)
    result["version"] = importlib.metadata.version(peer)
    result["windows"] = sum(len(run) for run in manifest["windows"])
    out.write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
