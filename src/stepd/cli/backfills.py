"""`stepd configs backfill` and `stepd backfills list|show|cancel`, through the HTTP API.

A backfill's params on the command line: `date=2019-01-01..2019-01-31` is a range (of
integers when both ends are, e.g. `n=1..9`; else of dates), `mrbasename=hahn,arnold` a
list, `env=stable` one value, and `key:=json` any JSON as the API takes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, err, fail
from stepd.cli.render import (
    JsonOption,
    client,
    console,
    joined,
    parse_pairs,
    print_json,
    status,
)
from stepd.display import when

app = typer.Typer(
    help="List, show and cancel backfills (start one: stepd configs backfill ID ...; talks "
    "to the server at STEPD_URL).",
    no_args_is_help=True,
)

POLL_SECONDS = 0.5
BackfillId = Annotated[str, typer.Argument(metavar="ID", help="The backfill's id.")]


def _int(text: str) -> int | None:
    stripped = text[1:] if text.startswith("-") else text
    return int(text) if stripped.isdigit() else None


def parse_axis(arg: str) -> tuple[str, object]:
    """One `key=...` of a backfill (see the module's doc); ValueError saying what is wrong."""
    cut = arg.find("=")
    if cut <= 0 or (cut == 1 and arg[0] == ":"):
        raise ValueError(f"{arg!r} is not key=value, key=from..to, key=a,b or key:=json")
    if arg[cut - 1] == ":":
        try:
            return arg[: cut - 1], json.loads(arg[cut + 1 :])
        except json.JSONDecodeError:
            raise ValueError(f"{arg!r}: {arg[cut + 1 :]!r} is not JSON") from None
    key, text = arg[:cut], arg[cut + 1 :]
    if ".." in text:
        low, _, high = text.partition("..")
        first, last = _int(low), _int(high)
        if first is not None and last is not None:
            return key, {"from": first, "to": last}
        return key, {"from": low, "to": high}
    if "," in text:
        return key, text.split(",")
    return key, text


def parse_axes(args: list[str] | None) -> dict[str, object]:
    params = parse_pairs(args, "params", parse_axis)
    if not params:
        raise fail("give the params to backfill, e.g. date=2019-01-01..2019-01-31", code=2)
    return params


def backfill(
    config_id: Annotated[str, typer.Argument(metavar="CONFIG_ID", help="The config.")],
    params: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUES",
            help="Every free param of the config: date=2019-01-01..2019-01-31 (a range), "
            "mrbasename=hahn,arnold (a list), env=stable, or key:=json.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list every binding and its task.")
    ] = False,
    max_in_flight: Annotated[
        int | None,
        typer.Option("--max-in-flight", help="Tasks unfinished at once (server default: 4)."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Follow it with a progress bar to its end."),
    ] = True,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Run a config for every binding of ranges and lists, a few tasks at a time, and
    follow it to its end (exit 1 unless every task succeeded); Ctrl-C leaves it running."""
    axes = parse_axes(params)
    with client(url, token) as c:
        answer = c.backfill_config(config_id, axes, max_in_flight=max_in_flight, dry_run=dry_run)
        if as_json and (dry_run or not wait):
            print_json(answer)
            return
        if dry_run:
            _print_plan(answer)
            return
        backfill_id = answer["id"]
        if not wait:
            print(backfill_id)
            return
        err.print(
            f"backfill {backfill_id}: {answer['bindings']} bindings, "
            f"{answer['max_in_flight']} at a time (Ctrl-C stops following, not the backfill)",
            highlight=False,
            markup=False,
        )
        try:
            answer = _follow(c, answer)
        except KeyboardInterrupt:
            err.print(
                f"backfill {backfill_id} goes on; `stepd backfills show {backfill_id}`, "
                f"`stepd backfills cancel {backfill_id}`",
                highlight=False,
                markup=False,
            )
            raise typer.Exit(130) from None
    if as_json:
        print_json(answer)
    else:
        _print_backfill(answer)
    if answer["state"] != "done" or set(answer["counts"]) - {"SUCCESS"} or answer["errors"]:
        raise typer.Exit(1)


def _follow(c: Any, answer: dict[str, Any]) -> dict[str, Any]:
    """Poll the backfill until it ends, with a progress bar on stderr."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        bar = progress.add_task(f"backfill {answer['id']}", total=answer["bindings"], counts="")
        while True:
            done = answer["finished"] + answer["errors"]
            counts = " ".join(f"{k}:{v}" for k, v in sorted(answer["counts"].items()))
            progress.update(bar, completed=done, counts=counts)
            if answer["state"] != "running":
                return answer
            time.sleep(POLL_SECONDS)
            answer = c.get_backfill(answer["id"])


def _print_plan(plan: Mapping[str, Any]) -> None:
    table = Table(
        box=None,
        header_style="bold",
        title=f"would make {plan['bindings']} tasks of {plan['config_name']}, "
        f"{plan['max_in_flight']} at a time (dry run)",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("binding", overflow="fold")
    table.add_column("params", overflow="fold")
    for number, task in enumerate(plan["tasks"], 1):
        binding = task["trigger"]["binding"]
        extra = {k: v for k, v in task["params"].items() if k not in binding}
        table.add_row(str(number), Text(_pairs(binding)), Text(_pairs(extra) or "-"))
    console().print(table)


def _pairs(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


def _params_text(params: Mapping[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        if isinstance(value, Mapping):
            parts.append(f"{key}={value.get('from')}..{value.get('to')}")
        elif isinstance(value, list):
            parts.append(f"{key}={','.join(map(str, value))}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _counts_text(counts: Mapping[str, int]) -> Text:
    text = Text()
    for name, count in sorted(counts.items()):
        if text:
            text.append(" ")
        text.append_text(status(name))
        text.append(f":{count}")
    return text or Text("-")


def _print_backfill(b: Mapping[str, Any]) -> None:
    table = Table(box=None, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("backfill", Text(str(b["id"])))
    table.add_row("config", Text(f"{b['config_name'] or '(deleted)'} {b['config_id'] or ''}"))
    table.add_row("state", Text(b["state"]))
    table.add_row("params", Text(_params_text(b["params"])))
    table.add_row(
        "progress",
        Text(f"{b['finished']} of {b['bindings']} ended, {b['made']} made, {b['active']} active"),
    )
    table.add_row("tasks", _counts_text(b["counts"]))
    table.add_row("max in flight", Text(str(b["max_in_flight"])))
    if b["errors"]:
        table.add_row("errors", Text(f"{b['errors']}: {b['last_error']}", style="red"))
    elif b.get("last_error"):
        table.add_row("note", Text(str(b["last_error"])))
    if b.get("waiting_for"):
        table.add_row("waiting for", Text(str(b["waiting_for"]), style="yellow"))
    table.add_row("by", Text(str(b["author"])))
    table.add_row("created", Text(when(b.get("created"))))
    table.add_row("ended", Text(when(b.get("ended"))))
    if b.get("cancelled_by"):
        table.add_row("cancelled by", Text(str(b["cancelled_by"])))
    console().print(table)


@app.command("list")
def list_backfills(
    state: Annotated[
        str | None, typer.Option("--state", help="running, done or cancelled.")
    ] = None,
    config_id: Annotated[str | None, typer.Option("--config", help="One config's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 30,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Backfills, newest first: state, progress and their tasks by status."""
    with client(url, token) as c:
        found = c.list_backfills(state=state, config_id=config_id, limit=limit)
    if as_json:
        print_json(found)
        return
    if not found:
        console().print(
            "no backfills (start one: stepd configs backfill ID date=2019-01-01..2019-01-31)",
            style="dim",
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "config", "state", "ended", "of", "tasks", "params", "by", "created"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "state", "of"))
    for b in found:
        table.add_row(
            Text(str(b["id"])),
            Text(str(b["config_name"] or "(deleted)")),
            Text(b["state"]),
            Text(str(b["finished"])),
            Text(str(b["bindings"])),
            _counts_text(b["counts"]),
            Text(_params_text(b["params"])),
            Text(str(b["author"])),
            Text(when(b.get("created"))),
        )
    console().print(table)


@app.command("show")
def show(
    backfill_id: BackfillId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """One backfill: its params, progress, tasks by status and why it waits, if it does."""
    with client(url, token) as c:
        found = c.get_backfill(backfill_id)
    if as_json:
        print_json(found)
    else:
        _print_backfill(found)


@app.command("cancel")
def cancel(
    backfill_id: BackfillId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Cancel a backfill: nothing more is made, its queued tasks stop; running ones end."""
    with client(url, token) as c:
        found = c.cancel_backfill(backfill_id)
    if as_json:
        print_json(found)
        return
    console().print(
        joined(
            f"cancelled backfill {found['id']}:",
            f"{found['made']} of {found['bindings']} bindings were made,",
            f"{found['active']} still running",
        )
    )
