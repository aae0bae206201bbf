"""SQLAlchemy tables, repository functions and Alembic migrations.

Empty until the streaming pipeline lands; importable so the layout in DESIGN.md exists.
"""
