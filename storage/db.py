"""Engines and sessions for the two supported databases, made on request, never at import.

- SQLite (``sqlite:///path.db``, ``sqlite+pysqlite:///path.db``, ``sqlite://`` in memory):
  every connection gets write-ahead logging, enforced foreign keys (off by default in
  SQLite) and a busy timeout. Transactions start with ``BEGIN IMMEDIATE``, emitted by
  SQLAlchemy rather than by Python's ``sqlite3`` (which starts none for a SELECT, so a read
  and a later write would not share a snapshot). IMMEDIATE takes SQLite's single write lock
  up front: a second writer waits for it (up to the busy timeout). With a plain ``BEGIN``
  the second writer would read first, and then fail at once with "database is locked",
  since its snapshot went stale, when it tries to write (the stream writes windows from
  several threads). The price: transactions on one SQLite database take turns, reads
  included; keep them short. PostgreSQL has no such limit.
- PostgreSQL through psycopg 3 (``postgresql+psycopg://``; a plain ``postgresql://`` is taken
  to mean psycopg, as it is the driver installed).

Repository functions never commit: open a transaction per unit of work, e.g.
``with session_factory(engine).begin() as session: write_window_results(session, …)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000

_SUPPORTED = "sqlite:///path/to/driftline.db or postgresql+psycopg://user:password@host:5432/db"


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"cannot parse the database URL (expected {_SUPPORTED}): {exc}"
        ) from None


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Take transaction control away from sqlite3, see _begin_sqlite_transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL, **engine_options: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, configured as the module docstring says.

    Parameters
    ----------
    url
        The database URL.
    **engine_options
        Passed to :func:`sqlalchemy.create_engine` (e.g. ``echo=True``, ``pool_size=5``).

    Raises
    ------
    ConfigurationError
        For a URL that does not parse, another database, or another driver.
    """
    parsed = _parse(url)
    # Split by hand: asking SQLAlchemy for the driver of an unknown database raises its own error.
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if parsed.database and parsed.database != ":memory:":
            # The default, var/driftline.db, in a fresh directory: SQLite creates the file,
            # not the folder it goes in.
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    if backend == "postgresql" and driver in ("", "psycopg"):
        # Without a driver SQLAlchemy would pick psycopg2, which is not installed. Pooled
        # connections die when PostgreSQL restarts: test each one before handing it out.
        options = {"pool_pre_ping": True, **engine_options}
        # Sessions in UTC: timestamps come back in the zone we hand out, and psycopg reads
        # them several times faster than in a named zone such as the server's Etc/UTC.
        # (Unless the URL sets libpq options of its own: those win, and reads stay correct.)
        if "options" not in parsed.query:
            connect_args = {"options": "-c timezone=UTC", **options.pop("connect_args", {})}
            options["connect_args"] = connect_args
        return create_engine(parsed.set(drivername="postgresql+psycopg"), **options)
    raise ConfigurationError(
        f"unsupported database URL scheme {parsed.drivername!r}: use {_SUPPORTED}"
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``. Objects stay readable after commit (nothing is expired:
    the repository hands out plain dataclasses, not ORM objects)."""
    return sessionmaker(engine, expire_on_commit=False)
