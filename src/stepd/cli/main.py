"""The `stepd` command line: one Typer app, one sub-app per noun."""

from __future__ import annotations

import typer

from stepd.cli import events, serve, tokens, worker

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


def main() -> None:
    app()
