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

from celery import Celery

from stepd.proc.wakeup import Wakeup
from stepd.runner.celery_app import QUEUE, TASK_NAME
from stepd.store import runs
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
    # A `WakePipe` when the reactor runs in a process of its own.
    _wake: Wakeup = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stepd-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def dispatch_once(self) -> int:
        with self.store.read() as conn:
            if not runs.has_work(conn, utcnow()):
                return 0
        with self.store.write() as conn:
            claimed = runs.claim(conn, self.name, utcnow(), limit=self.batch, start=False)
        for n, task in enumerate(claimed):
            try:
                self._send(task.id, task.attempt)
            except Exception:
                log.exception("cannot reach the broker; the unsent tasks stay queued")
                with self.store.write() as conn:
                    for unsent in claimed[n:]:
                        runs.undo_dispatch(conn, unsent.id, unsent.attempt, utcnow())
                raise
        return len(claimed)

    def _send(self, task_id: int, attempt: int) -> None:
        self.app.send_task(TASK_NAME, args=[task_id, attempt], queue=self.queue)

    def maintain(self) -> None:
        """End attempts of workers that went silent; re-send what no worker started."""
        now = utcnow()
        # Reaping needs no broker: it comes first, so a broker outage cannot stop it.
        with self.store.write() as conn:
            lost = runs.reap(
                conn,
                now,
                heartbeat_timeout_seconds=self.heartbeat_timeout_seconds,
                events=self.status_events,
            )
        if lost:
            log.warning("ended the attempts of tasks %s: their workers were lost", lost)
        with self.store.read() as conn:
            stale = runs.unstarted_dispatches(
                conn, now - timedelta(seconds=self.resend_after_seconds)
            )
        for task_id, attempt in stale:
            self._send(task_id, attempt)
        if stale:
            log.warning("sent %d dispatched but unstarted tasks again", len(stale))

    def _run(self) -> None:
        log.info("dispatcher started")
        last_maintenance = 0.0
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                # Often enough that a lost worker's attempt ends soon after its timeout.
                interval = min(MAINTENANCE_INTERVAL_SECONDS, self.heartbeat_timeout_seconds / 3)
                if time.monotonic() - last_maintenance >= interval:
                    self.maintain()
                    last_maintenance = time.monotonic()
                sent = self.dispatch_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("dispatch failed (attempt %d); retrying", failures)
                self._stop.wait(min(30.0, 0.5 * 2**failures))
                continue
            if sent < self.batch:
                self._wake.wait(self.poll_interval_seconds)
        log.info("dispatcher stopped: server shutting down")
