"""`stepd settings show|set`: the deployment's stored settings (store/deployment.py), which
every server and worker follows, on the store at --db (as `stepd tokens`: whoever may
reach the database administers it)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_DB, DbOption, err, fail, open_db
from stepd.cli.render import JsonOption, console, print_json
from stepd.display import when
from stepd.errors import StepdError


def show(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """The deployment's settings: each stored value, or the default every process uses."""
    from stepd.services.deployment import DeploymentService

    try:
        store = open_db(db)
        try:
            shown = DeploymentService(store).show()
        finally:
            store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(shown)
        return
    table = Table(box=None, header_style="bold")
    for column in ("key", "value", "set by", "when", "meaning"):
        table.add_column(column, overflow="fold")
    for s in shown:
        table.add_row(
            Text(s["key"]),
            Text(s["value"]) if s["stored"] else Text(f"{s['value']} (default)", style="dim"),
            Text(s["updated_by"] or "-"),
            Text(when(s["updated"])),
            Text(f"{s['description']} Per process before: {s['flag']}."),
        )
    console().print(table)


def set_setting(
    key: Annotated[str, typer.Argument(metavar="KEY", help="status_event_name or environment.")],
    value: Annotated[str, typer.Argument(metavar="VALUE", show_default=False)],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Change a setting for every server and worker of the deployment, at once."""
    from stepd.store import deployment
    from stepd.timeutil import utcnow

    try:
        store = open_db(db)
        try:
            with store.write() as conn:
                deployment.write(conn, key, value, "stepd settings set", utcnow())
        finally:
            store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    err.print(f"{key} = {value!r} for every process of the deployment", highlight=False)
