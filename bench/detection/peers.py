"""Peers for the detection-quality harness: Evidently and NannyML, each with its default
configuration, each in a virtual environment of its own under ``var/peer-envs/`` (their
dependencies clash with ours: pandas 3, numpy 2).

The harness writes a scenario to a folder (``write_scenario``); ``run_peer`` runs
``peer_worker.py`` on it with the peer's interpreter and reads back, per run, per window,
the columns the peer declared drifted, in the shape ``scoring.score`` takes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ENVS = ROOT / "var" / "peer-envs"  # var/ is gitignored
WORKER = Path(__file__).with_name("peer_worker.py")
# What pip resolves for each peer alone does not import; these fix that, nothing more:
# Evidently 0.7.23 imports a pandas internal that pandas 3 removed, without capping pandas;
# NannyML 0.13.1 imports statsmodels (for its plots) without declaring it.
EXTRAS = {"evidently": ["pandas<3"], "nannyml": ["statsmodels"]}
PEERS = tuple(EXTRAS)
MARKER = "driftline-peer.json"  # written last: an env without it is a broken install
# Neither peer may phone home from inside a measurement (and this machine has no network).
QUIET = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def python(env: Path) -> Path:
    return env / "bin" / "python"


def ensure_env(name: str) -> Path:
    """The peer's venv, created and pip-installed on first use (a few minutes), then reused."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    env = ENVS / name
    if (env / MARKER).exists():
        return env
    if env.exists():
        shutil.rmtree(env)  # left by an interrupted install
    began = time.monotonic()
    # Our interpreter's Python (3.11), not whatever python3 is on PATH: NannyML needs < 3.13.
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    log = env / "install.log"
    packages = [name, "pyarrow", *EXTRAS[name]]
    say(f"installing {' '.join(packages)} into {env}; pip's log: {log}")
    with log.open("w") as sink:
        done = subprocess.run(
            [python(env), "-m", "pip", "install", "--disable-pip-version-check", *packages],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {name} failed (exit {done.returncode}); see {log}")
    version = subprocess.run(
        [python(env), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    seconds = time.monotonic() - began
    record = {"peer": name, "version": version, "extras": EXTRAS[name], "seconds": round(seconds)}
    (env / MARKER).write_text(json.dumps(record) + "\n")
    say(f"{name} {version} installed in {seconds:.0f} s")
    return env


def write_scenario(
    directory: Path, reference: pd.DataFrame, runs: list[list[pd.DataFrame]]
) -> None:
    """Reference and runs as Parquet (the peer envs get pyarrow), plus ``manifest.json``.

    A run's windows go end to end into one file: NannyML chunks the run itself, and the
    manifest's window sizes let the worker slice it back for Evidently.
    """
    directory.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(directory / "reference.parquet", index=False)
    for index, run in enumerate(runs):
        frame = pd.concat(run, ignore_index=True)
        frame.to_parquet(directory / f"run-{index:03d}.parquet", index=False)
    numerical = [c for c in reference.columns if pd.api.types.is_numeric_dtype(reference[c])]
    manifest = {
        "numerical": numerical,
        "categorical": [c for c in reference.columns if c not in numerical],
        "windows": [[len(frame) for frame in run] for run in runs],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest) + "\n")


def run_peer(
    name: str, scenario_dir: Path, window_size: int
) -> tuple[list[list[frozenset[str]]], float, str]:
    """Per run, per window, the columns the peer found drifted; the seconds per window
    spent in the peer's own calls; the peer's version."""
    env = ensure_env(name)
    out, log = scenario_dir / f"{name}.json", scenario_dir / f"{name}.log"
    command = [python(env), "-I", WORKER, name, scenario_dir, str(window_size), out]
    # -I: nothing of ours (PYTHONPATH, user site, this folder) on the peer's sys.path.
    with log.open("w") as sink:
        done = subprocess.run(
            [str(part) for part in command],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **QUIET},
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-5:])
        raise RuntimeError(f"{name} failed (exit {done.returncode}); see {log}:\n{tail}")
    result = json.loads(out.read_text())
    verdicts = [[frozenset(window) for window in run] for run in result["verdicts"]]
    return verdicts, result["seconds"] / result["windows"], str(result["version"])
