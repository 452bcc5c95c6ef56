"""`stepd tokens`: API tokens, stored hashed."""

from __future__ import annotations

from typing import Annotated

import typer

from stepd.cli.common import DEFAULT_DB, DbOption, err, fail, open_db
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
    from stepd.store import tokens as token_store

    try:
        store = open_db(db)
        with store.write() as conn:
            token = token_store.create_token(conn, user, is_admin=admin)
        store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    print(token)


@app.command("list")
def list_tokens(
    include_revoked: Annotated[
        bool, typer.Option("--all", help="Also the revoked tokens.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, for scripts.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """List tokens: id, user, admin, created (the secrets themselves are not stored)."""
    from rich.table import Table

    from stepd.cli.render import console, print_json
    from stepd.store import tokens as token_store

    try:
        store = open_db(db)
        with store.read() as conn:
            found = token_store.list_tokens(conn, include_revoked=include_revoked)
        store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "user": t.user,
                    "admin": t.is_admin,
                    "created": t.created.isoformat(),
                    "revoked": t.revoked,
                }
                for t in found
            ]
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "user", "admin", "created (UTC)", "revoked"):
        table.add_column(column)
    for t in found:
        table.add_row(
            str(t.id),
            t.user,
            "admin" if t.is_admin else "",
            t.created.strftime("%Y-%m-%d %H:%M:%S"),
            "revoked" if t.revoked else "",
        )
    console().print(table)


@app.command("revoke")
def revoke(
    user: Annotated[
        str | None,
        typer.Argument(help="Revoke every token of this user.", show_default=False),
    ] = None,
    token_id: Annotated[
        int | None,
        typer.Option("--id", help="Revoke only the token with this id (see `stepd tokens list`)."),
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Revoke every token of USER, or one token by --id (servers stop accepting them
    within seconds)."""
    from stepd.store import tokens as token_store

    if (user is None) == (token_id is None):
        raise fail("give either USER (all of its tokens) or --id N (one token)")
    try:
        store = open_db(db)
        with store.write() as conn:
            if token_id is not None:
                done = token_store.revoke_token(conn, token_id)
            else:
                assert user is not None
                count = token_store.revoke_user_tokens(conn, user)
        store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    if token_id is not None:
        if not done:
            raise fail(f"no live token has id {token_id} (see `stepd tokens list --all`)")
        err.print(f"revoked token {token_id}")
        return
    err.print(f"revoked {count} token(s) of {user}")
