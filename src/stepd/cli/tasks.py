"""`stepd tasks` and `stepd semaphores`: the built-in sandbox through the HTTP API."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stepd import shapes
from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, err, fail
from stepd.cli.render import (
    JsonOption,
    client,
    compact,
    console,
    joined,
    params_argument,
    parse_params,
    parse_when,
    print_json,
    status,
)
from stepd.display import value_text, when

if TYPE_CHECKING:
    from stepd.client import Client

app = typer.Typer(
    help="List, show, follow, stop, restart and run tasks (talks to the server at STEPD_URL).",
    no_args_is_help=True,
)
semaphores_app = typer.Typer(
    help="List, set and delete semaphores (talks to the server at STEPD_URL).",
    no_args_is_help=True,
)

FOLLOW_INTERVAL_SECONDS = 0.5

TaskId = Annotated[int, typer.Argument(metavar="ID", help="The task's id.")]


@app.command("list")
def list_tasks(
    task_type: Annotated[str | None, typer.Option("--type", help="Only this task type.")] = None,
    task_status: Annotated[
        str | None,
        typer.Option("--status", help="Only these statuses: SUCCESS or FAILURE,EXCEPTION."),
    ] = None,
    config_id: Annotated[
        str | None, typer.Option("--config-id", help="Only tasks this config launched.")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--event-id", help="Only tasks this event triggered.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only those created since: 2h, 7d (ago) or 2019-01-01."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only those created before: 30m (ago) or 2019-01-02T06:00Z."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=0)] = 30,
    skip: Annotated[int, typer.Option("--skip", help="Skip this many first.", min=0)] = 0,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List tasks, newest first."""
    filters: dict[str, str | int] = {"limit": limit, "skip": skip}
    for key, given in (("since", since), ("until", until)):
        found = parse_when(given, f"--{key}")
        if found is not None:
            filters[key] = found
    if task_type is not None:
        filters["type"] = task_type
    if task_status is not None:
        filters["status"] = task_status.upper()
    if config_id is not None:
        filters["config_id"] = config_id
    if event_id is not None:
        filters["event_id"] = event_id
    with client(url, token) as c:
        tasks = c.list_tasks(**filters)
    if as_json:
        print_json(tasks)
        return
    if not tasks:
        console().print("no tasks match", style="dim")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("type", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("finished", no_wrap=True)
    table.add_column("params", overflow="fold")
    for task in (shapes.TaskOut.model_validate(t) for t in tasks):
        table.add_row(
            Text(str(task.id)),
            Text(task.type),
            status(task.status.value),
            Text(str(task.attempts)),
            when(task.created),
            when(task.started),
            when(task.finished),
            Text(compact(task.params)),
        )
    console().print(table)


@app.command("show")
def show(
    task_id: TaskId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show one task: params, status, times, output, attempts, and what launched it."""
    with client(url, token) as c:
        answer = c.get_task(task_id)
    if as_json:
        print_json(answer)
        return
    task = shapes.TaskDetail.model_validate(answer)
    table = Table(box=None, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("id", Text(str(task.id)))
    table.add_row("type", Text(task.type))
    table.add_row("status", status(task.status.value))
    table.add_row("author", Text(_plain(task.author)))
    table.add_row("priority", Text(_plain(task.priority)))
    table.add_row("attempts", Text(f"{task.attempts} (max_retries {task.max_retries})"))
    table.add_row("kill_timeout", Text(_plain(task.kill_timeout)))
    table.add_row(
        "semaphores",
        Text(" ".join(f"{s['name']}:{s.get('weight', 1)}" for s in task.semaphores) or "-"),
    )
    table.add_row("created", when(task.created))
    table.add_row("started", when(task.started))
    table.add_row("finished", when(task.finished))
    table.add_row("params", "" if task.params else "-")
    for key, value in task.params.items():
        table.add_row(Text(f"  {key}"), Text(value_text(value)))
    if task.output is not None:
        table.add_row("output", Text(json.dumps(task.output, ensure_ascii=False)))
    if task.error:
        table.add_row("error", Text(task.error, style="red"))
    if task.config_id:
        table.add_row("config", Text(f"{task.config_id} (version {_plain(task.config_version)})"))
    else:
        table.add_row("config", Text("- (run by hand)"))
    if task.trigger is not None and task.trigger.kind == "manual":
        table.add_row("trigger", Text(f"manual: run by {task.trigger.by}"))
        table.add_row("  binding", Text(compact(task.trigger.binding) or "{}"))
    elif task.trigger is not None:
        table.add_row("trigger", Text(f"event {task.trigger.event_id}"))
        table.add_row("  binding", Text(compact(task.trigger.binding) or "{}"))
        deps = [d for d in task.trigger.dep_event_ids if d]
        table.add_row("  deps", Text(" ".join(deps) or "-"))
    table.add_row("emitted", Text(" ".join(task.emitted_event_ids) or "-"))
    out = console()
    out.print(table)
    if not task.attempt_history:
        return
    out.print(Text("\nattempts", style="bold"))
    runs = Table(box=None, header_style="bold")
    runs.add_column("#", justify="right", no_wrap=True)
    runs.add_column("status", no_wrap=True)
    runs.add_column("worker", no_wrap=True)
    runs.add_column("started", no_wrap=True)
    runs.add_column("finished", no_wrap=True)
    runs.add_column("params", overflow="fold")
    runs.add_column("error", overflow="fold")
    for run in task.attempt_history:
        runs.add_row(
            Text(str(run.attempt)),
            status(run.status),
            Text(_plain(run.worker)),
            when(run.started),
            when(run.finished),
            Text(compact(run.params or {}) or "{}"),
            Text(run.error or "", style="red"),
        )
    out.print(runs)


def _plain(value: object) -> str:
    return "-" if value is None or value == "" else value_text(value)


@app.command("logs")
def logs(
    task_id: TaskId,
    attempt: Annotated[
        int | None,
        typer.Option("--attempt", min=1, help="This attempt's log (default: the latest)."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new lines until the task has finished."),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Print a task's log (stdout and stderr of its run), or follow it as it runs."""
    try:
        with client(url, token) as c:
            if follow:
                _follow(c, task_id, attempt)
            else:
                _write(c.task_logs(task_id, attempt=attempt)["text"])
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


def _follow(c: Client, task_id: int, pinned: int | None) -> None:
    """Print the log as it grows until the task has finished and the log is drained.

    Following the latest attempt, a retry starts a new log: the rest of the old one
    is printed, then a line on stderr, then the new attempt's log from its start.
    """
    attempt = pinned
    offset = 0
    while True:
        page = c.task_logs(task_id, attempt=pinned, offset=offset)
        number = int(page["attempt"])
        if attempt is not None and number != attempt:
            if attempt >= 1:
                _write(c.task_logs(task_id, attempt=attempt, offset=offset)["text"])
            err.print(f"--- attempt {number} ---", style="dim", highlight=False)
            attempt, offset = number, 0
            continue
        attempt = number
        _write(str(page["text"]))
        offset = max(offset, int(page["next_offset"]))
        # The text and the status are read together: a finished task's page ends its log.
        if page["finished"]:
            return
        time.sleep(FOLLOW_INTERVAL_SECONDS)


@app.command("stop")
def stop(task_id: TaskId, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Stop a task (a running one stops when its worker sees the request)."""
    with client(url, token) as c:
        answer = c.stop_task(task_id)
    if answer.get("status") == "STOPPED":
        console().print(f"stopped {task_id}", highlight=False)
    else:
        console().print(
            f"stop requested for {task_id} ({answer.get('status')}); "
            "it stops when its worker sees the request",
            highlight=False,
            markup=False,
        )


@app.command("restart")
def restart(
    task_id: TaskId,
    params: Annotated[
        list[str] | None,
        params_argument(
            "New params for the new attempt: they replace or add to the task's "
            "(key=value for a string, key:=json for a JSON scalar)."
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Run a finished task again, as a new attempt (its earlier attempts are kept, with the
    params they ran with)."""
    values = parse_params(params, "params") if params else None
    with client(url, token) as c:
        answer = c.restart_task(task_id, values)
    out = console()
    for warning in answer.get("warnings") or []:
        out.print(Text(f"warning: {warning}", style="yellow"))
    line = f"restarted {task_id} ({answer.get('status')})"
    if values:
        line += f" with params {compact(values)} (changed or added)"
    out.print(line, highlight=False, markup=False)


def parse_semaphore(arg: str) -> dict[str, Any]:
    """`NAME` or `NAME:WEIGHT` as `{"name": ..., "weight": ...}`; ValueError if malformed."""
    name, sep, weight = arg.rpartition(":")
    if not sep:
        name, weight = arg, "1"
    if not name:
        raise ValueError(f"{arg!r} has no name; write NAME or NAME:WEIGHT")
    if not weight.isdigit() or int(weight) < 1:
        raise ValueError(f"{arg!r}: the weight {weight!r} is not a positive integer")
    return {"name": name, "weight": int(weight)}


@app.command("run")
def run(
    task_type: Annotated[str, typer.Argument(metavar="TYPE", help="The task type to run.")],
    params: Annotated[
        list[str] | None,
        params_argument("Params: key=value for a string, key:=json for a JSON scalar (limit:=10)."),
    ] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first.")] = 0,
    semaphore: Annotated[
        list[str] | None,
        typer.Option("--semaphore", help="Hold this semaphore: NAME or NAME:WEIGHT (repeatable)."),
    ] = None,
    kill_timeout: Annotated[
        int | None,
        typer.Option("--kill-timeout", min=1, help="Kill it after this many seconds."),
    ] = None,
    max_retries: Annotated[
        int, typer.Option("--max-retries", min=0, help="Retry a FAILURE or EXCEPTION this often.")
    ] = 0,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Run a task type by hand and print the new task's id (only the id, for scripts)."""
    values = parse_params(params, "params")
    uses = []
    for arg in semaphore or []:
        try:
            uses.append(parse_semaphore(arg))
        except ValueError as exc:
            raise fail(f"--semaphore: {exc}", code=2) from None
    with client(url, token) as c:
        task = c.create_task(
            task_type,
            values,
            priority=priority,
            semaphores=uses,
            kill_timeout=kill_timeout,
            max_retries=max_retries,
        )
    if as_json:
        print_json(task)
    else:
        print(task["id"])


@app.command("types")
def types(
    as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """The task types the deployment runs: what its workers announced (and the server's --tasks)."""
    with client(url, token) as c:
        known = c.task_types()
    if as_json:
        print_json(known)
        return
    if not known:
        console().print("no worker has announced a task type (start one with --tasks)", style="dim")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("runs", overflow="fold")
    table.add_column("live workers", overflow="fold")
    table.add_column("description", overflow="fold")
    for item in known:
        live = item.get("workers") or []
        table.add_row(
            Text(str(item.get("name"))),
            Text(str(item.get("kind"))),
            Text(_runs(item)),
            Text(", ".join(live)) if live else Text("none", style="yellow"),
            Text(str(item.get("description") or "")),
        )
    console().print(table)


def _runs(item: Mapping[str, Any]) -> str:
    if item.get("kind") == "command":
        return " ".join(str(a) for a in item.get("argv") or [])
    if item.get("kind") == "http":
        return f"{item.get('method')} {item.get('url')}"
    params = item.get("params") or []
    return ", ".join(
        f"{p['name']}: {p['type']}" + ("" if p["required"] else " = ...") for p in params
    )


# --- semaphores -------------------------------------------------------------------------


@semaphores_app.command("list")
def list_semaphores(
    as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """List semaphores: capacity and how much running tasks hold."""
    with client(url, token) as c:
        found = c.list_semaphores()
    if as_json:
        print_json(found)
        return
    if not found:
        console().print("no semaphores", style="dim")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("capacity", justify="right", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    table.add_column("auto", no_wrap=True)
    table.add_column("owner", overflow="fold")
    table.add_column("updated", no_wrap=True)
    for item in found:
        used, capacity = int(item.get("used") or 0), int(item.get("capacity") or 0)
        table.add_row(
            Text(str(item.get("name"))),
            Text(str(capacity)),
            Text(str(used), style="yellow" if capacity and used >= capacity else ""),
            Text("yes" if item.get("auto") else "no"),
            Text(str(item.get("owner") or "-")),
            when(item.get("updated")),
        )
    console().print(table)


@semaphores_app.command("set")
def set_semaphore(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The semaphore.")],
    capacity: Annotated[
        int, typer.Argument(metavar="CAPACITY", help="How many units tasks may hold at once.")
    ],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Create a semaphore or change its capacity."""
    if capacity < 0:
        raise fail(f"CAPACITY must be 0 or more, not {capacity}", code=2)
    with client(url, token) as c:
        item = c.set_semaphore(name, capacity)
    console().print(
        joined(str(item.get("name")), f"capacity {item.get('capacity')} (used {item.get('used')})")
    )


@semaphores_app.command("delete")
def delete_semaphore(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The semaphore.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Delete a semaphore no running task holds."""
    with client(url, token) as c:
        c.delete_semaphore(name)
    console().print(joined("deleted semaphore", name))
