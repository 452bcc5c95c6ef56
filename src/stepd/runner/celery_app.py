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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from celery import Celery, signals

from stepd import logs
from stepd.runner.fleet import BeatThread, Membership
from stepd.runner.horse import HorseLimits
from stepd.runner.registry import load_task_types
from stepd.runner.worker import Worker, WorkerSettings, default_worker_name
from stepd.settings import Settings
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
    sqlite_synchronous: str = "NORMAL"
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    @classmethod
    def from_settings(
        cls, settings: Settings, worker: WorkerSettings | None = None
    ) -> CeleryWorkerConfig:
        """The part of `settings` a worker process needs (plain values: it pickles)."""
        if worker is None:
            worker = WorkerSettings(
                status_events=runs.StatusEvents(
                    name=settings.task_event_name, environment=settings.environment
                ),
                horse=HorseLimits(max_tasks=settings.horse_max_tasks),
            )
        return cls(
            database_url=settings.database_url,
            tasks=settings.tasks,
            sqlite_synchronous=settings.sqlite_synchronous,
            worker=worker,
        )


# stepd's Celery configuration: JSON only, late acks, one message at a time per process
# (benchmarks/bare_celery.py measures a bare app configured the same way).
CELERY_CONF: dict[str, object] = {
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_backend": None,
    "task_ignore_result": True,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "worker_hijack_root_logger": False,
}


def make_celery(
    broker_url: str, config: CeleryWorkerConfig | None = None, *, queue: str = QUEUE
) -> Celery:
    """A Celery app for stepd (CELERY_CONF) on `queue`."""
    app = Celery("stepd", broker=broker_url)
    app.conf.update(CELERY_CONF, task_default_queue=queue)
    if config is not None:
        app.conf.stepd_config = config
        _join_the_fleet(app, config, queue)

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


# The fleet name of this Celery worker (set in its main process before the pool forks, so
# its pool processes inherit it): they run attempts as `NAME/PID`, counted as its own.
_fleet_name: str | None = None


def _consumed(worker: Any, queue: str) -> str:
    """The queue a worker announces: the one it consumes (its -Q, which Celery selected
    before worker_init), `queue` (STEPD_QUEUE) when it is among them. The dispatchers route
    a type to the announced queue (runner/routes.py): a plain `celery worker -Q other`
    started without STEPD_QUEUE=other must not announce the app's default instead."""
    queues = getattr(getattr(worker.app, "amqp", None), "queues", None)
    consumed = sorted(getattr(queues, "consume_from", None) or ())
    return queue if not consumed or queue in consumed else consumed[0]


def _join_the_fleet(app: Celery, config: CeleryWorkerConfig, queue: str) -> None:
    """The worker's main process announces it (with its task types) and beats until it
    shuts down: Celery's signals, so `celery -A stepd.runner.celery_app worker` does too."""
    beats: list[BeatThread] = []

    def started(sender: Any = None, **_: Any) -> None:
        global _fleet_name
        if getattr(sender, "app", None) is not app:
            return
        _fleet_name = default_worker_name("celery")
        store = open_store(
            config.database_url, migrate=False, sqlite_synchronous=config.sqlite_synchronous
        )
        member = Membership(
            store, _fleet_name, "celery", load_task_types(config.tasks), _consumed(sender, queue)
        )
        beats.append(BeatThread(member))
        beats[-1].start()

    def stopping(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        while beats:
            beat = beats.pop()
            beat.stop()
            beat.membership.store.close()

    signals.worker_init.connect(started, weak=False)
    signals.worker_shutdown.connect(stopping, weak=False)


@cache
def _worker_for(config: CeleryWorkerConfig) -> tuple[Store, Worker]:
    # One store and one set of task types per worker process, made on first use
    # (after Celery forked its pool, so no connection crosses a fork).
    store = open_store(
        config.database_url, migrate=False, sqlite_synchronous=config.sqlite_synchronous
    )
    name = default_worker_name("celery") if _fleet_name is None else f"{_fleet_name}/{os.getpid()}"
    worker = Worker(store, load_task_types(config.tasks), name, config.worker)
    return store, worker


def work(settings: Settings, worker: WorkerSettings) -> None:
    """`stepd worker --executor celery`: a Celery worker on `settings`' queue
    (runner/executor.py)."""
    assert settings.broker_url is not None  # (executor.check requires it)
    config = CeleryWorkerConfig.from_settings(settings, worker)
    app = make_celery(settings.broker_url, config, queue=settings.queue)
    if settings.log_format == "json":
        # Celery replaces the root logger's handlers with its own format unless someone
        # answers its setup_logging signal: keep stepd's JSON lines (its pool's forked
        # processes inherit them).
        from celery import signals

        def keep_stepd_logging(**_: object) -> None:
            logs.start(settings.log_level, settings.log_format)

        signals.setup_logging.connect(keep_stepd_logging, weak=False)
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


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """The Settings of a plain `celery -A stepd.runner.celery_app worker`: STEPD_* only.

    Unlike `stepd worker`, it has no default store or broker: both must be set.
    """
    env = os.environ if environ is None else environ
    for name in ("STEPD_BROKER_URL", "STEPD_DATABASE_URL"):
        if not env.get(name):
            raise RuntimeError(f"set {name} for the stepd Celery app")
    # (the queue a plain `celery worker` consumes is its -Q option: match STEPD_QUEUE)
    return Settings.from_env(env)


def __getattr__(name: str) -> Celery:
    # `celery -A stepd.runner.celery_app` looks for `app`: built from STEPD_* on demand,
    # so importing this module has no side effects.
    if name in {"app", "celery"}:
        settings = settings_from_env()
        assert settings.broker_url is not None  # (settings_from_env requires it)
        built = make_celery(
            settings.broker_url, CeleryWorkerConfig.from_settings(settings), queue=settings.queue
        )
        globals()[name] = built
        return built
    raise AttributeError(name)
