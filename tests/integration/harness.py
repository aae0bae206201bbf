"""The worker process and topic helpers integration tests use (they live in the package),
and the one way the tests set up a database with the scenario's model."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from driftline.local.worker_process import (
    WorkerProcess,
    produce,
    produce_sync,
    read_topic,
    wait_for,
)
from registration import register_model
from storage import history
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from tests.stream_app import scenario

__all__ = [
    "WorkerProcess",
    "final_windows",
    "produce",
    "produce_sync",
    "read_topic",
    "register",
    "wait_for",
]


def register(url: str, *, with_reference: bool = True, **overrides: Any) -> sessionmaker[Session]:
    """Migrate the database at ``url`` and register the scenario's model (with ``overrides``)."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    reference = scenario.reference() if with_reference else None
    with sessions.begin() as session:
        register_model(session, scenario.model_config(**overrides), reference)
    return sessions


def final_windows(sessions: sessionmaker[Session], count: int, timeout: float) -> list[Any]:
    """Wait until the scenario's model has ``count`` windows, every one final; return them."""

    def found() -> list[Any] | None:
        with sessions() as session:
            rows = history.window_history(session, scenario.MODEL_ID, None, None)
        return rows if len(rows) == count and all(r.finalized_at for r in rows) else None

    return list(wait_for(found, timeout, f"{count} final windows"))


def collapse(lines: list[str], keep: int) -> str:
    """The last ``keep`` distinct lines (digits aside), each with how often it repeated."""
    first: dict[str, int] = {}
    repeats: Counter[str] = Counter()
    shown: list[str] = []
    for line in lines:
        shape = re.sub(r"\d+", "#", line.split("] ", 2)[-1])
        if shape in first:
            repeats[shape] += 1
            continue
        first[shape] = len(shown)
        shown.append(line)
    for shape, at in first.items():
        if repeats[shape]:
            shown[at] += f"  [and {repeats[shape]} more like it]"
    return "\n".join(shown[-keep:])


def warnings_of(log: Path, keep: int = 25) -> str:
    """A worker log's warnings and errors, each kind once with its count: for a failure
    message, what a worker noticed before its results went wrong."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = [
        line[:220] for line in text.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)\]", line)
    ]
    return f"--- {log.parent.name} ---\n" + collapse(found, keep)
