"""What every CLI command shares: options of the Settings (STEPD_* variables), error output."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stepd.errors import StepdError
from stepd.settings import Settings, SettingsError, describe

if TYPE_CHECKING:
    from stepd.store.engine import Store

out = Console()
err = Console(stderr=True)

_SETTINGS = {info.name: info for info in describe()}


def setting(name: str, *decls: str, help_prefix: str = "", **extra: Any) -> Any:
    """A Typer option for the Settings field `name`, its help from the field (after
    `help_prefix`, what this command adds).

    It has no default and no `envvar`: unset (None) unless given on the command line, so
    that Settings.from_env reads the STEPD_* variable and the flag only overrides it.
    """
    info = _SETTINGS[name]
    # Escaped: Typer renders help as rich markup, where [...] would be a tag.
    where = escape(f"[env var: {info.env}] [default: {info.default}]")
    return typer.Option(
        *decls,
        help=" ".join(part for part in (help_prefix, info.description, where) if part),
        show_default=False,
        **extra,
    )


def load_settings(**flags: object) -> Settings:
    """The Settings of this command: STEPD_* variables, then the flags given (not None).

    A malformed variable is a usage error naming it (exit 2), not a traceback.
    """
    try:
        return Settings.from_env(os.environ, **flags)
    except SettingsError as exc:
        raise fail(exc.message, code=2) from None


def open_db(database_url: str | None, *, migrate: bool = True) -> Store:
    """The store at --db (or STEPD_DATABASE_URL), with the Settings' SQLite durability."""
    from stepd.store import open_store

    settings = load_settings(database_url=database_url)
    return open_store(
        settings.database_url, migrate=migrate, sqlite_synchronous=settings.sqlite_synchronous
    )


DbOption = Annotated[str | None, setting("database_url", "--db")]
DEFAULT_DB = None
UrlOption = Annotated[str | None, setting("url", "--url")]
DEFAULT_URL = None
TokenOption = Annotated[str | None, setting("token", "--token")]
TasksOption = Annotated[list[str] | None, setting("tasks", "--tasks")]
HorseMaxTasksOption = Annotated[int | None, setting("horse_max_tasks", "--horse-max-tasks", min=1)]
DEFAULT_HORSE_MAX_TASKS = None
LogLevelOption = Annotated[str | None, setting("log_level", "--log-level")]
LogFormatOption = Annotated[str | None, setting("log_format", "--log-format")]


def reconcile_deployment(store: Store, settings: Settings, flags: Mapping[str, object]) -> None:
    """Check this process's flags against the deployment's stored settings (or record
    them where none is stored: store/deployment.py); a contradiction is a clear exit 1."""
    from stepd.store import deployment
    from stepd.timeutil import utcnow

    given: dict[str, deployment.Value] = {}
    for key in deployment.KEYS.values():
        if flags.get(key.setting) is not None or _SETTINGS[key.setting].env in os.environ:
            given[key.name] = getattr(settings, key.setting)
    if not given:
        return
    by = f"{os.uname().nodename}:{os.getpid()}"
    try:
        with store.write() as conn:
            recorded = deployment.reconcile(conn, given, by, utcnow())
    except StepdError as exc:
        raise fail(exc.message) from exc
    for line in recorded:
        logging.getLogger("stepd.deployment").info(line)


def start_logging(settings: Settings) -> None:
    """The log format and level of a long-running command (serve, worker)."""
    from stepd import logs

    logs.start(settings.log_level, settings.log_format)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle(exc: StepdError) -> typer.Exit:
    return fail(exc.message)
