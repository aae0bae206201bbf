"""Schema migrations, run from code: no ``alembic.ini`` is needed.

The Alembic scripts ship inside the package (``storage/migrations``), so an installed
Driftline can migrate its database with ``upgrade(url)``. To write the next revision after
changing :mod:`storage.models`, let Alembic compare the tables with a database at head::

    from alembic import command
    command.revision(alembic_config(url), message="...", autogenerate=True, rev_id="0002")

then rewrite it with plain SQLAlchemy types, as in ``versions/v0001_initial_schema.py``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from storage.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for Driftline's migrations, optionally with a database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # Config values go through ConfigParser interpolation, where "%" is special.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the newest by default), in one transaction.

    Running it on a database that is already there does nothing. An engine is used as
    given; for a URL, an engine is made with :func:`storage.db.make_engine` and disposed of.
    """
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this version of Driftline ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}: the install is incomplete")
    return head
