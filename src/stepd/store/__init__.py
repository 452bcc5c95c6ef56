"""Storage: one SQLAlchemy Core schema for SQLite and PostgreSQL, chosen by URL."""

from stepd.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
