"""`stepd serve`: API, reactor and local runner in one process (or with Celery workers)."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Annotated

from stepd.cli.common import (
    DbOption,
    HorseMaxTasksOption,
    LogFormatOption,
    LogLevelOption,
    TasksOption,
    fail,
    load_settings,
    reconcile_deployment,
    setting,
    start_logging,
)
from stepd.errors import StepdError
from stepd.settings import Settings


def serve(
    database_url: DbOption = None,
    host: Annotated[str | None, setting("host", "--host")] = None,
    port: Annotated[int | None, setting("port", "--port")] = None,
    tasks: TasksOption = None,
    executor: Annotated[str | None, setting("executor", "--executor")] = None,
    workers: Annotated[int | None, setting("workers", "--workers", min=0)] = None,
    broker_url: Annotated[str | None, setting("broker_url", "--broker")] = None,
    queue: Annotated[str | None, setting("queue", "--queue")] = None,
    task_event_name: Annotated[str | None, setting("task_event_name", "--task-event-name")] = None,
    environment: Annotated[str | None, setting("environment", "--environment")] = None,
    heartbeat_timeout_seconds: Annotated[
        float | None, setting("heartbeat_timeout_seconds", "--heartbeat-timeout")
    ] = None,
    horse_max_tasks: HorseMaxTasksOption = None,
    private_reads: Annotated[bool | None, setting("private_reads", "--private-reads")] = None,
    clock: Annotated[bool | None, setting("clock", "--clock/--no-clock")] = None,
    schedules: Annotated[bool | None, setting("schedules", "--schedules/--no-schedules")] = None,
    reactor_process: Annotated[
        bool | None, setting("reactor_process", "--reactor-process/--reactor-thread")
    ] = None,
    api_statement_timeout_seconds: Annotated[
        float | None, setting("api_statement_timeout_seconds", "--statement-timeout", min=0.001)
    ] = None,
    api_loop_read_seconds: Annotated[
        float | None, setting("api_loop_read_seconds", "--loop-read-seconds", min=0.001)
    ] = None,
    join_budget_rows: Annotated[
        int | None, setting("join_budget_rows", "--join-budget-rows", min=1)
    ] = None,
    join_budget_steps: Annotated[
        int | None, setting("join_budget_steps", "--join-budget-steps", min=1)
    ] = None,
    retention: Annotated[str | None, setting("retention", "--retention")] = None,
    task_retention: Annotated[str | None, setting("task_retention", "--task-retention")] = None,
    log_retention: Annotated[str | None, setting("log_retention", "--log-retention")] = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
    access_log: Annotated[bool | None, setting("access_log", "--access-log/--no-access-log")] = (
        None
    ),
) -> None:
    """Run stepd: the HTTP API, the reactor and the runner, on the store at --db."""
    settings = load_settings(
        database_url=database_url,
        host=host,
        port=port,
        tasks=tasks,
        executor=executor,
        workers=workers,
        broker_url=broker_url,
        queue=queue,
        task_event_name=task_event_name,
        environment=environment,
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
        horse_max_tasks=horse_max_tasks,
        private_reads=private_reads,
        clock=clock,
        schedules=schedules,
        reactor_process=reactor_process,
        api_statement_timeout_seconds=api_statement_timeout_seconds,
        api_loop_read_seconds=api_loop_read_seconds,
        join_budget_rows=join_budget_rows,
        join_budget_steps=join_budget_steps,
        retention=retention,
        task_retention=task_retention,
        log_retention=log_retention,
        log_level=log_level,
        log_format=log_format,
        access_log=access_log,
    )
    from stepd.instruments import metrics_dir

    start_logging(settings)
    flags = {
        "task_event_name": task_event_name,
        "environment": environment,
        "heartbeat_timeout_seconds": heartbeat_timeout_seconds,
        "retention": retention,
        "task_retention": task_retention,
        "log_retention": log_retention,
    }
    # The processes of this server (it, its reactor) write their samples there: /metrics
    # adds them up. Named before anything makes an instrument; removed when serve ends.
    with metrics_dir():
        _serve(settings, flags)


def _serve(settings: Settings, flags: Mapping[str, object]) -> None:
    from stepd import daemon
    from stepd.api.app import build_context
    from stepd.runner import executor as executors

    try:
        executors.check(settings)
    except StepdError as exc:
        raise fail(exc.message) from exc
    try:
        context = build_context(settings)
    except StepdError as exc:
        raise fail(exc.message) from exc
    try:
        reconcile_deployment(context.store, settings, flags)
    except BaseException:
        context.close()
        raise
    daemon.serve(context, before_serving=_freeze_what_lives_forever)


def _freeze_what_lives_forever() -> None:
    # Everything made so far lives as long as the server: keep the collector from walking
    # it again and again (full collections over FastAPI's, SQLAlchemy's and pydantic's
    # start-up objects cost ~12% of the events a server takes in).
    gc.collect()
    gc.freeze()
