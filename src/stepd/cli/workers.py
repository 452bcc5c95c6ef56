"""`stepd workers`: the fleet, as its workers announced themselves (talks to STEPD_URL)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, fail
from stepd.cli.render import JsonOption, client, console, print_json
from stepd.display import when

app = typer.Typer(
    help="List and show the workers of the deployment (talks to the server at STEPD_URL).",
    no_args_is_help=True,
)

_STATE = {"live": "green", "gone": "dim"}


def _running(worker: dict[str, Any]) -> str:
    running = worker.get("running") or []
    return ", ".join(f"{r['task_id']} ({r['type']})" for r in running) or "-"


@app.command("list")
def list_workers(
    state: Annotated[str | None, typer.Option("--state", help="Only live or gone workers.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Every worker that announced itself: live ones first (gone ones are kept a day)."""
    if state not in (None, "live", "gone"):
        raise fail(f"--state must be live or gone, not {state!r}", code=2)
    with client(url, token) as c:
        found = c.workers(state)
    if as_json:
        print_json(found)
        return
    if not found:
        console().print(
            "no worker has announced itself (start one: stepd worker --tasks MODULE)",
            style="dim",
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "state", "executor", "host", "pid", "queue", "last seen"):
        table.add_column(column, no_wrap=column != "name", overflow="fold")
    table.add_column("task types", overflow="fold")
    table.add_column("running", overflow="fold")
    for w in found:
        table.add_row(
            Text(str(w["name"])),
            Text(str(w["state"]), style=_STATE.get(str(w["state"]), "")),
            Text(str(w["executor"])),
            Text(str(w["host"])),
            Text(str(w["pid"])),
            Text(str(w.get("queue") or "-")),
            Text(when(w.get("last_seen"))),
            Text(", ".join(w.get("task_types") or []) or "-"),
            Text(_running(w)),
        )
    console().print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The worker's name.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """One worker: where it runs, since when, what it runs now and the task types it knows."""
    with client(url, token) as c:
        worker = c.worker(name)
    if as_json:
        print_json(worker)
        return
    out = console()
    out.print(Text(str(worker["name"]), style="bold"))
    for label, value in (
        ("state", worker["state"]),
        ("executor", worker["executor"]),
        ("host", worker["host"]),
        ("pid", worker["pid"]),
        ("queue", worker.get("queue") or "-"),
        ("version", worker["version"]),
        ("started", when(worker["started"])),
        ("last seen", when(worker["last_seen"])),
        ("stopped", when(worker.get("stopped"))),
        ("running", _running(worker)),
    ):
        out.print(Text.assemble((f"{label:>10}  ", "dim"), str(value)))
    out.print(Text("task types", style="bold"))
    for described in worker.get("task_type_details") or []:
        params = ", ".join(str(p.get("name")) for p in described.get("params") or [])
        out.print(Text(f"  {described.get('name')} ({described.get('kind')}): {params or '-'}"))
