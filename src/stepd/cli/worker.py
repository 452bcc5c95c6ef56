"""`stepd worker`: run tasks on this machine, as local worker processes or a Celery worker."""

from __future__ import annotations

import logging
import os
import signal
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


def worker(
    db: DbOption = DEFAULT_DB,
    tasks: TasksOption = None,
    executor: Annotated[
        str, typer.Option(envvar="STEPD_EXECUTOR", help="local (processes) or celery.")
    ] = "local",
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", envvar="STEPD_WORKERS", min=1, help="Processes.")
    ] = 2,
    broker: Annotated[
        str | None,
        typer.Option(envvar="STEPD_BROKER_URL", help="Celery broker: amqp://... or redis://..."),
    ] = None,
    queue: Annotated[
        str, typer.Option(envvar="STEPD_QUEUE", help="Celery queue (as the server's --queue).")
    ] = "stepd",
    task_event_name: Annotated[str, typer.Option(envvar="STEPD_TASK_EVENT_NAME")] = "taskEvent",
    environment: Annotated[str, typer.Option(envvar="STEPD_ENVIRONMENT")] = "stable",
    heartbeat_timeout: Annotated[
        float, typer.Option(envvar="STEPD_HEARTBEAT_TIMEOUT_SECONDS")
    ] = 30.0,
    horse_max_tasks: HorseMaxTasksOption = DEFAULT_HORSE_MAX_TASKS,
    log_level: Annotated[str, typer.Option(envvar="STEPD_LOG_LEVEL")] = "info",
) -> None:
    """Run tasks from the store at --db (the server must run with --executor to match)."""
    from stepd.runner.horse import HorseLimits
    from stepd.runner.worker import WorkerSettings
    from stepd.store import open_store
    from stepd.store.runs import StatusEvents

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = WorkerSettings(
        status_events=StatusEvents(name=task_event_name, environment=environment),
        horse=HorseLimits(max_tasks=horse_max_tasks),
    )
    try:
        open_store(db).close()  # migrate once here, not in every process
    except StepdError as exc:
        raise fail(exc.message) from exc
    if executor == "celery":
        if not broker:
            raise fail("--executor celery needs --broker (or STEPD_BROKER_URL)")
        from stepd.runner.celery_app import CeleryWorkerConfig, make_celery

        config = CeleryWorkerConfig(database_url=db, tasks=task_specs(tasks), worker=settings)
        app = make_celery(broker, config, queue=queue)
        app.worker_main(
            [
                "worker",
                "-Q",
                queue,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                log_level.upper(),
                "-P",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                # A node name of its own: two workers on one host must not share a pidbox.
                "--hostname",
                f"stepd-{queue}-{os.getpid()}@%h",
            ]
        )
        return
    if executor != "local":
        raise fail(f"--executor must be local or celery, not {executor!r}")
    from stepd.runner.local import LocalConfig, LocalExecutor
    from stepd.wakepipe import WakePipe

    local = LocalExecutor(
        LocalConfig(database_url=db, tasks=task_specs(tasks), worker=settings),
        workers=concurrency,
        heartbeat_timeout_seconds=heartbeat_timeout,
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
