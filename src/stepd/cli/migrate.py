"""`stepd migrate`: bring the store's schema up to this release, once, before servers start.

Servers migrate at start too (under a lock, so several may start together); in a fleet
the upgrade is run once from here, so that no server of the old release is still
serving when the schema changes under it (docs/deploy.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

from stepd.cli.common import DEFAULT_DB, DbOption, err, fail, open_db
from stepd.errors import StepdError


def migrate(
    db: DbOption = DEFAULT_DB,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Change nothing: exit 1 when the schema is behind this release."
        ),
    ] = False,
) -> None:
    """Migrate the store at --db to this stepd's schema (or, with --check, say if it must)."""
    from stepd.store import migrate as migrations

    try:
        store = open_db(db, migrate=False)
        try:
            state = migrations.check(store) if check else migrations.upgrade(store)
        finally:
            store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    was = f"revision {state.current}" if state.current else "empty (a new database)"
    if check:
        if not state.up_to_date:
            raise fail(f"the schema is {was}; this stepd needs {state.head}: run stepd migrate")
        err.print(f"the schema is up to date ({state.head})", highlight=False)
    elif state.up_to_date:
        err.print(f"the schema is up to date ({state.head}); nothing to do", highlight=False)
    else:
        err.print(f"migrated the schema to {state.head} (it was {was})", highlight=False)
