"""Versioned schema migrations (Alembic), applied at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from stepd.store.engine import Store

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the schema to `revision`; several processes may race here safely."""
    config = alembic_config()
    with store.write() as conn:
        if not store.is_sqlite:
            # Two servers starting together on one PostgreSQL take turns.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7210001)")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
