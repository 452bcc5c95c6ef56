"""`stepd schedules list|set|delete`: cron schedules through the HTTP API (STEPD_URL)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption
from stepd.cli.render import JsonOption, client, console, joined, parse_params, print_json
from stepd.display import when

app = typer.Typer(
    help="List, set and delete cron schedules, each tick a `schedule` event (talks to the "
    "server at STEPD_URL).",
    no_args_is_help=True,
)


def _params(schedule: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in (schedule.get("params") or {}).items()) or "-"


@app.command("list")
def list_schedules(
    as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """Every schedule: its cron and zone, params, and its next and last tick (UTC)."""
    with client(url, token) as c:
        found = c.list_schedules()
    if as_json:
        print_json(found)
        return
    if not found:
        console().print(
            'no schedules (create one: stepd schedules set NAME --cron "0 6 * * *")', style="dim"
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "cron", "timezone", "enabled", "catch up", "next tick", "last tick"):
        table.add_column(column, no_wrap=column not in ("name", "cron"), overflow="fold")
    table.add_column("author", overflow="fold")
    table.add_column("params", overflow="fold")
    for s in found:
        enabled = bool(s.get("enabled"))
        table.add_row(
            Text(str(s["name"])),
            Text(str(s["cron"])),
            Text(str(s["timezone"])),
            Text("yes" if enabled else "no", style="" if enabled else "dim"),
            Text(str(s["catch_up"])),
            Text(when(s.get("next_tick"))),
            Text(when(s.get("last_tick"))),
            Text(str(s["author"])),
            Text(_params(s)),
        )
    console().print(table)


@app.command("set")
def set_schedule(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The schedule.")],
    params: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUE]...",
            help="Params of every tick's event (strings); given any, they replace the old.",
            show_default=False,
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help='Five columns, e.g. "0 6 * * 1-5"; needed to create.'),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="The IANA zone the cron is read in (new: UTC)."),
    ] = None,
    catch_up: Annotated[
        int | None,
        typer.Option("--catch-up", help="After downtime, emit at most this many missed ticks."),
    ] = None,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Tick, or pause (no ticks are owed later)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Create schedule NAME, or change the options given of it."""
    fields: dict[str, Any] = {
        k: v
        for k, v in {
            "cron": cron,
            "timezone": timezone,
            "catch_up": catch_up,
            "enabled": enabled,
        }.items()
        if v is not None
    }
    if params:
        fields["params"] = parse_params(params, "schedule params")
    with client(url, token) as c:
        schedule, created = c.set_schedule(name, **fields)
    if as_json:
        print_json(schedule)
        return
    console().print(
        joined(
            "created" if created else "updated",
            f"schedule {schedule['name']}:",
            f"{schedule['cron']} ({schedule['timezone']}),",
            f"next tick {when(schedule.get('next_tick'))} UTC"
            if schedule.get("enabled")
            else "disabled",
        )
    )


@app.command("delete")
def delete_schedule(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The schedule.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Delete a schedule: it ticks no more."""
    with client(url, token) as c:
        c.delete_schedule(name)
    console().print(joined("deleted schedule", name))
