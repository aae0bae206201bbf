"""Doctest collection for storage: env.py is Alembic's script, runnable only by Alembic."""

collect_ignore = ["migrations/env.py"]
