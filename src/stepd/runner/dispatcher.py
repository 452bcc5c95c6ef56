"""The Celery dispatcher, in `stepd serve`: claim by priority and semaphores, send ids.

A claim is committed before its message is sent; if sending fails the claim is
given back. Dispatched tasks that no worker started for a while are sent again
(a restarted server recovers everything it had dispatched), which is safe
because only one start of an attempt wins. The reaper ends attempts whose
worker stopped beating.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery

from stepd.proc.loop import Loop
from stepd.proc.wakepipe import WakePipe
from stepd.proc.wakeup import Wakeup
from stepd.runner.celery_app import QUEUE, TASK_NAME
from stepd.runner.executor import ServerSide
from stepd.runner.routes import Routes
from stepd.store import deployment, runs
from stepd.store.engine import Store
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_SECONDS = 5.0


@dataclass
class Dispatcher:
    store: Store
    app: Celery
    status_events: runs.StatusEvents
    batch: int = 50
    poll_interval_seconds: float = 0.05
    resend_after_seconds: float = 60.0
    heartbeat_timeout_seconds: float = 30.0
    name: str = "celery-dispatcher"
    queue: str = QUEUE  # the broker queue this deployment's workers consume
    # Which queue runs which type (runner/routes.py); None: every type, on `queue`.
    routes: Routes | None = None
    # A `WakePipe` when the reactor runs in a process of its own.
    _wake: Wakeup = field(default_factory=threading.Event)
    _loop: Loop | None = None
    _last_maintenance: float = 0.0

    def notify(self) -> None:
        self._wake.set()

    wake = notify  # (the Executor protocol's name: runner/executor.py)

    def wakeups(self) -> list[WakePipe]:
        # Another process can set only a pipe; an Event is this process's alone.
        return [self._wake] if isinstance(self._wake, WakePipe) else []

    def start(self) -> None:
        self._loop = Loop("stepd-dispatcher", self._round, what="dispatch", wake=self._wake)
        self._loop.start()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop(10, reason="the server is stopping")

    def dispatch_once(self) -> int:
        types: frozenset[str] | None = None
        if self.routes is not None:
            self.routes.refresh()
            types = self.routes.types()
            if not types:  # no live Celery worker: whatever is queued waits for one
                return 0
        with self.store.read() as conn:
            if not runs.has_work(conn, utcnow(), types=types):
                return 0
        with self.store.write() as conn:
            claimed = runs.claim(
                conn, self.name, utcnow(), limit=self.batch, start=False, types=types
            )
        if not claimed:
            return 0
        sent = 0
        try:
            # One producer (one broker channel) for the batch: `send_task` alone acquires
            # and releases one from the pool per message.
            with self.app.producer_or_acquire() as producer:
                for task in claimed:
                    self._send(task.id, task.attempt, producer, self._queue_for(task.type))
                    sent += 1
        except Exception:
            log.exception("cannot reach the broker; the unsent tasks stay queued")
            with self.store.write() as conn:
                for unsent in claimed[sent:]:
                    runs.undo_dispatch(conn, unsent.id, unsent.attempt, utcnow())
            raise
        return len(claimed)

    def _queue_for(self, task_type: str) -> str:
        return self.queue if self.routes is None else self.routes.queue_for(task_type)

    def _send(self, task_id: int, attempt: int, producer: Any, queue: str) -> None:
        self.app.send_task(
            TASK_NAME,
            args=[task_id, attempt],
            queue=queue,
            producer=producer,
            # What monitoring shows of the message, given: Celery's own saferepr of the
            # arguments was a third of the dispatcher's cost per message.
            argsrepr=f"[{task_id}, {attempt}]",
            kwargsrepr="{}",
        )

    def maintain(self) -> None:
        """End attempts of workers that went silent; re-send what no worker started."""
        now = utcnow()
        # Reaping needs no broker: it comes first, so a broker outage cannot stop it.
        with self.store.write() as conn:
            lost = runs.reap(
                conn,
                now,
                # The deployment's stored timeout wins (store/deployment.py).
                heartbeat_timeout_seconds=deployment.heartbeat_timeout(
                    conn, self.heartbeat_timeout_seconds
                ),
                events=self.status_events,
            )
        if lost:
            log.warning("ended the attempts of tasks %s: their workers were lost", lost)
        with self.store.read() as conn:
            stale = runs.unstarted_dispatches(
                conn, now - timedelta(seconds=self.resend_after_seconds)
            )
        if stale:
            if self.routes is not None:  # (the workers of a lost message's queue may be gone)
                self.routes.refresh(force=True)
            with self.app.producer_or_acquire() as producer:
                for task_id, attempt, task_type in stale:
                    self._send(task_id, attempt, producer, self._queue_for(task_type))
            log.warning("sent %d dispatched but unstarted tasks again", len(stale))

    def _round(self) -> float:
        """One round (proc/loop.py): the maintenance when due, then a batch of claims."""
        # Often enough that a lost worker's attempt ends soon after its timeout.
        interval = min(MAINTENANCE_INTERVAL_SECONDS, self.heartbeat_timeout_seconds / 3)
        if time.monotonic() - self._last_maintenance >= interval:
            self.maintain()
            self._last_maintenance = time.monotonic()
        sent = self.dispatch_once()
        return self.poll_interval_seconds if sent < self.batch else 0.0


def serve_side(side: ServerSide) -> Dispatcher:
    """The Celery executor of `stepd serve` (runner/executor.py): claim, send the ids."""
    from stepd.runner.celery_app import make_celery
    from stepd.services.fleet import FleetService

    settings = side.settings
    assert settings.broker_url is not None  # (executor.check requires it)
    return Dispatcher(
        side.store,
        make_celery(settings.broker_url, queue=settings.queue),
        side.status_events,
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
        # A message no worker took within twice the heartbeat timeout is sent again.
        resend_after_seconds=max(10.0, 2 * settings.heartbeat_timeout_seconds),
        queue=settings.queue,
        routes=Routes(
            FleetService(
                side.store, heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds
            ).celery_routes,
            settings.queue,
        ),
        # With the reactor in a process of its own, it wakes the dispatcher across processes.
        _wake=WakePipe() if side.cross_process else threading.Event(),
    )
