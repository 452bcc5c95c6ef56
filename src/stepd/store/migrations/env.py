"""Alembic environment: always run with the connection stepd hands it."""

from __future__ import annotations

from alembic import context

from stepd.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
