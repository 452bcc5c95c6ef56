"""The daemon: the processes and loops of `stepd serve`, assembled from one `Settings`.

`serve` builds the API's services (api/app.py `build_context`), starts a `Daemon` around
them, serves the API (a leaf: it starts nothing) until uvicorn is asked to stop, then
stops the daemon and closes the services, in that order.

Around the services (the events they store, the tasks they make) a Daemon starts, in
this order, the executor (runner/executor.py: local workers, the Celery dispatcher, or
nothing), the reactor (a process of its own, or a thread with the store's listener), the
clock, the schedules' rounds (scheduler.py) and retention's rounds
(services/retention.py), and wires the wake-ups between them: a
stored event wakes the reactor, a made task wakes the executor. `stop` ends them in the
reverse order. Nothing else builds these parts.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stepd.backfiller import Backfiller
from stepd.clock import Clock
from stepd.instruments import observe
from stepd.reactor.loop import ReactorLoop
from stepd.reactor.process import ReactorConfig, ReactorProcess
from stepd.reactor.reactor import Reactor
from stepd.runner import executor as executors
from stepd.scheduler import Scheduler, fast_clock
from stepd.services.retention import RetentionLoop, RetentionService
from stepd.store.lookup import JoinBudget
from stepd.store.notify import EVENTS_CHANNEL
from stepd.timeutil import utcnow

if TYPE_CHECKING:
    from stepd.api.context import AppContext
    from stepd.instruments import Instruments
    from stepd.services.backfills import BackfillService
    from stepd.services.events import EventService
    from stepd.services.tasks import TaskService
    from stepd.settings import Settings
    from stepd.store.engine import Store
    from stepd.store.notify import Listener
    from stepd.store.runs import StatusEvents

log = logging.getLogger(__name__)


def schedule_clock(settings: Settings) -> Callable[[], datetime]:
    """The schedules' clock: the wall clock, or the faster one of a test."""
    if settings.schedule_clock_speed == 1.0:
        return utcnow
    epoch = settings.schedule_clock_epoch
    start = utcnow() if epoch is None else datetime.fromtimestamp(epoch, UTC)
    log.warning(
        "the schedules' clock runs %.0f times faster than the wall clock (testing only)",
        settings.schedule_clock_speed,
    )
    return fast_clock(settings.schedule_clock_speed, start)


@dataclass
class Daemon:
    settings: Settings
    store: Store
    events: EventService  # its stored events wake the reactor; the clock sends through it
    tasks: TaskService  # its made tasks wake the executor
    status_events: StatusEvents
    backfills: BackfillService | None = None  # fed here, when given
    instruments: Instruments | None = None  # the reactor thread's batches are timed here
    executor: executors.Executor | None = field(default=None, init=False)
    reactor_process: ReactorProcess | None = field(default=None, init=False)
    reactor_loop: ReactorLoop | None = field(default=None, init=False)
    listener: Listener | None = field(default=None, init=False)
    clock: Clock | None = field(default=None, init=False)
    scheduler: Scheduler | None = field(default=None, init=False)
    backfiller: Backfiller | None = field(default=None, init=False)
    retention: RetentionLoop | None = field(default=None, init=False)

    def start(self) -> None:
        settings = self.settings
        cross_process = settings.reactor and settings.reactor_process
        spec = executors.check(settings)
        side = executors.ServerSide(
            settings=settings,
            store=self.store,
            status_events=self.status_events,
            cross_process=cross_process,
        )
        self.executor = spec.serve(side)
        if self.executor is not None:
            self.executor.start()
            self.tasks.on_created.append(self.executor.wake)
        if cross_process:
            self.reactor_process = ReactorProcess(
                ReactorConfig(
                    database_url=self.store.url,
                    sqlite_synchronous=settings.sqlite_synchronous,
                    poll_interval_seconds=settings.reactor_poll_interval_seconds,
                    join_budget_rows=settings.join_budget_rows,
                    join_budget_steps=settings.join_budget_steps,
                    log_format=settings.log_format,
                ),
                [] if self.executor is None else self.executor.wakeups(),
            )
            self.reactor_process.start()
            self.events.on_stored.append(self.reactor_process.notify)
        elif settings.reactor:
            loop = ReactorLoop(
                Reactor(self.store, join_budget=JoinBudget.of(settings)),
                poll_interval_seconds=settings.reactor_poll_interval_seconds,
            )
            self.reactor_loop = loop
            if self.instruments is not None:
                observe(loop.reactor, self.instruments)
            self.events.on_stored.append(loop.notify)
            if self.executor is not None:
                loop.reactor.on_tasks.append(self.executor.wake)
            loop.start()
            self.listener = self.store.listener_for(EVENTS_CHANNEL, loop.notify)
            if self.listener is not None:
                self.listener.start()
        if settings.clock:
            self.clock = Clock(self.events)
            self.clock.start()
        if settings.schedules:
            self.scheduler = Scheduler(self.store, self.events, now=schedule_clock(settings))
            self.scheduler.start()
        if self.backfills is not None:
            self.backfiller = Backfiller(self.backfills)
            self.backfiller.start()
        # Always running: retention is the deployment's stored setting (off by default),
        # which an admin may change while the servers run.
        self.retention = RetentionLoop(
            RetentionService(
                self.store,
                own=(settings.retention, settings.task_retention, settings.log_retention),
                batch_rows=settings.retention_batch_rows,
            ),
            interval_seconds=settings.retention_interval_seconds,
        )
        self.retention.start()
        log.info(
            "started: executor %s, reactor %s, clock %s, schedules %s",
            spec.name,
            "process" if cross_process else ("thread" if settings.reactor else "off"),
            "on" if settings.clock else "off",
            "on" if settings.schedules else "off",
        )

    def stop(self) -> None:
        """Everything `start` started, in the reverse order."""
        if self.backfiller is not None:
            self.backfiller.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.clock is not None:
            self.clock.stop()
        if self.executor is not None:
            _unhook(self.tasks.on_created, self.executor.wake)
            self.executor.stop()
        if self.reactor_process is not None:
            _unhook(self.events.on_stored, self.reactor_process.notify)
            self.reactor_process.stop()
        if self.listener is not None:
            self.listener.stop()
        if self.reactor_loop is not None:
            _unhook(self.events.on_stored, self.reactor_loop.notify)
            self.reactor_loop.stop()


def _unhook(hooks: list[Callable[[], None]], hook: Callable[[], None]) -> None:
    if hook in hooks:  # (not yet there when `start` failed before adding it)
        hooks.remove(hook)


@contextmanager
def running(context: AppContext) -> Iterator[Daemon]:
    """A Daemon for `context`'s services, started for the duration of the block."""
    daemon = Daemon(
        context.settings,
        context.store,
        context.events,
        context.tasks,
        context.status_events,
        instruments=context.instruments,
        backfills=context.backfills,
    )
    try:
        daemon.start()  # (a part that failed to start: those before it are stopped)
        yield daemon
    finally:
        daemon.stop()


class _Stopping(Exception):
    """SIGTERM or SIGINT: stop everything, in order, and exit 0."""


def _stop(signum: int, _frame: object) -> None:
    # Once: a second signal must not interrupt the stopping it asked for.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _Stopping(signal.Signals(signum).name)


def _warm_metrics(context: AppContext) -> None:
    """Count the store's facts for /metrics once, in the background: the first count reads
    every row (about 2 s at 1,000,000 events on SQLite), and the first scrape, with those
    after it that wait for the same lock, would otherwise take that long."""
    from stepd.api.routes_metrics import warm

    def run() -> None:
        try:
            warm(context)
        except Exception:  # the first scrape counts instead; nothing else depends on it
            log.warning("counting the store's facts for /metrics failed", exc_info=True)

    threading.Thread(target=run, name="stepd-metrics-warm-up", daemon=True).start()


def serve(context: AppContext, *, before_serving: Callable[[], None] = lambda: None) -> None:
    """`stepd serve`: the daemon around the API on `context` until uvicorn stops (SIGINT,
    SIGTERM), then everything stopped and `context` closed. `before_serving` runs once
    the app and the daemon are up, before the first request (the CLI freezes the GC)."""
    import uvicorn

    from stepd.api.app import create_app

    settings = context.settings
    # uvicorn handles the signals while it serves, then restores these handlers and raises
    # the signal again: here, an exception that unwinds through the daemon's stop, where
    # SIGTERM's default action would end the process before it (workers, reactor and
    # store left to their parent-death signals).
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        app = create_app(context)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level.lower(),
                access_log=settings.access_log,
                lifespan="off",  # the app has nothing to start: the daemon did
                # uvicorn's lines go to stepd's handler, in its format (--log-format)
                log_config=None,
            )
        )
        with running(context):
            before_serving()
            _warm_metrics(context)
            server.run()
    except _Stopping as stopping:
        log.info("stopping on %s", stopping)
    finally:
        context.close()
    log.info("stepd stopped: the API, its loops and the store are closed")
