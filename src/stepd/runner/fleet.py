"""A worker's membership of the fleet: it announces itself, beats while it lives, departs.

Every worker process (a local one, the main process of a Celery worker) holds one
`Membership`: at start it writes who it is (name, host, pid, executor, version, queue)
and the task types it runs, described with their params; then `beat` refreshes its
`last_seen` at most every `BEAT_SECONDS`, and `depart` marks it stopped. The API reads
the rows (services/fleet.py): which workers are live, which task types the deployment
runs. A failed beat is logged and tried again at the next: the fleet's view must never
stop a worker from running tasks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from stepd import __version__
from stepd.errors import StepdError
from stepd.proc.loop import Loop
from stepd.runner.registry import TaskType
from stepd.store import workers as worker_store
from stepd.store.engine import Store
from stepd.store.failures import DRIVER_ERRORS
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)

# What a beat may meet (the store down, full, slow): logged, never raised into the worker.
_FAILURES: tuple[type[Exception], ...] = (StepdError, *DRIVER_ERRORS)
# As often as a running attempt beats (WorkerSettings.heartbeat_interval_seconds): a worker
# is gone after the server's heartbeat timeout, and at least three beats missed.
BEAT_SECONDS = 2.0
MISSED_BEATS = 3


def describe(types: Mapping[str, TaskType]) -> list[dict[str, object]]:
    """The task types as a worker announces them (the shape of GET /api/v1/task_types)."""
    return [types[name].to_json() for name in sorted(types)]


@dataclass
class Membership:
    store: Store
    name: str
    executor: str  # "local" or "celery"
    types: Mapping[str, TaskType]
    queue: str | None = None
    beat_seconds: float = BEAT_SECONDS
    _last_beat: float = field(default=0.0, init=False)

    def announce(self) -> None:
        now = utcnow()
        row = worker_store.WorkerRow(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            executor=self.executor,
            version=__version__,
            queue=self.queue,
            task_types=describe(self.types),
            started=now,
            last_seen=now,
            stopped=None,
        )
        with self.store.write() as conn:
            worker_store.announce(conn, row)
        self._last_beat = time.monotonic()
        log.info("worker %s announced itself with task types %s", self.name, sorted(self.types))

    def beat(self, *, force: bool = False) -> None:
        """Refresh `last_seen` if a beat is due (or `force`); announce again if the row is
        gone (pruned, or the store restored from a backup)."""
        if not force and time.monotonic() - self._last_beat < self.beat_seconds:
            return
        self._last_beat = time.monotonic()
        try:
            with self.store.write() as conn:
                known = worker_store.beat(conn, self.name, utcnow())
            if not known:
                self.announce()
        except _FAILURES as exc:
            log.warning("worker %s could not beat (it goes on): %s", self.name, exc)

    def depart(self) -> None:
        try:
            with self.store.write() as conn:
                worker_store.depart(conn, self.name, utcnow())
        except _FAILURES as exc:
            log.warning("worker %s could not record that it stopped: %s", self.name, exc)


# A Celery worker's main process forks pool processes (and a replacement for a lost one)
# at any moment. A fork while the beat thread is inside SQLite hands the child SQLite's
# process-wide mutexes (its allocator's among them) locked by a thread the child does not
# have: the child's first write then hangs forever, holding the write turn of every
# process (store/filelock.py), and the whole deployment stops writing. So a beat and a
# fork exclude each other: the fork waits for the beat to end (a few milliseconds).
_FORK_GUARD = threading.Lock()
os.register_at_fork(
    before=_FORK_GUARD.acquire,
    after_in_parent=_FORK_GUARD.release,
    after_in_child=_FORK_GUARD.release,  # taken by the forking thread, the child's own
)


@dataclass
class BeatThread:
    """Beats for a process whose own loop is not ours (a Celery worker's main process).

    The process may fork while the thread beats: see _FORK_GUARD."""

    membership: Membership
    _loop: Loop | None = None

    def start(self) -> None:
        try:
            self.membership.announce()
        except _FAILURES as exc:  # the first beat announces it again
            log.warning("worker %s could not announce itself yet: %s", self.membership.name, exc)
        self._loop = Loop("stepd-fleet-beat", self._beat, what="beat")
        self._loop.start()

    def _beat(self) -> float:
        with _FORK_GUARD:
            self.membership.beat(force=True)
        return self.membership.beat_seconds

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop(5, reason="the worker is stopping")
        self.membership.depart()
