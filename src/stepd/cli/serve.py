"""`stepd serve`: API, reactor and local runner in one process (or with Celery workers)."""

from __future__ import annotations

import gc
import logging
from typing import Annotated

import typer

from stepd.cli.common import (
    DEFAULT_DB,
    DEFAULT_HORSE_MAX_TASKS,
    DbOption,
    HorseMaxTasksOption,
    TasksOption,
    fail,
    task_specs,
)
from stepd.errors import StepdError
from stepd.settings import Settings


def serve(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(envvar="STEPD_HOST", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="STEPD_PORT", help="Port to listen on.")] = 8080,
    tasks: TasksOption = None,
    executor: Annotated[
        str,
        typer.Option(envvar="STEPD_EXECUTOR", help="local (worker processes here), celery, none."),
    ] = "local",
    workers: Annotated[
        int, typer.Option(envvar="STEPD_WORKERS", help="Local worker processes.", min=0)
    ] = 2,
    broker: Annotated[
        str | None,
        typer.Option(envvar="STEPD_BROKER_URL", help="Celery broker: amqp://... or redis://..."),
    ] = None,
    queue: Annotated[
        str,
        typer.Option(envvar="STEPD_QUEUE", help="Celery queue of this deployment."),
    ] = "stepd",
    task_event_name: Annotated[
        str,
        typer.Option(envvar="STEPD_TASK_EVENT_NAME", help="The event a finished task reports."),
    ] = "taskEvent",
    environment: Annotated[
        str, typer.Option(envvar="STEPD_ENVIRONMENT", help="`environment` of task events.")
    ] = "stable",
    heartbeat_timeout: Annotated[
        float,
        typer.Option(
            envvar="STEPD_HEARTBEAT_TIMEOUT_SECONDS",
            help="Seconds without a heartbeat before a worker's task is given up.",
        ),
    ] = 30.0,
    horse_max_tasks: HorseMaxTasksOption = DEFAULT_HORSE_MAX_TASKS,
    private_reads: Annotated[
        bool,
        typer.Option(
            "--private-reads", envvar="STEPD_PRIVATE_READS", help="Require a token for reads too."
        ),
    ] = False,
    clock: Annotated[
        bool, typer.Option("--clock/--no-clock", envvar="STEPD_CLOCK", help="Emit clock events.")
    ] = True,
    reactor_process: Annotated[
        bool,
        typer.Option(
            "--reactor-process/--reactor-thread",
            envvar="STEPD_REACTOR_PROCESS",
            help="Evaluate events in a process of its own (another core) or a thread here.",
        ),
    ] = True,
    statement_timeout: Annotated[
        float,
        typer.Option(
            envvar="STEPD_API_STATEMENT_TIMEOUT_SECONDS",
            help="Seconds a query of the server may run before it is cancelled (503).",
            min=0.001,
        ),
    ] = 30.0,
    loop_read_seconds: Annotated[
        float,
        typer.Option(
            envvar="STEPD_API_LOOP_READ_SECONDS",
            help="SQLite: seconds a fast-path read may hold the event loop before it is"
            " run again in the thread pool.",
            min=0.001,
        ),
    ] = 0.05,
    join_budget_rows: Annotated[
        int,
        typer.Option(
            envvar="STEPD_JOIN_BUDGET_ROWS",
            help="Stored events one config's evaluation on one event may read.",
            min=1,
        ),
    ] = 10_000,
    join_budget_steps: Annotated[
        int,
        typer.Option(
            envvar="STEPD_JOIN_BUDGET_STEPS",
            help="Combinations of events one config's join search may try per event.",
            min=1,
        ),
    ] = 10_000,
    log_level: Annotated[str, typer.Option(envvar="STEPD_LOG_LEVEL")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", envvar="STEPD_ACCESS_LOG")
    ] = True,
) -> None:
    """Run stepd: the HTTP API, the reactor and the runner, on the store at --db."""
    import uvicorn

    from stepd.api.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if executor not in {"local", "celery", "none"}:
        raise fail(f"--executor must be local, celery or none, not {executor!r}")
    if executor == "celery" and not broker:
        raise fail("--executor celery needs --broker (or STEPD_BROKER_URL)")
    settings = Settings.from_env(
        database_url=db,
        host=host,
        port=port,
        private_reads=private_reads,
        executor=executor,
        workers=workers,
        tasks=task_specs(tasks),
        broker_url=broker,
        queue=queue,
        task_event_name=task_event_name,
        environment=environment,
        heartbeat_timeout_seconds=heartbeat_timeout,
        horse_max_tasks=horse_max_tasks,
        clock=clock,
        reactor_process=reactor_process,
        api_statement_timeout_seconds=statement_timeout,
        api_loop_read_seconds=loop_read_seconds,
        join_budget_rows=join_budget_rows,
        join_budget_steps=join_budget_steps,
    )
    try:
        app = create_app(settings)
    except StepdError as exc:
        raise fail(exc.message) from exc
    # Everything made so far lives as long as the server: keep the collector from walking
    # it again and again (full collections over FastAPI's, SQLAlchemy's and pydantic's
    # start-up objects cost ~12% of the events a server takes in).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=access_log)
