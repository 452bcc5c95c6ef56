"""`stepd events`: send, list, show and reject events through the HTTP API."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, err, out
from stepd.client import ApiError, Client, ServerUnreachable
from stepd.domain.params import Scalar

app = typer.Typer(
    help="Send, list, show and reject events (talks to the server at STEPD_URL).",
    no_args_is_help=True,
)

PIPE_WIDTH = 10_000  # the width of a table written to a pipe or a file: never wrap

JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's JSON (for scripts).")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    """One red line on stderr (never wrapped, so scripts can grep it); the Exit to raise.

    The message is escaped: a server's message may quote user data such as `[red]`.
    """
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_param(arg: str) -> tuple[str, Scalar]:
    """`key=value` (a string) or `key:=json` (a JSON scalar, e.g. `count:=3`), as httpie has them.

    Raises ValueError saying what is wrong with `arg`.
    """
    cut = arg.find("=")
    if cut < 0:
        raise ValueError(f"{arg!r} is not key=value or key:=json")
    is_json = cut > 0 and arg[cut - 1] == ":"
    key = arg[: cut - 1] if is_json else arg[:cut]
    text = arg[cut + 1 :]
    if not key:
        raise ValueError(f"{arg!r} has no key before '='; write key=value")
    if not is_json:
        return key, text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(
            f"{arg!r}: {text!r} is not JSON; write {key}={text} for a string"
        ) from None
    if isinstance(value, dict | list):
        kind = "an object" if isinstance(value, dict) else "a list"
        raise ValueError(f"{arg!r}: a param must be a JSON scalar, not {kind}")
    return key, value


def _parse_params(args: list[str] | None, what: str) -> dict[str, Scalar]:
    params: dict[str, Scalar] = {}
    for arg in args or []:
        try:
            key, value = parse_param(arg)
        except ValueError as exc:
            raise _fail(f"{what}: {exc}", code=2) from None
        if key in params:
            raise _fail(f"{what}: param {key!r} is given twice", code=2)
        params[key] = value
    return params


@contextmanager
def _client(url: str, token: str | None) -> Iterator[Client]:
    """A client whose failures become one line that says what to do next, and exit 1."""
    try:
        with Client(url, token) as client:
            yield client
    except ServerUnreachable as exc:
        raise _fail(
            f"cannot reach stepd at {url}: is `stepd serve` running? "
            f"set STEPD_URL or pass --url ({_cause(exc)})"
        ) from None
    except ApiError as exc:
        raise _fail(_explain(exc)) from None


def _cause(exc: ServerUnreachable) -> str:
    cause = exc.__cause__
    return (str(cause) or type(cause).__name__) if cause is not None else exc.message


def _explain(exc: ApiError) -> str:
    if exc.status_code == 401:
        return f"{exc.message} (then set STEPD_TOKEN or pass --token)"
    if exc.status_code == 403:
        return f"{exc.message} (this token's user may not do this)"
    return exc.message


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _compact(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v}" if isinstance(v, str) else f"{k}:={json.dumps(v)}" for k, v in params.items()
    )


def _state(state: str) -> Text:
    return Text(state, style={"REJECTED": "red", "PROCESSED": "green"}.get(state, "yellow"))


def _when(created: object) -> str:
    """`2019-01-01T12:00:00.123456Z` as `2019-01-01 12:00:00`: enough for a person."""
    text = str(created)
    return text[:19].replace("T", " ") if len(text) >= 19 else text


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
    values = _parse_params(params, "params")
    with _client(url, token) as client:
        ids = client.create_events(
            [(name, values)],
            request_id=request_id,
            source_type="cli",
            source=socket.gethostname(),
        )
    if as_json:
        _print_json({"ids": ids})
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
    limit: Annotated[int, typer.Option("--limit", help="At most this many events.")] = 30,
    skip: Annotated[int, typer.Option("--skip", help="Skip this many first.")] = 0,
    oldest_first: Annotated[
        bool, typer.Option("--oldest-first", help="Oldest first (default: newest first).")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List events, newest first."""
    params = _parse_params(param, "--param")
    with _client(url, token) as client:
        events = client.get_events(
            name=name,
            params=params,
            skip=skip,
            limit=limit,
            state=state.upper() if state else None,
            sort="_id" if oldest_first else "-_id",
        )
    if as_json:
        _print_json(events)
        return
    if not events:
        err.print("no events match", style="dim")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("params", overflow="fold")
    for event in events:
        # User data goes in as Text, so a "[" in a name or param is never read as markup.
        table.add_row(
            Text(event["_id"]),
            Text(event["name"]),
            _state(event["state"]),
            _when(event["created"]),
            Text(_compact(event.get("params") or {})),
        )
    # Piped into grep or a file, one event stays on one line however long.
    console = out if out.is_terminal else Console(width=PIPE_WIDTH, highlight=False)
    console.print(table)


@app.command("show")
def show(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The event's _id.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show one event."""
    with _client(url, token) as client:
        event = client.get_event(event_id)
    if as_json:
        _print_json(event)
        return
    table = Table(box=None, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in ("_id", "name", "state", "created", "author", "request_id", "source_type", "source"):
        value = event.get(key)
        text = "-" if value is None else str(value)
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
    with _client(url, token) as client:
        rejected = client.reject_event(event_id)
    out.print(f"rejected {rejected}", highlight=False)
