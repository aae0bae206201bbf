"""Telling "the database is unreachable" apart from errors that retrying cannot fix.

A database that is down, restarting or cut off by the network raises errors that go away
by themselves; the stream waits for those (:mod:`stream_app.sql_writer`). A constraint
violation, a missing table or bad SQL is a bug or a schema problem: retrying would spin
forever, so it is raised as it is.
"""

from __future__ import annotations

from sqlalchemy import exc

# SQLite reports schema and SQL errors as OperationalError too; they are not outages.
_SQLITE_NOT_OUTAGES = ("no such table", "no such column", "syntax error", "has no column")


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached now (retrying may succeed).

    True for a lost or refused connection (``OperationalError``, ``InterfaceError``, any
    DBAPI error that invalidated its connection), for SQLite's "database is locked" after
    its busy timeout or a file it cannot open, and for a full connection pool.
    """
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, exc.InterfaceError):
            return True
        if isinstance(error, exc.OperationalError):
            text = first_line(error).lower()
            return not any(marker in text for marker in _SQLITE_NOT_OUTAGES)
        return False
    return isinstance(error, exc.TimeoutError)  # no pooled connection came free in time


def first_line(error: BaseException) -> str:
    """The first line of the driver's message, without SQLAlchemy's SQL and background link."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
