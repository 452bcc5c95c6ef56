"""Storage: one SQLAlchemy Core schema, one Store interface, a backend per database
(SqliteStore, PostgresStore), chosen by URL in `open_store`."""

from stepd.store.base import Store
from stepd.store.engine import open_store
from stepd.store.postgres import PostgresStore
from stepd.store.sqlite import SqliteStore

__all__ = ["PostgresStore", "SqliteStore", "Store", "open_store"]
