"""`stepd configs`: list, show, create, delete, try and sync action configs through the HTTP API."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, fail
from stepd.cli.configs_sync import sync
from stepd.cli.render import (
    JsonOption,
    client,
    compact,
    console,
    dep_text,
    joined,
    outcome,
    params_argument,
    parse_params,
    print_json,
)
from stepd.display import value_text, when
from stepd.domain.params import param_text

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="List, show, create, delete, try and sync action configs "
    "(talks to the server at STEPD_URL).",
    no_args_is_help=True,
)

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="The config as a JSON file ('-' reads stdin).",
        show_default=False,
        dir_okay=False,
    ),
]


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in `path` (or stdin for '-'); a usage error (exit 2) if it is not one."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"--file {path}: cannot read it: {exc}", code=2) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"--file {path}: not JSON: {exc}", code=2) from None
    if not isinstance(value, dict):
        raise fail(f"--file {path}: a config is a JSON object, not {type(value).__name__}", code=2)
    return value


def _filters(args: list[str] | None) -> dict[str, str]:
    filters: dict[str, str] = {}
    for arg in args or []:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise fail(
                f"--filter {arg!r} is not key=value (e.g. action_params__action_id=42)", code=2
            )
        filters[key] = value
    return filters


@app.command("list")
def list_configs(
    author: Annotated[str | None, typer.Option("--author", help="Only this user's.")] = None,
    task_type: Annotated[
        str | None, typer.Option("--task-type", help="Only configs launching this task type.")
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="A field equal to a value, nested with __: action_params__action_id=42 "
            "(repeatable).",
        ),
    ] = None,
    deleted: Annotated[
        bool,
        typer.Option(
            "--deleted", help="List the deleted configs instead (their last versions, kept)."
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List configs (or, with --deleted, the tombstones of deleted ones)."""
    filters = _filters(filter_)
    if author is not None:
        filters["author"] = author
    if task_type is not None:
        filters["task_type"] = task_type
    if deleted:
        filters["deleted"] = "1"
    with client(url, token) as c:
        configs = c.list_configs(**filters)
    if as_json:
        print_json(configs)
        return
    if not configs:
        console().print("no configs match", style="dim")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("author", no_wrap=True)
    table.add_column("task_type", overflow="fold")
    table.add_column("enabled", no_wrap=True)
    table.add_column("deps", overflow="fold")
    table.add_column("version", justify="right", no_wrap=True)
    for config in configs:
        enabled = bool(config.get("enabled"))
        shown = Text("yes", style="green") if enabled else Text("no", style="bright_black")
        if config.get("disabled"):
            shown = Text("paused", style="yellow")
        if config.get("deleted"):
            shown = Text(f"deleted by {config.get('deleted_by')}", style="red")
        table.add_row(
            Text(str(config.get("_id"))),
            Text(str(config.get("name"))),
            Text(str(config.get("author"))),
            Text(str(config.get("task_type"))),
            shown,
            Text(" + ".join(dep_text(d) for d in config.get("event_deps") or [])),
            Text(str(config.get("version"))),
        )
    console().print(table)


@app.command("show")
def show(
    config_id: Annotated[str, typer.Argument(metavar="ID", help="The config's _id.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show one config and its history (who changed what, when)."""
    with client(url, token) as c:
        config = c.get_config(config_id)
        history = c.config_history(config_id)
    if as_json:
        print_json({**config, "history": history})
        return
    table = Table(box=None, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in ("_id", "name", "author", "version", "enabled", "description", "task_type"):
        table.add_row(key, Text(_plain(config.get(key))))
    if config.get("disabled"):
        paused = f"paused by {config.get('disabled_by')} since {when(config.get('disabled_at'))}"
        table.add_row("disabled", Text(paused, style="yellow"))
    table.add_row("event_deps", "" if config.get("event_deps") else "-")
    for i, dep in enumerate(config.get("event_deps") or []):
        table.add_row(Text(f"  [{i}]"), Text(dep_text(dep)))
    for key in ("task_params", "action_params"):
        values: Mapping[str, Any] = config.get(key) or {}
        table.add_row(key, "" if values else "-")
        for name, value in values.items():
            table.add_row(Text(f"  {name}"), Text(value_text(value)))
    semaphores = config.get("semaphores") or []
    table.add_row(
        "semaphores", Text(" ".join(f"{s['name']}:{s.get('weight', 1)}" for s in semaphores) or "-")
    )
    for key in ("priority", "kill_timeout", "max_retries", "window", "action_type"):
        table.add_row(key, Text(_plain(config.get(key))))
    table.add_row("created", Text(when(config.get("created"))))
    table.add_row("updated", Text(when(config.get("updated"))))
    out = console()
    out.print(table)
    if not history:
        return
    out.print(Text("\nhistory", style="bold"))
    past = Table(box=None, header_style="bold")
    past.add_column("version", justify="right", no_wrap=True)
    past.add_column("at", no_wrap=True)
    past.add_column("by", no_wrap=True)
    past.add_column("what", overflow="fold")
    for entry in history:
        past.add_row(
            Text(str(entry.get("version"))),
            Text(when(entry.get("at"))),
            Text(str(entry.get("actor"))),
            _change(entry),
        )
    out.print(past)


def _plain(value: object) -> str:
    return "-" if value is None or value == "" else value_text(value)


def _change(entry: Mapping[str, Any]) -> Text:
    action = str(entry.get("action"))
    change = entry.get("change")
    if action != "updated" or not isinstance(change, Mapping):
        return Text(action)
    parts = []
    for key, diff in change.items():
        if isinstance(diff, Mapping) and set(diff) == {"old", "new"}:
            old = json.dumps(diff["old"], ensure_ascii=False)
            new = json.dumps(diff["new"], ensure_ascii=False)
            parts.append(f"{key}: {old} -> {new}")
        else:
            parts.append(key)
    return Text(f"{action}: " + "; ".join(parts) if parts else action)


@app.command("create")
def create(
    file: FileOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Create a config from a JSON file and print its id (only the id, for scripts)."""
    if file is None:
        raise fail("give the config: --file CONFIG.json ('-' for stdin)", code=2)
    body = read_config(file)
    with client(url, token) as c:
        config_id = c.create_config(body)
    print(config_id)


@app.command("delete")
def delete(
    config_id: Annotated[str, typer.Argument(metavar="ID", help="The config's _id.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Delete a config (the tasks it launched stay)."""
    with client(url, token) as c:
        c.delete_config(config_id)
    console().print(f"deleted {config_id}", highlight=False, markup=False)


ConfigId = Annotated[str, typer.Argument(metavar="ID", help="The config's _id.")]


@app.command("disable")
def disable(config_id: ConfigId, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Pause a config: it fires on no event until enabled. Events sent while it is paused
    never fire it, not even after `enable` (a join completed later still finds them)."""
    with client(url, token) as c:
        config = c.disable_config(config_id)
    console().print(
        f"disabled {config_id} ({config.get('name')}) since {when(config.get('disabled_at'))}",
        highlight=False,
        markup=False,
    )


@app.command("enable")
def enable(config_id: ConfigId, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Resume a paused config: the events that come from now on fire it again."""
    with client(url, token) as c:
        config = c.enable_config(config_id)
    console().print(f"enabled {config_id} ({config.get('name')})", highlight=False, markup=False)


@app.command("run")
def run(
    config_id: ConfigId,
    params: Annotated[
        list[str] | None,
        params_argument(
            "The binding: every free param of the config (date=2019-01-01; key:=json)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the task it would make.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Run a config now for one binding, as a firing with it would, and print the new
    task's id (only the id, for scripts); --dry-run prints the task it would make."""
    values = parse_params(params, "params")
    with client(url, token) as c:
        answer = c.run_config(config_id, values, dry_run=dry_run)
    if as_json:
        print_json(answer)
    elif dry_run:
        _planned(answer.get("task") or {})
    else:
        print(answer["id"])


def _planned(task: Mapping[str, Any]) -> None:
    table = Table(box=None, show_header=False, title="would make (dry run)", title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in ("type", "author", "priority", "kill_timeout", "max_retries", "config_version"):
        table.add_row(key, Text(_plain(task.get(key))))
    semaphores = task.get("semaphores") or []
    table.add_row(
        "semaphores", Text(" ".join(f"{s['name']}:{s.get('weight', 1)}" for s in semaphores) or "-")
    )
    values: Mapping[str, Any] = task.get("params") or {}
    table.add_row("params", "" if values else "-")
    for name, value in values.items():
        table.add_row(Text(f"  {name}"), Text(value_text(value)))
    console().print(table)


@app.command("test")
def test(
    params: Annotated[
        list[str] | None,
        params_argument("With --event: the event's params (key=value, or key:=json for a number)."),
    ] = None,
    file: FileOption = None,
    config_id: Annotated[
        str | None, typer.Option("--id", help="A saved config's _id.", show_default=False)
    ] = None,
    event: Annotated[
        str | None,
        typer.Option(
            "--event", help="Try a made-up event with this name (and the KEY=VALUE params)."
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option("--events", help="Try the stored events with this name, newest first."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="With --events: only events with this param (repeatable)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="With --events: at most this many.", min=1, max=100)
    ] = 10,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """What a config would fire on an event, what would wait and what would not match.

    Nothing is launched. The config is a file (--file, not saved) or a saved one (--id).
    """
    if (file is None) == (config_id is None):
        raise fail("give the config: --file CONFIG.json or --id ID (one of them)", code=2)
    if (event is None) == (events is None):
        raise fail("give the event: --event NAME [KEY=VALUE...] or --events NAME (one)", code=2)
    if events is not None and params:
        raise fail(
            f"KEY=VALUE params go with --event; with --events use --param {params[0]}", code=2
        )
    if event is not None and param:
        raise fail("--param filters --events; give --event params as KEY=VALUE", code=2)
    config = read_config(file) if file is not None else None
    one: dict[str, Any] | None = None
    stored: dict[str, Any] | None = None
    if event is not None:
        one = {"name": event, "params": parse_params(params, "params")}
    else:
        # Stored events are searched by each value's text, as `events list --param` does.
        wanted: dict[str, str] = {}
        for key, value in parse_params(param, "--param").items():
            text = param_text(value)
            if text is None:
                raise fail(f"--param {key}: null cannot be searched for; give a value", code=2)
            wanted[key] = text
        stored = {"name": events, "params": wanted, "limit": limit}
    with client(url, token) as c:
        result = c.test_config(config=config, config_id=config_id, event=one, events=stored)
    if as_json:
        print_json(result)
        return
    out = console()
    tried: list[dict[str, Any]] = result.get("events") or []
    if result.get("truncated"):
        # The server stopped at its scan bound: say so before the events it did try.
        out.print(str(result.get("message")), style="yellow", highlight=False, markup=False)
    if not tried:
        if not result.get("truncated"):
            out.print(
                f"no stored {events} events match", style="dim", highlight=False, markup=False
            )
        return
    spec: Mapping[str, Any] = result.get("config") or {}
    out.print(
        joined(
            Text("config", style="bold"),
            config_id or "",
            Text(str(spec.get("name") or "(unnamed)"), style="bold"),
            f"runs {spec.get('task_type')}; tried on {len(tried)} event(s), launching nothing",
        )
    )
    for entry in tried:
        out.print(trial_tree(spec, entry))


def trial_tree(config: Mapping[str, Any], entry: Mapping[str, Any]) -> Tree:
    """One event's trial: what would fire (binding, task params), wait, or not match."""
    event = entry.get("event") or {}
    event_id = event.get("_id")
    verdict = str(entry.get("outcome"))
    tree = Tree(
        joined(
            Text("event", style="bold"),
            str(event_id) if event_id else Text("(made up)", style="dim"),
            Text(str(event.get("name")), style="bold"),
            compact(event.get("params")),
            Text("->"),
            Text("would fire", style="bold green") if verdict == "fired" else outcome(verdict),
        ),
        guide_style="bright_black",
    )
    for firing in entry.get("would_fire") or []:
        binding = firing.get("binding") or {}
        branch = tree.add(joined(Text("fires", style="green"), "binding", compact(binding) or "{}"))
        task = firing.get("task")
        if isinstance(task, Mapping):
            branch.add(
                joined(
                    Text("task", style="bold"),
                    str(task.get("type") or config.get("task_type")),
                    compact(task.get("params")),
                )
            )
        if firing.get("error"):
            branch.add(Text(f"error: {firing['error']}", style="red"))
        deps = [d or "(this event)" for d in firing.get("dep_event_ids") or []]
        if deps:
            branch.add(Text("deps: " + " ".join(deps), style="dim"))
    deps_of = config.get("event_deps") or []
    for waiting in entry.get("waiting") or []:
        binding = waiting.get("binding") or {}
        branch = tree.add(
            joined(Text("waits", style="yellow"), "binding", compact(binding) or "{}", "for:")
        )
        for dep in waiting.get("missing") or []:
            index = _index_of(deps_of, dep)
            label = f"dep {index}" if index is not None else "dep"
            branch.add(joined(Text(label, style="yellow"), dep_text(dep)))
    for miss in entry.get("not_matched") or []:
        actual = miss.get("actual")
        reason = miss.get("reason")
        shown = (
            ("nothing (no such param)" if reason == "missing" else "null")
            if actual is None
            else value_text(actual)
        )
        expected = miss.get("expected")
        line = joined(
            Text("no match", style="dim red"),
            f"dep {miss.get('dep_index')}",
            f"{miss.get('param')}:",
            "expected",
            Text("~" if expected is None else value_text(expected), style="green"),
            "got",
            Text(shown, style="red"),
        )
        if reason:
            line.append(f" ({reason})", style="dim")
        tree.add(line)
    return tree


def _index_of(deps: list[Any], dep: Mapping[str, Any]) -> int | None:
    if "dep_index" in dep:
        return int(dep["dep_index"])
    matches = [i for i, d in enumerate(deps) if d == dep]
    return matches[0] if len(matches) == 1 else None


# Registered here so that `stepd configs --help` lists it with the others.
app.command("sync")(sync)
