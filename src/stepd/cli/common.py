"""What every CLI command shares: options read from STEPD_* variables, error output."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stepd.errors import StepdError
from stepd.settings import DEFAULT_DATABASE_URL

out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="STEPD_DATABASE_URL",
        help="Database URL: sqlite:///PATH or postgresql://USER@HOST/DB.",
        show_default=True,
    ),
]
DEFAULT_DB = DEFAULT_DATABASE_URL

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="STEPD_URL", help="The stepd server.", show_default=True),
]
DEFAULT_URL = "http://127.0.0.1:8080"

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="STEPD_TOKEN", help="API token (for writes).", show_default=False
    ),
]

TasksOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tasks",
        envvar="STEPD_TASKS",
        help="A module or .py file declaring task types (repeatable; commas also separate).",
    ),
]


def task_specs(tasks: list[str] | None) -> tuple[str, ...]:
    """--tasks values, also split on commas (STEPD_TASKS=a.py,b.py, as the Celery app reads it)."""
    return tuple(spec for item in tasks or () for spec in item.split(",") if spec.strip())


HorseMaxTasksOption = Annotated[
    int,
    typer.Option(
        envvar="STEPD_HORSE_MAX_TASKS",
        min=1,
        help="Attempts one work horse process runs before a fresh one is forked "
        "(1: a fresh process for every attempt).",
    ),
]
DEFAULT_HORSE_MAX_TASKS = 100


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle(exc: StepdError) -> typer.Exit:
    return fail(exc.message)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
