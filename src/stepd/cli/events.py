"""`stepd events`: send, list, show and reject events through the HTTP API."""

from __future__ import annotations

import json
import socket
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, err, out
from stepd.cli.render import JsonOption, compact, console, parse_params, parse_when, print_json
from stepd.cli.render import client as cli_client
from stepd.display import value_text

app = typer.Typer(
    help="Send, list, show and reject events (talks to the server at STEPD_URL).",
    no_args_is_help=True,
)


def _state(state: str) -> Text:
    return Text(state, style={"REJECTED": "red", "PROCESSED": "green"}.get(state, "yellow"))


def _when(created: object) -> str:
    """`2019-01-01T12:00:00.123456Z` as `2019-01-01 12:00:00`: enough for a person."""
    text = str(created)
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def _fired(event: dict[str, object]) -> Text:
    """`2 tasks`, `1 task, 1 error`, `-` (nothing yet: NEW) or `no task`."""
    made = event.get("fired")
    if not isinstance(made, dict):
        return Text("-" if event.get("state") == "NEW" else "no task", style="dim")
    tasks, errors = int(made.get("tasks") or 0), int(made.get("errors") or 0)
    parts = [f"{tasks} task{'s' if tasks != 1 else ''}"] if tasks else []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    return Text(", ".join(parts) or "no task", style="red" if errors else "green")


@app.command("send")
def send(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The event name, e.g. cryptaTaskEvent.")
    ],
    params: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Params: key=value for a string, key:=json for a JSON scalar (count:=3).",
            show_default=False,
        ),
    ] = None,
    request_id: Annotated[
        str | None,
        typer.Option("--request-id", help="Idempotency key: sending it again stores nothing new."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Send one event and print its id (only the id, so scripts can capture it)."""
    values = parse_params(params, "params")
    with cli_client(url, token) as client:
        ids = client.create_events(
            [(name, values)],
            request_id=request_id,
            source_type="cli",
            source=socket.gethostname(),
        )
    if as_json:
        print_json({"ids": ids})
    else:
        print(ids[0])


@app.command("list")
def list_events(
    name: Annotated[str | None, typer.Option("--name", help="Only events with this name.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Only events with this param: key=value (repeatable)."),
    ] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Only NEW, PROCESSED or REJECTED events.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only those stored since: 2h, 7d (ago) or 2019-01-01."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only those stored before: 30m (ago) or 2019-01-02T06:00Z."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events.")] = 30,
    skip: Annotated[int, typer.Option("--skip", help="Skip this many first.")] = 0,
    oldest_first: Annotated[
        bool, typer.Option("--oldest-first", help="Oldest first (default: newest first).")
    ] = False,
    fired: Annotated[
        bool, typer.Option("--fired", help="Only events whose firings made tasks.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List events, newest first, with what each fired (tasks made, firings that failed)."""
    params = parse_params(param, "--param")
    window = {"since": parse_when(since, "--since"), "until": parse_when(until, "--until")}
    with cli_client(url, token) as client:
        events = client.get_events(
            **window,
            name=name,
            params=params,
            skip=skip,
            limit=limit,
            state=state.upper() if state else None,
            sort="_id" if oldest_first else "-_id",
            fired=fired,
            include_fired=True,
        )
    if as_json:
        print_json(events)
        return
    if not events:
        err.print("no events match", style="dim")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("fired", no_wrap=True)
    table.add_column("params", overflow="fold")
    for event in events:
        # User data goes in as Text, so a "[" in a name or param is never read as markup.
        table.add_row(
            Text(event["_id"]),
            Text(event["name"]),
            _state(event["state"]),
            _when(event["created"]),
            _fired(event),
            Text(compact(event.get("params") or {})),
        )
    console().print(table)  # piped into grep or a file, one event stays on one line


@app.command("show")
def show(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The event's _id.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show one event."""
    with cli_client(url, token) as client:
        event = client.get_event(event_id)
    if as_json:
        print_json(event)
        return
    table = Table(box=None, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in ("_id", "name", "state", "created", "author", "request_id", "source_type", "source"):
        value = event.get(key)
        text = "-" if value is None else value_text(value)  # an object source as JSON
        table.add_row(key, _state(text) if key == "state" else Text(text))
    params = event.get("params") or {}
    table.add_row("params", "" if params else "-")
    for key, value in params.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        table.add_row(Text(f"  {key}"), Text(shown))
    out.print(table)


@app.command("reject")
def reject(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The event's _id.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Reject an event: it never counts as a dependency again."""
    with cli_client(url, token) as client:
        rejected = client.reject_event(event_id)
    out.print(f"rejected {rejected}", highlight=False)
