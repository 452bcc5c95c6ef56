"""The one Settings object: built at the edge (CLI flags, STEPD_* variables), passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

DEFAULT_DATABASE_URL = "sqlite:///./stepd.db"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a stepd process needs to know about its surroundings."""

    database_url: str = DEFAULT_DATABASE_URL  # sqlite:///path or postgresql://...
    host: str = "127.0.0.1"  # where `stepd serve` listens
    port: int = 8080
    private_reads: bool = False  # when True, reads need a token too
    max_body_bytes: int = 1024 * 1024  # larger request bodies get 413
    max_events_per_request: int = 1000
    # stored events POST /configs/test reads at most (for its targets and their joins)
    trial_scan_limit: int = 10_000
    token_cache_seconds: float = 5.0  # how long a checked token is trusted without the store
    reactor: bool = True  # evaluate events against configs (started by this server)
    # in a process of its own (another core, not the API's GIL); False: a thread here
    reactor_process: bool = True
    # how often to look for events that other processes stored
    reactor_poll_interval_seconds: float = 0.1
    clock: bool = True  # emit periodic `clock` events
    # NORMAL: durable across process crashes; FULL: across power loss too
    sqlite_synchronous: str = "NORMAL"
    executor: str = "local"  # "local" (worker processes here), "celery", or "none"
    workers: int = 2  # local worker processes started by `stepd serve`
    tasks: tuple[str, ...] = ()  # modules or files declaring task types
    broker_url: str | None = None  # celery: amqp://... or redis://...
    queue: str = "stepd"  # celery: the queue of this deployment (one per store on a broker)
    task_event_name: str = "taskEvent"  # the event a finished task reports
    environment: str = "stable"  # the `environment` param of those events
    heartbeat_timeout_seconds: float = 30.0  # a worker silent this long has lost its task
    horse_max_tasks: int = 100  # attempts a clean work horse runs; 1: a fresh process each
    # the server's own store: a statement (PostgreSQL) or read (SQLite) running longer is
    # cancelled and answered 503 query_timeout
    api_statement_timeout_seconds: float = 30.0
    # SQLite: a read the API runs on its event loop (a fast path) is stopped after this
    # long and run again in the thread pool, so that no read holds the loop (and /healthz)
    api_loop_read_seconds: float = 0.05
    # what one config's evaluation on one event may cost, in the reactor and in a story:
    # stored events its lookups read, and combinations of events its join search tries;
    # past either, that evaluation fails (recorded on its trigger) and the others go on
    join_budget_rows: int = 10_000
    join_budget_steps: int = 10_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from STEPD_* variables, then explicit overrides (CLI flags) on top."""
        env = os.environ if environ is None else environ
        settings = cls()
        values: dict[str, object] = {}
        if "STEPD_DATABASE_URL" in env:
            values["database_url"] = env["STEPD_DATABASE_URL"]
        if "STEPD_PRIVATE_READS" in env:
            values["private_reads"] = env["STEPD_PRIVATE_READS"].lower() in {"1", "true", "yes"}
        if "STEPD_TASKS" in env:
            values["tasks"] = tuple(t for t in env["STEPD_TASKS"].split(",") if t)
        if "STEPD_BROKER_URL" in env:
            values["broker_url"] = env["STEPD_BROKER_URL"]
        if "STEPD_REACTOR_PROCESS" in env:
            values["reactor_process"] = env["STEPD_REACTOR_PROCESS"].lower() in {"1", "true", "yes"}
        if "STEPD_API_STATEMENT_TIMEOUT_SECONDS" in env:
            values["api_statement_timeout_seconds"] = float(
                env["STEPD_API_STATEMENT_TIMEOUT_SECONDS"]
            )
        for name in ("join_budget_rows", "join_budget_steps"):
            if f"STEPD_{name.upper()}" in env:
                values[name] = int(env[f"STEPD_{name.upper()}"])
        if "STEPD_API_LOOP_READ_SECONDS" in env:
            values["api_loop_read_seconds"] = float(env["STEPD_API_LOOP_READ_SECONDS"])
        if "STEPD_SQLITE_SYNCHRONOUS" in env:
            values["sqlite_synchronous"] = env["STEPD_SQLITE_SYNCHRONOUS"].upper()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(settings, **values)  # type: ignore[arg-type]
