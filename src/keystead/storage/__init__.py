"""Persistence: SQLAlchemy rows, repositories returning core dataclasses, Alembic migrations."""
