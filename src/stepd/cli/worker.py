"""`stepd worker`: run tasks on this machine, as local worker processes or a Celery worker."""

from __future__ import annotations

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


def worker(
    database_url: DbOption = None,
    tasks: TasksOption = None,
    executor: Annotated[
        str | None, setting("executor", "--executor", help_prefix="local or celery here.")
    ] = None,
    workers: Annotated[
        int | None,
        setting(
            "workers",
            "--concurrency",
            "-c",
            min=1,
            help_prefix="Processes here (local workers or the Celery pool), at least 1.",
        ),
    ] = None,
    broker_url: Annotated[str | None, setting("broker_url", "--broker")] = None,
    queue: Annotated[
        str | None, setting("queue", "--queue", help_prefix="Celery: as the server's --queue.")
    ] = None,
    task_event_name: Annotated[str | None, setting("task_event_name", "--task-event-name")] = None,
    environment: Annotated[str | None, setting("environment", "--environment")] = None,
    heartbeat_timeout_seconds: Annotated[
        float | None,
        setting(
            "heartbeat_timeout_seconds", "--heartbeat-timeout", help_prefix="Local: its reaper's."
        ),
    ] = None,
    horse_max_tasks: HorseMaxTasksOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run tasks from the store at --db (the server must run with --executor to match)."""
    from stepd.runner.horse import HorseLimits
    from stepd.runner.worker import WorkerSettings
    from stepd.store import open_store
    from stepd.store.runs import StatusEvents

    settings = load_settings(
        database_url=database_url,
        tasks=tasks,
        executor=executor,
        workers=workers,
        broker_url=broker_url,
        queue=queue,
        task_event_name=task_event_name,
        environment=environment,
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
        horse_max_tasks=horse_max_tasks,
        log_level=log_level,
        log_format=log_format,
    )
    start_logging(settings)
    from stepd.runner import executor as executors

    try:
        executor_spec = executors.check(settings, for_worker=True)
    except StepdError as exc:
        raise fail(exc.message) from exc
    if settings.workers < 1:  # (STEPD_WORKERS=0 is a server that runs none)
        raise fail(f"--concurrency must be at least 1, not {settings.workers}", code=2)
    worker_settings = WorkerSettings(
        status_events=StatusEvents(name=settings.task_event_name, environment=settings.environment),
        horse=HorseLimits(max_tasks=settings.horse_max_tasks),
    )
    try:
        # Migrate once here, not in every process.
        store = open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    except StepdError as exc:
        raise fail(exc.message) from exc
    try:
        flags = {
            "task_event_name": task_event_name,
            "environment": environment,
            "heartbeat_timeout_seconds": heartbeat_timeout_seconds,
        }
        reconcile_deployment(store, settings, flags)
    finally:
        store.close()
    assert executor_spec.work is not None  # (checked for a worker above)
    executor_spec.work(settings, worker_settings)
