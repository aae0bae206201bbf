"""Tests for storage.migrate and the Alembic scripts: the migrated schema is `metadata`."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from storage import current_revision, head_revision, make_engine, metadata, upgrade
from storage.migrate import MIGRATIONS_DIR, alembic_config

ROOT = Path(__file__).resolve().parents[2]


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def test_migrated_schema_equals_metadata(engine: Engine) -> None:
    assert _differences(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_revision_is_none_before_and_head_after(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0006"
    engine.dispose()


def test_upgrade_again_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _differences(engine) == []


def test_upgrade_from_a_url(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    assert _differences(engine) == []
    engine.dispose()


def test_downgrade_to_base_drops_every_table(engine: Engine) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert _differences(engine) == []


def test_every_migration_file_is_package_data() -> None:
    # An installed Driftline must be able to migrate: its wheel needs these files.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["storage"]
    files = [
        path.relative_to(MIGRATIONS_DIR.parent).as_posix()
        for path in MIGRATIONS_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert "migrations/env.py" in files
    assert "migrations/script.py.mako" in files
    missing = [name for name in files if not any(fnmatch(name, p) for p in patterns)]
    assert missing == []
