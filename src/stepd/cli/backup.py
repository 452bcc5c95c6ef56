"""`stepd backup`: a consistent copy of the SQLite store while stepd keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stepd.cli.common import DEFAULT_DB, DbOption, err, fail, load_settings
from stepd.errors import StepdError


def backup(
    dest: Annotated[
        Path,
        typer.Argument(
            metavar="DEST", help="The file to write (a new SQLite database).", show_default=False
        ),
    ],
    db: DbOption = DEFAULT_DB,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace DEST if it exists.")
    ] = False,
) -> None:
    """Copy the SQLite store at --db into DEST: one snapshot, while servers keep writing.

    The copy is checked (PRAGMA quick_check) before it is renamed into place. To restore, stop stepd and put the copy where --db points. PostgreSQL: use pg_dump.
    """  # noqa: E501
    from stepd.store import open_store
    from stepd.store.backup import backup_sqlite

    db = load_settings(database_url=db).database_url
    try:
        store = open_store(db, migrate=False)
        try:
            done = backup_sqlite(store, dest, overwrite=overwrite)
        finally:
            store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    err.print(
        f"backed up {db} to {done.path}: {done.size_bytes / 1e6:.1f} MB, events up to "
        f"seq {done.events}, in {done.seconds:.1f} s",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
