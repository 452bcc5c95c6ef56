"""`stepd configs sync`: apply the configs a Python module declares (configs as code)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption, err, fail
from stepd.cli.render import client, console, print_json

if TYPE_CHECKING:
    from stepd.client import Client
    from stepd.configs_as_code import Step


ACTION_STYLES = {
    "created": "bold green",
    "updated": "yellow",
    "unchanged": "bright_black",
    "deleted": "bold red",
    "kept": "magenta",
}
DIFF_STYLES = {"old": "red", "new": "green"}  # the kinds of stepd.domain.config_diff
DRY_RUN_WORDS = {"created": "create", "updated": "update", "deleted": "delete"}


def sync(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The Python module that declares CONFIGS (e.g. action_configs.py).",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune/--no-prune",
            help="Delete this author's configs that the file does not declare "
            "(by default they are kept and listed).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan or result as JSON (for scripts).")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Apply the configs a Python module declares, for the token's user.

    Configs are matched by name among the token user's own configs: each declared one
    is created, updated (the changed fields are shown) or unchanged. The user's configs
    the file does not declare are kept unless --prune is given. The module is checked
    in full before anything is sent; --dry-run shows the plan only.
    """
    from stepd.client import ClientError
    from stepd.configs_as_code import ConfigsFileError, load_configs, plan, server_problems

    try:
        declared = load_configs(file)
    except ConfigsFileError as exc:
        raise fail(exc.message) from None
    done: list[Step] = []
    with client(url, token) as c:
        user = str(c.whoami()["user"])
        steps = plan(declared, c.list_configs(author=user), prune=prune)
        warned: list[str] = []
        problems = server_problems(declared, steps, c.validate_configs, warned)
        if problems:
            listed = "\n  ".join(problems)
            raise fail(f"{file}: the server would refuse it, so nothing was changed:\n  {listed}")
        if dry_run:  # (a real run hears them from each write it makes)
            for warning in warned:
                err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
        if not dry_run:
            for step in steps:
                try:
                    done.append(_apply(c, step))
                except ClientError as exc:  # refused, or the server went away
                    raise fail(_partial(step, exc.message, done, steps)) from None
    result = steps if dry_run else done
    if as_json:
        counts: dict[str, int] = {}
        for step in result:
            counts[step.action] = counts.get(step.action, 0) + 1
        print_json(
            {
                "user": user,
                "file": str(file),
                "dry_run": dry_run,
                "prune": prune,
                "summary": counts,
                "configs": [s.to_json() for s in result],
            }
        )
        return
    _print_sync(user, file, result, dry_run=dry_run)


def _apply(c: Client, step: Step) -> Step:
    """Do one step of the plan; return it with the id a created config got."""
    if step.action == "created":
        return replace(step, config_id=c.create_config(step.body or {}))
    if step.action == "updated" and step.config_id is not None:
        c.update_config(step.config_id, step.body or {})
    elif step.action == "deleted" and step.config_id is not None:
        c.delete_config(step.config_id)
    return step


def _partial(step: Step, message: str, done: list[Step], steps: list[Step]) -> str:
    verb = DRY_RUN_WORDS.get(step.action, step.action)
    applied = [f"{s.name} {s.action}" for s in done if s.action in DRY_RUN_WORDS]
    left = [s.name for s in steps[len(done) + 1 :] if s.action in DRY_RUN_WORDS]
    text = f"could not {verb} config {step.name!r}: {message.rstrip('.')}."
    text += " Already applied: " + (", ".join(applied) if applied else "nothing") + "."
    if left:
        text += " Not attempted: " + ", ".join(left) + "."
    return text + " Fix the file and run sync again (it only changes what differs)."


def _print_sync(user: str, file: Path, steps: list[Step], *, dry_run: bool) -> None:
    from stepd.domain.config_diff import diff_lines

    out = console()
    if not steps:
        out.print(f"{file} declares no configs and {user} has none", style="dim", markup=False)
        return
    table = Table(box=None, header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("action", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("changes", overflow="fold")
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.action] = counts.get(step.action, 0) + 1
        word = DRY_RUN_WORDS.get(step.action, step.action) if dry_run else step.action
        if step.action == "kept":
            word = "not in file (kept)"
        changes = Text()
        for line in diff_lines(step.changes):
            if changes:
                changes.append("\n")
            changes.append(line.text, style=DIFF_STYLES.get(line.kind, ""))
        table.add_row(
            Text(step.name),
            Text(word, style=ACTION_STYLES.get(step.action, "")),
            Text(step.config_id or "-"),
            changes,
        )
    out.print(table)
    summary = ", ".join(
        f"{n} to {DRY_RUN_WORDS[a]}" if dry_run and a in DRY_RUN_WORDS else f"{n} {a}"
        for a, n in counts.items()
    )
    if dry_run:
        out.print(
            f"dry run for {user}: nothing changed ({summary}); run without --dry-run to apply",
            style="dim",
            highlight=False,
            markup=False,
        )
    else:
        out.print(f"synced {file} for {user}: {summary}", highlight=False, markup=False)
    if counts.get("kept"):
        out.print(
            f"{counts['kept']} config(s) of {user} are not in the file and were kept; "
            "--prune deletes them",
            style="dim",
            highlight=False,
            markup=False,
        )
