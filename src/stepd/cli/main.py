"""The `stepd` command line: one Typer app, one sub-app per noun."""

from __future__ import annotations

import typer

from stepd.cli import (
    backup,
    configs,
    events,
    migrate,
    serve,
    settings_list,
    story,
    tasks,
    tokens,
    worker,
)

app = typer.Typer(
    name="stepd",
    help="stepd: events in, tasks out. An open implementation of the STEP API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve", epilog=settings_list.epilog_for(serve.serve))(serve.serve)
app.command("worker", epilog=settings_list.epilog_for(worker.worker))(worker.worker)
app.command("settings")(settings_list.settings)
app.add_typer(tokens.app, name="tokens")
app.add_typer(events.app, name="events")
app.command("story")(story.story)
app.add_typer(configs.app, name="configs")
app.add_typer(tasks.app, name="tasks")
app.add_typer(tasks.semaphores_app, name="semaphores")
app.command("backup")(backup.backup)
app.command("migrate")(migrate.migrate)


def main() -> None:
    app()
