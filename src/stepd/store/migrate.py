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
        store.migration_lock(conn)  # two servers starting together take turns
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
