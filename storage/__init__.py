"""SQL storage: tables, Alembic migrations and idempotent repository functions.

Works on SQLite (development, the demo) and PostgreSQL (production). Nothing connects at
import time: make an engine, migrate, and open a transaction per unit of work.

>>> from datetime import UTC, datetime, timedelta
>>> from storage import make_engine, session_factory, upgrade
>>> from storage.repository import DriftRow, WindowRow, drift_history, upsert_model
>>> from storage.repository import write_window_results
>>> engine = make_engine("sqlite://")  # in memory
>>> upgrade(engine)
>>> Session = session_factory(engine)
>>> start = datetime(2025, 1, 1, tzinfo=UTC)
>>> window = WindowRow(
...     model_id="churn", window_start=start, window_end=start + timedelta(hours=1), n_rows=500
... )
>>> psi = DriftRow(feature="age", method="psi", score=0.31, threshold=0.2, drifted=True,
...                status="drift", is_primary=True)
>>> with Session.begin() as session:
...     _ = upsert_model(session, "churn", {"task": "binary"})
...     for _ in range(2):  # writing a window twice keeps one set of rows
...         write_window_results(session, window, drift=[psi])
>>> with Session.begin() as session:
...     [(row.window_start.isoformat(), row.score)
...      for row in drift_history(session, "churn", "age", start=None, end=None)]
[('2025-01-01T00:00:00+00:00', 0.31)]
>>> engine.dispose()
"""

from storage.db import make_engine, session_factory
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import metadata

__all__ = [
    "current_revision",
    "head_revision",
    "make_engine",
    "metadata",
    "session_factory",
    "upgrade",
]
