"""The one Settings object: built at the edge (STEPD_* variables, then CLI flags), passed down.

Every entry point (`stepd serve`, `stepd worker`, the Celery app, the other commands) calls
`Settings.from_env(os.environ, **flags)` once; nothing below it reads the environment.
`Settings(...)` itself takes only what it is given (tests build it so), like a dataclass.

A new setting is one field here: its STEPD_* variable, `stepd settings`, the epilog of
`stepd serve --help` and the table in docs/operations.md all come from the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from stepd.domain.retention import normal as normal_retention
from stepd.errors import InvalidInput

ENV_PREFIX = "STEPD_"
DEFAULT_DATABASE_URL = "sqlite:///./stepd.db"
# The one default of the reactor's poll, used by ReactorLoop and ReactorConfig too.
REACTOR_POLL_INTERVAL_SECONDS = 0.1

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


class SettingsError(InvalidInput):
    """A STEPD_* variable (or an override) that is not a valid value for its setting."""


class Settings(BaseSettings):
    """Everything a stepd process needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        # An empty variable counts as unset, as Typer's `envvar=` options treated it.
        env_ignore_empty=True,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="The store: sqlite:///relative.db, sqlite:////absolute/path.db or "
        "postgresql://user:pass@host:5432/db (postgres:// is accepted too).",
    )
    host: str = Field("127.0.0.1", description="Where `stepd serve` listens (0.0.0.0: all).")
    port: int = Field(8080, ge=0, le=65535, description="The port `stepd serve` listens on.")
    private_reads: bool = Field(False, description="Reads need a token too.")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1, description="Larger request bodies are refused (413)."
    )
    max_events_per_request: int = Field(
        1000, ge=1, description="Events one POST may carry (more: 400)."
    )
    trial_scan_limit: int = Field(
        10_000,
        ge=1,
        description="Stored events POST /configs/test reads at most (for its targets and "
        "their joins).",
    )
    token_cache_seconds: float = Field(
        5.0, ge=0, description="How long a checked token is trusted without asking the store."
    )
    reactor: bool = Field(
        True, description="Evaluate events against configs (in the processes of this server)."
    )
    reactor_process: bool = Field(
        True,
        description="Evaluate events in a process of its own (stepd-reactor: another core, "
        "not the API's GIL); false: in a thread of the server.",
    )
    reactor_poll_interval_seconds: float = Field(
        REACTOR_POLL_INTERVAL_SECONDS,
        gt=0,
        description="How often the reactor looks for events other processes stored.",
    )
    clock: bool = Field(True, description="Emit periodic `clock` events.")
    schedules: bool = Field(
        True,
        description="Emit the `schedule` events of the stored cron schedules (any number of "
        "servers may: each tick is emitted once).",
    )
    schedule_clock_speed: float = Field(
        1.0,
        ge=1.0,
        le=3600.0,
        description="Testing only, never in production: the schedules' rounds see time run "
        "this many times faster than the wall clock from STEPD_SCHEDULE_CLOCK_EPOCH, so a "
        "test sees minutes of ticks in seconds.",
    )
    schedule_clock_epoch: float | None = Field(
        None,
        description="Testing only: the Unix time from which STEPD_SCHEDULE_CLOCK_SPEED runs "
        "the schedules' clock faster (servers given the same one agree on the time); none: "
        "the server's start.",
    )
    sqlite_synchronous: SqliteSynchronous = Field(
        "NORMAL",
        description="SQLite PRAGMA synchronous of the server and its workers: NORMAL is "
        "durable across process crashes, FULL across power loss too.",
    )
    executor: str = Field(
        "local",
        description="local (worker processes here), celery (dispatch to Celery workers) "
        "or none (run no tasks here).",
    )
    workers: int = Field(
        2, ge=0, description="Local worker processes (`stepd serve`: 0 runs none)."
    )
    tasks: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Modules or .py files declaring task types, separated by commas or "
        "spaces (the flag is repeatable). A worker announces the types it loaded.",
    )
    broker_url: str | None = Field(
        None, description="Celery broker: amqp://... or redis://... (needed by celery)."
    )
    queue: str = Field(
        "stepd",
        description="The Celery queue of this deployment: one per store on a broker; a plain "
        "`celery worker` needs it as -Q too.",
    )
    task_event_name: str = Field("taskEvent", description="The event a finished task reports.")
    environment: str = Field("stable", description="The `environment` param of those events.")
    heartbeat_timeout_seconds: float = Field(
        30.0, gt=0, description="A worker silent this long has lost its task (it is given up)."
    )
    horse_max_tasks: int = Field(
        100,
        ge=1,
        description="Attempts one work horse process runs before a fresh one is forked "
        "(1: a fresh process for every attempt).",
    )
    api_statement_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A query of the server running longer is cancelled and answered "
        "503 query_timeout (PostgreSQL: a statement; SQLite: a read).",
    )
    api_loop_read_seconds: float = Field(
        0.05,
        gt=0,
        description="SQLite: a read the API runs on its event loop (a fast path) is stopped "
        "after this long and run again in the thread pool, so no read holds the loop.",
    )
    join_budget_rows: int = Field(
        10_000,
        ge=1,
        description="Stored events one config's evaluation on one event may read (reactor "
        "and story); past it that evaluation fails, recorded on its trigger.",
    )
    join_budget_steps: int = Field(
        10_000,
        ge=1,
        description="Combinations of events one config's join search may try per event; "
        "past it that evaluation fails, recorded on its trigger.",
    )
    retention: str | None = Field(
        None,
        description="Delete events older than this (90d, 12h; at least 1h), and finished "
        "tasks and their logs unless STEPD_TASK_RETENTION / STEPD_LOG_RETENTION say "
        "otherwise; none: keep everything. Recorded as the deployment's (`stepd settings "
        "set retention`), which every server follows.",
    )
    task_retention: str | None = Field(
        None,
        description="Delete finished tasks (attempts, logs) that finished longer ago than "
        "this (off: keep them); none: as STEPD_RETENTION.",
    )
    log_retention: str | None = Field(
        None,
        description="Delete the logs of finished tasks that finished longer ago than this "
        "(off: keep them); none: as STEPD_TASK_RETENTION.",
    )
    retention_interval_seconds: float = Field(
        300.0,
        gt=0,
        description="How often a server starts a round of retention (each round deletes "
        "what is past its retention, in small batches).",
    )
    retention_batch_rows: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Rows one batch of retention deletes, in one short write transaction "
        "(ingest waits at most that long on SQLite).",
    )
    log_level: str = Field("info", description="Logging level: debug, info, warning, error.")
    log_format: Literal["plain", "json"] = Field(
        "plain",
        description="Log lines of `stepd serve` and `stepd worker`: plain text, or json (one "
        "object a line: time, level, logger, message and the ids of the event, config, task, "
        "attempt, worker and request a line is about).",
    )
    access_log: bool = Field(True, description="`stepd serve` writes uvicorn's access log.")
    url: str = Field("http://127.0.0.1:8080", description="The server the client commands talk to.")
    token: str | None = Field(
        None, repr=False, description="The API token of the client commands (needed for writes)."
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: object) -> object:
        # STEPD_TASKS=a.py,b.py (or spaces) and repeated --tasks a,b: one tuple of specs.
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(s for item in value for s in re.split(r"[,\s]+", str(item)) if s)
        return value

    @field_validator("retention", "task_retention", "log_retention")
    @classmethod
    def _retention(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            return normal_retention(value, field=str(info.field_name))
        except InvalidInput as exc:  # (pydantic reports a ValueError, naming the field)
            raise ValueError(exc.message) from None

    @field_validator("sqlite_synchronous", "log_format", mode="before")
    @classmethod
    def _case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name == "log_format" else value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller gives: `from_env` reads the variables (of the mapping it
        # is given), so `Settings(...)` in a test does not pick up the shell's STEPD_*.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from STEPD_* variables (of `environ`, default os.environ), then
        `overrides` (CLI flags; None means not given) on top.

        Raises SettingsError naming the variable (or setting) whose value is not valid.
        """
        from_vars = _EnvironSource(cls, environ)()
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return cls(**{**from_vars, **given})
        except ValidationError as exc:
            raise SettingsError(_explain(exc, set(from_vars) - set(given))) from None

    def replace(self, **changes: object) -> Settings:
        """A copy with `changes`, validated (as dataclasses.replace was, for tests)."""
        return type(self)(**{**self.model_dump(), **changes})


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' variable source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self._environ is None:
            return super()._load_env_vars()
        return {
            (k if self.case_sensitive else k.lower()): v
            for k, v in self._environ.items()
            if not (self.env_ignore_empty and v == "")
        }


def env_name(field: str) -> str:
    """The variable of a setting: `port` -> STEPD_PORT."""
    return ENV_PREFIX + field.upper()


def _explain(exc: ValidationError, from_vars: set[str]) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        where = env_name(field) if field in from_vars else f"setting {field}"
        value = error.get("input")
        problems.append(f"{where}={value!r}: {error['msg']}")
    return "invalid settings: " + "; ".join(problems)


@dataclass(frozen=True)
class SettingInfo:
    """One setting as documented: its field, variable, default and description."""

    name: str
    env: str
    default: str
    description: str


def show_default(value: Any) -> str:
    """A default as the docs show it: none, true/false, or the value."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe() -> list[SettingInfo]:
    """Every setting, in the model's order: the one source of the docs and the help."""
    return [
        SettingInfo(name, env_name(name), show_default(f.default), f.description or "")
        for name, f in Settings.model_fields.items()
    ]
