"""The Celery executor: the broker carries (task id, attempt), the database carries state.

`stepd serve --executor celery --broker URL` claims tasks (priority, semaphores)
and sends their ids; any number of workers on any machines run them:

    stepd worker --executor celery --broker URL --db URL --tasks MODULE
    # or a plain Celery worker on the documented app:
    STEPD_BROKER_URL=... STEPD_DATABASE_URL=... STEPD_TASKS=MODULE \\
        celery -A stepd.runner.celery_app worker -Q stepd

A worker loads the task from the store, runs it in a work horse exactly as the
local executor does, and writes its status. Messages are JSON, acknowledged late;
a redelivered or re-sent message is harmless, as only one `start` of an attempt wins.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from celery import Celery

from stepd.runner.horse import HorseLimits
from stepd.runner.registry import load_task_types
from stepd.runner.worker import Worker, WorkerSettings, default_worker_name
from stepd.store import open_store, runs
from stepd.store.engine import Store
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)

QUEUE = "stepd"  # the default; one queue per stepd deployment sharing a broker
TASK_NAME = "stepd.run_task"


@dataclass(frozen=True, kw_only=True)
class CeleryWorkerConfig:
    """What a Celery worker process needs to run stepd tasks."""

    database_url: str
    tasks: tuple[str, ...] = ()
    worker: WorkerSettings = field(default_factory=WorkerSettings)


def make_celery(
    broker_url: str, config: CeleryWorkerConfig | None = None, *, queue: str = QUEUE
) -> Celery:
    """A Celery app for stepd: JSON only, late acks, one message at a time per process."""
    app = Celery("stepd", broker=broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if config is not None:
        app.conf.stepd_config = config

    @app.task(name=TASK_NAME, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
    def run_task(self: Any, task_id: int, attempt: int) -> str:
        current: CeleryWorkerConfig = self.app.conf.stepd_config
        store, worker = _worker_for(current)
        with store.write() as conn:
            claimed = runs.start(conn, task_id, attempt, worker.name, utcnow())
        if claimed is None:
            log.info(
                "task %s attempt %s is not ours to run (already run or ended)", task_id, attempt
            )
            return "skipped"
        status = worker.execute(claimed)
        return "stale" if status is None else status.value

    return app


@cache
def _worker_for(config: CeleryWorkerConfig) -> tuple[Store, Worker]:
    # One store and one set of task types per worker process, made on first use
    # (after Celery forked its pool, so no connection crosses a fork).
    store = open_store(config.database_url, migrate=False)
    worker = Worker(
        store, load_task_types(config.tasks), default_worker_name("celery"), config.worker
    )
    return store, worker


def config_from_env() -> CeleryWorkerConfig:
    database_url = os.environ.get("STEPD_DATABASE_URL")
    if not database_url:
        raise RuntimeError("set STEPD_DATABASE_URL for the stepd Celery app")
    tasks = tuple(t for t in os.environ.get("STEPD_TASKS", "").split(",") if t)
    # (the queue a plain `celery worker` consumes is its -Q option: match STEPD_QUEUE)
    events = runs.StatusEvents(
        name=os.environ.get("STEPD_TASK_EVENT_NAME", "taskEvent"),
        environment=os.environ.get("STEPD_ENVIRONMENT", "stable"),
    )
    horse = HorseLimits(max_tasks=int(os.environ.get("STEPD_HORSE_MAX_TASKS", "100")))
    return CeleryWorkerConfig(
        database_url=database_url,
        tasks=tasks,
        worker=WorkerSettings(status_events=events, horse=horse),
    )


def __getattr__(name: str) -> Celery:
    # `celery -A stepd.runner.celery_app` looks for `app`: built from STEPD_* on demand,
    # so importing this module has no side effects.
    if name in {"app", "celery"}:
        broker = os.environ.get("STEPD_BROKER_URL")
        if not broker:
            raise RuntimeError("set STEPD_BROKER_URL for the stepd Celery app")
        built = make_celery(broker, config_from_env(), queue=os.environ.get("STEPD_QUEUE", QUEUE))
        globals()[name] = built
        return built
    raise AttributeError(name)
