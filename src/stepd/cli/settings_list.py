"""`stepd settings`: every setting, its variable, flags, default and meaning, from the model.

The same rows make the epilog of `stepd serve --help` and the table in docs/operations.md
(tests/cli/test_settings_cli.py checks that the docs match), so they cannot drift.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated

import typer
import typer.core
from rich.table import Table

from stepd.settings import Settings, describe

MarkdownOption = Annotated[
    bool, typer.Option("--markdown", help="A Markdown table (as in docs/operations.md).")
]


def settings(markdown: MarkdownOption = False) -> None:
    """List every setting: its STEPD_* variable, flags, default and meaning."""
    from stepd.cli.main import app
    from stepd.cli.render import console

    flags = setting_flags(typer.main.get_command(app))
    if markdown:
        print(markdown_table(flags), end="")
        return
    table = Table(box=None, header_style="bold")
    for column in ("variable", "flags", "default", "meaning"):
        table.add_column(column, overflow="fold")
    for info in describe():
        table.add_row(
            info.env, flags.get(info.name, "").replace("`", ""), info.default, info.description
        )
    console().print(table)


def setting_flags(root: object) -> dict[str, str]:
    """Each setting's flags, e.g. `--workers` (serve), `--concurrency` (worker).

    A command's option counts when its parameter is named after the field (serve.py and
    worker.py name them so), which keeps this table true to the commands.
    """
    fields = set(Settings.model_fields)
    # field -> flag text -> the commands that have it
    found: dict[str, dict[str, list[str]]] = {}
    for path, command in _commands(root, ""):
        for param in command.params:
            if param.name in fields and isinstance(param, typer.core.TyperOption):
                text = " / ".join(_flag_text(param))
                found.setdefault(param.name, {}).setdefault(text, []).append(path)
    shown: dict[str, str] = {}
    for name, texts in found.items():
        if len(texts) == 1:
            shown[name] = f"`{next(iter(texts))}`"
        else:
            shown[name] = "; ".join(f"`{t}` ({', '.join(paths)})" for t, paths in texts.items())
    return shown


def _flag_text(param: typer.core.TyperOption) -> list[str]:
    longs = [o for o in param.opts if o.startswith("--")] or list(param.opts)
    return ["/".join(longs[:1] + param.secondary_opts[:1])] + [
        o for o in param.opts if not o.startswith("--")
    ]


def _commands(command: object, path: str) -> list[tuple[str, typer.core.TyperCommand]]:
    # (Typer's own click: its commands are typer.core classes.)
    if isinstance(command, typer.core.TyperGroup):
        return [
            found
            for name, sub in sorted(command.commands.items())
            for found in _commands(sub, f"{path} {name}".strip())
        ]
    return [(path, command)] if isinstance(command, typer.core.TyperCommand) else []


def markdown_table(flags: dict[str, str]) -> str:
    """The settings table of docs/operations.md."""
    lines = ["| variable | flags | default | meaning |", "|---|---|---|---|"]
    for info in describe():
        meaning = info.description.replace("|", "\\|")
        lines.append(
            f"| `{info.env}` | {flags.get(info.name, '(none)')} | `{info.default}` | {meaning} |"
        )
    return "\n".join(lines) + "\n"


def epilog_for(command: Callable[..., object]) -> str:
    """The settings `command` has no flag for: one paragraph each (Typer keeps them apart)."""
    own = set(inspect.signature(command).parameters)
    rest = [info for info in describe() if info.name not in own]
    lines = [
        "Every flag also reads its STEPD_* variable (a flag wins). "
        "Settings with no flag here, by variable only:"
    ]
    lines += [f"{info.env} (default: {info.default}): {info.description}" for info in rest]
    lines.append("All of them: stepd settings.")
    return "\n\n".join(lines)
