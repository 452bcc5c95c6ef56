"""The `stepd` command line: one Typer app, one sub-app per noun."""

from __future__ import annotations

import shutil
import sys
import warnings
from typing import Annotated, TextIO

import typer
from rich.markup import escape
from typer import rich_utils

from stepd import __version__
from stepd.cli import (
    backfills,
    backup,
    configs,
    deployment,
    doctor,
    events,
    migrate,
    prune,
    schedules,
    serve,
    settings_list,
    story,
    tasks,
    tokens,
    worker,
    workers,
)
from stepd.cli.common import err, out

if rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
    # Piped or captured (CI, `| less`), Rich would cut every help text at 80 columns.
    rich_utils.MAX_WIDTH = shutil.get_terminal_size((120, 24)).columns

app = typer.Typer(
    name="stepd",
    help="stepd: events in, tasks out. An open implementation of the STEP API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve", epilog=settings_list.epilog_for(serve.serve))(serve.serve)
app.command("worker", epilog=settings_list.epilog_for(worker.worker))(worker.worker)
settings_app = typer.Typer(
    help="Every setting (STEPD_* variables, flags, defaults); `show` and `set`: the "
    "deployment's stored ones, which every process follows.",
    invoke_without_command=True,
)


@settings_app.callback()
def _settings(ctx: typer.Context, markdown: settings_list.MarkdownOption = False) -> None:
    if ctx.invoked_subcommand is None:  # `stepd settings`: the table it has always printed
        settings_list.settings(markdown)


settings_app.command("show")(deployment.show)
settings_app.command("set")(deployment.set_setting)
app.add_typer(settings_app, name="settings")
app.add_typer(tokens.app, name="tokens")
app.add_typer(events.app, name="events")
app.command("story")(story.story)
app.add_typer(configs.app, name="configs")
app.add_typer(tasks.app, name="tasks")
app.add_typer(tasks.semaphores_app, name="semaphores")
app.add_typer(workers.app, name="workers")
app.add_typer(schedules.app, name="schedules")
app.add_typer(backfills.app, name="backfills")
configs.app.command("backfill")(backfills.backfill)
app.command("backup")(backup.backup)
app.command("migrate")(migrate.migrate)
app.command("prune")(prune.prune)
app.command("doctor")(doctor.doctor)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A server's warning (stepd.client.ServerWarning) as one line on stderr, not Python's
    file:line form; any other warning as Python shows it."""
    from stepd.client import ServerWarning

    if issubclass(category, ServerWarning):
        err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def _print_version(asked: bool) -> None:
    if asked:
        out.print(f"stepd {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _every_command(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print stepd's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """stepd: events in, tasks out. An open implementation of the STEP API."""
    from stepd.client import ServerWarning

    warnings.showwarning = _show_warning
    warnings.simplefilter("always", ServerWarning)  # each config a sync sends, each task


def main() -> None:
    app()
