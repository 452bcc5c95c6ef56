"""`stepd worker`: run tasks on this machine, as local worker processes or a Celery worker."""

from __future__ import annotations

import logging
import os
import signal
from typing import Annotated

from stepd.cli.common import (
    DbOption,
    HorseMaxTasksOption,
    TasksOption,
    fail,
    load_settings,
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
    log_level: Annotated[str | None, setting("log_level", "--log-level")] = None,
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
    )
    start_logging(settings)
    if settings.workers < 1:  # (STEPD_WORKERS=0 is a server that runs none)
        raise fail(f"--concurrency must be at least 1, not {settings.workers}", code=2)
    worker_settings = WorkerSettings(
        status_events=StatusEvents(name=settings.task_event_name, environment=settings.environment),
        horse=HorseLimits(max_tasks=settings.horse_max_tasks),
    )
    try:
        # Migrate once here, not in every process.
        open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous).close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    if settings.executor == "celery":
        if not settings.broker_url:
            raise fail("--executor celery needs --broker (or STEPD_BROKER_URL)")
        from stepd.runner.celery_app import CeleryWorkerConfig, make_celery

        config = CeleryWorkerConfig.from_settings(settings, worker_settings)
        app = make_celery(settings.broker_url, config, queue=settings.queue)
        app.worker_main(
            [
                "worker",
                "-Q",
                settings.queue,
                "--concurrency",
                str(settings.workers),
                "--loglevel",
                settings.log_level.upper(),
                "-P",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                # A node name of its own: two workers on one host must not share a pidbox.
                "--hostname",
                f"stepd-{settings.queue}-{os.getpid()}@%h",
            ]
        )
        return
    if settings.executor != "local":
        raise fail(f"--executor must be local or celery, not {settings.executor!r}")
    from stepd.proc.wakepipe import WakePipe
    from stepd.runner.local import LocalConfig, LocalExecutor

    local = LocalExecutor(
        LocalConfig(
            database_url=settings.database_url,
            tasks=settings.tasks,
            sqlite_synchronous=settings.sqlite_synchronous,
            worker=worker_settings,
        ),
        workers=settings.workers,
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
    )
    # Set from the signal handlers: a pipe, as a `threading.Event` could be interrupted
    # inside its own lock by the signal whose handler then sets it, and hang.
    done = WakePipe()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    local.start()
    done.wait()
    logging.getLogger(__name__).info("stopping: finishing the attempts in hand")
    local.stop()
