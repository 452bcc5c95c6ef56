"""One worker loop you can read top to bottom: claim, run, report, repeat.

A worker process claims a task (priority and semaphores decide), runs the
attempt in its work horse, ships its log while it runs, beats its heart, and
writes how it ended in one transaction with the status event, the semaphore
release and the claim of its next task. It stops claiming when asked and
finishes the attempt in hand.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from stepd import logs
from stepd.domain.tasks import TaskStatus
from stepd.runner.attempt import Horse, LogBuffer
from stepd.runner.fleet import Membership
from stepd.runner.horse import HorseLimits
from stepd.runner.registry import TaskType
from stepd.store import runs
from stepd.store.engine import Store
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)


def default_worker_name(label: str = "worker") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{label}"


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """How a worker behaves (built from Settings at the edge)."""

    # idle: how often to look for work (a cheap indexed read; it bounds pickup latency)
    poll_interval_seconds: float = 0.02
    heartbeat_interval_seconds: float = 2.0
    log_ship_interval_seconds: float = 0.5
    status_events: runs.StatusEvents = field(default_factory=runs.StatusEvents)
    horse: HorseLimits = field(default_factory=HorseLimits)


@dataclass
class Worker:
    store: Store
    types: Mapping[str, TaskType]
    name: str
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    on_finished: list[Callable[[], None]] = field(default_factory=list)  # reactor wake-ups
    # Why the attempt running now must be given up at once (None: it goes on), asked at
    # every log tick: a local worker whose server died abandons its attempt rather than
    # outlive the server by the length of a task (issue 9 item 6).
    abandon: Callable[[], str | None] = lambda: None
    # Who it is in the fleet (announced at start, beaten while it runs); None: not counted
    # (a Celery pool process: its worker's main process is the member).
    membership: Membership | None = None

    def __post_init__(self) -> None:
        self.horse = Horse(self.types, self.settings.horse)

    def run(
        self, should_stop: Callable[[], bool], idle: Callable[[float], None] = time.sleep
    ) -> None:
        """Work until `should_stop()`; `idle(seconds)` waits for work (woken early, or not)."""
        log.info("worker %s started with task types %s", self.name, sorted(self.types))
        task: runs.Claimed | None = None
        if self.membership is not None:
            self.membership.announce()
        try:
            while True:
                if self.membership is not None:
                    self.membership.beat()  # (a write only when one is due)
                if task is None:
                    if should_stop():
                        break
                    task = self.claim()
                    if task is None:
                        idle(self.settings.poll_interval_seconds)
                        continue
                # While there is work, each attempt's end claims the next one.
                _, task = self._execute(task, claim_next=not should_stop())
        finally:
            self.horse.close()
            if self.membership is not None:
                self.membership.depart()
        log.info("worker %s stopped: asked to stop", self.name)

    def claim(self) -> runs.Claimed | None:
        """Claim a task if one waits (a read first: idle polling takes no write lock)."""
        with self.store.read() as conn:
            if not runs.has_work(conn, utcnow(), types=self.types):
                return None
        with self.store.write() as conn:
            # The time is read inside the transaction: `started` is when the claim held the lock.
            # Only the types this worker runs: a fleet's workers may each run other types.
            claimed = runs.claim(conn, self.name, utcnow(), limit=1, start=True, types=self.types)
        return claimed[0] if claimed else None

    def run_one(self) -> bool:
        """Claim and run one task; False when there was nothing to claim."""
        task = self.claim()
        if task is None:
            return False
        self.execute(task)
        return True

    def execute(self, task: runs.Claimed) -> TaskStatus | None:
        """Run a claimed (EXECUTING) attempt to its end and record it."""
        return self._execute(task, claim_next=False)[0]

    def _execute(
        self, task: runs.Claimed, *, claim_next: bool
    ) -> tuple[TaskStatus | None, runs.Claimed | None]:
        # Every line about this attempt carries its ids (--log-format json: as keys).
        with logs.bound(task_id=task.id, attempt=task.attempt, worker=self.name):
            log.info("task %s attempt %s started (%s)", task.id, task.attempt, task.type)
            return self._run_attempt(task, claim_next=claim_next)

    def _run_attempt(
        self, task: runs.Claimed, *, claim_next: bool
    ) -> tuple[TaskStatus | None, runs.Claimed | None]:
        task_type = self.types.get(task.type)
        chunk = 0

        def ship(buffer: LogBuffer, *, beat: bool) -> bool:
            nonlocal chunk
            text = buffer.take()
            stop = False
            with self.store.write() as conn:
                if text:
                    runs.append_log(conn, task.id, task.attempt, chunk, text)
                    chunk += 1
                if beat:
                    stop = runs.heartbeat(conn, task.id, task.attempt)
            return stop

        if task_type is None:
            known = ", ".join(sorted(self.types)) or "none"
            outcome = runs.Outcome(
                status=TaskStatus.EXCEPTION,
                error=f"unknown task type {task.type!r} on worker {self.name} (it knows: {known}); "
                "start the worker with --tasks naming the module that declares it",
            )
            buffer = LogBuffer()
            buffer.note(f"stepd: {outcome.error}\n")
        else:
            last_beat = time.monotonic()
            abandoned: list[str] = []

            def tick(buffer: LogBuffer) -> bool:
                nonlocal last_beat
                reason = self.abandon()
                if reason is not None:
                    abandoned.append(reason)
                    buffer.note(f"\n[stepd: attempt abandoned: {reason}]\n")
                    return True  # the horse kills the attempt
                beat = time.monotonic() - last_beat >= self.settings.heartbeat_interval_seconds
                if beat:
                    last_beat = time.monotonic()
                    if self.membership is not None:  # a long attempt: the worker lives too
                        self.membership.beat()
                return ship(buffer, beat=beat)

            outcome, buffer = self.horse.run(
                task_type,
                task.params,
                kill_timeout_seconds=task.kill_timeout,
                tick=tick,
                tick_interval_seconds=self.settings.log_ship_interval_seconds,
            )
            if abandoned:
                # Not STOPPED: nobody asked; an EXCEPTION, retried if retries remain.
                outcome = runs.Outcome(
                    status=TaskStatus.EXCEPTION,
                    error=f"abandoned by worker {self.name}: {abandoned[0]}",
                )
        text = buffer.take()
        claimed: list[runs.Claimed] = []
        with self.store.write() as conn:
            now = utcnow()
            if text:
                runs.append_log(conn, task.id, task.attempt, chunk, text)
            status = runs.finish(
                conn,
                task.id,
                task.attempt,
                outcome,
                self.settings.status_events,
                now,
                own_event=None if task_type is None else task_type.status_event,
            )
            if claim_next:  # one transaction, one write lock, for the end and the next start
                claimed = runs.claim(conn, self.name, now, limit=1, start=True, types=self.types)
        log.info("task %s attempt %s ended %s", task.id, task.attempt, outcome.status.value)
        for hook in self.on_finished:
            hook()
        return status, (claimed[0] if claimed else None)
