"""Versioned schema migrations (Alembic), applied at start or by `stepd migrate`.

A store whose schema a newer stepd migrated is refused rather than used: this code
would read and write columns it does not know (or miss ones it needs), so a server
of the old release must not start on it during a rolling upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from stepd.errors import SchemaTooNew
from stepd.store.engine import Store

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision this stepd knows."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None  # there are migrations
    return revision


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: an empty database
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(conn: Connection) -> SchemaState:
    """Where the store's schema is, refusing one this stepd does not know."""
    current = MigrationContext.configure(conn).get_current_revision()
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    newest = head()
    if current is not None and current not in known:
        raise SchemaTooNew(
            f"the store's schema is at revision {current}, newer than this stepd knows "
            f"(up to {newest}): a newer stepd migrated it; run that release here"
        )
    return SchemaState(current=current, head=newest)


def check(store: Store) -> SchemaState:
    """The schema's state, read only (`stepd migrate --check`)."""
    with store.read() as conn:
        return schema_state(conn)


def upgrade(store: Store, revision: str = "head") -> SchemaState:
    """Bring the schema to `revision`; several processes may race here safely.

    Returns the state found before upgrading (`current` is what it was).
    """
    config = alembic_config()
    with store.write() as conn:
        store.migration_lock(conn)  # two servers starting together take turns
        before = schema_state(conn)  # raises on a schema newer than this code
        if not before.up_to_date:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    return before
