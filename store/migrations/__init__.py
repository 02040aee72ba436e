"""Alembic migrations for the store schema (run by `store.db.migrate`)."""
