"""`stepd tokens`: API tokens, stored hashed."""

from __future__ import annotations

from typing import Annotated

import typer

from stepd.cli.common import DEFAULT_DB, DbOption, err, fail
from stepd.errors import StepdError

app = typer.Typer(help="Create and revoke API tokens (talks to the database directly).")


@app.command("create")
def create(
    user: Annotated[str, typer.Argument(help="The user the token speaks for, e.g. robot-crypta.")],
    admin: Annotated[bool, typer.Option("--admin", help="May change anyone's configs.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Print a new token for USER on stdout, and nothing else."""
    if not user.strip():
        raise fail("USER must not be empty")
    from stepd.store import open_store
    from stepd.store import tokens as token_store

    try:
        store = open_store(db)
        with store.write() as conn:
            token = token_store.create_token(conn, user, is_admin=admin)
        store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    print(token)


@app.command("revoke")
def revoke(
    user: Annotated[str, typer.Argument(help="Revoke every token of this user.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Revoke every token of USER (servers stop accepting them within seconds)."""
    from stepd.store import open_store
    from stepd.store import tokens as token_store

    try:
        store = open_store(db)
        with store.write() as conn:
            count = token_store.revoke_user_tokens(conn, user)
        store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    err.print(f"revoked {count} token(s) of {user}")
