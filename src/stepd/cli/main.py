"""The `stepd` command line: one Typer app, one sub-app per noun."""

from __future__ import annotations

import typer

from stepd.cli import backup, configs, events, serve, story, tasks, tokens, worker

app = typer.Typer(
    name="stepd",
    help="stepd: events in, tasks out. An open implementation of the STEP API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.add_typer(tokens.app, name="tokens")
app.add_typer(events.app, name="events")
app.command("story")(story.story)
app.add_typer(configs.app, name="configs")
app.add_typer(tasks.app, name="tasks")
app.add_typer(tasks.semaphores_app, name="semaphores")
app.command("backup")(backup.backup)


def main() -> None:
    app()
