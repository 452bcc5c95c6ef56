"""Which broker queue runs which task type: what the live Celery workers announce.

A fleet's Celery workers need not all run the same pipeline code: the workers of one
machine may run the GPU types on queue `gpu`, the others the rest on `stepd`. Each worker
announces its queue and task types (runner/fleet.py); the dispatcher claims only the
tasks some live Celery worker runs, and sends each to a queue whose workers run its type
(the deployment's own queue when its workers do). A task of a type no live worker runs
waits, ENQUEUED, until one announces it (`/healthz` says which types wait so), rather
than being sent to a worker that would end it as an unknown type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from stepd.runner.fleet import BEAT_SECONDS

# type -> the queues of live Celery workers that run it
Table = Mapping[str, frozenset[str]]


@dataclass
class Routes:
    read: Callable[[], Table]  # the fleet's table now (services/fleet.py celery_routes)
    default_queue: str  # this deployment's queue (--queue), preferred when it runs a type
    refresh_seconds: float = BEAT_SECONDS  # a worker announced or gone: seen this soon
    _table: Table = field(default_factory=dict)
    _read_at: float = float("-inf")

    def refresh(self, *, force: bool = False) -> None:
        if force or time.monotonic() - self._read_at >= self.refresh_seconds:
            self._table = self.read()
            self._read_at = time.monotonic()

    def types(self) -> frozenset[str]:
        """The task types some live Celery worker runs."""
        return frozenset(self._table)

    def queue_for(self, task_type: str) -> str:
        """The queue to send a task of `task_type` to (the default one if no worker runs it:
        a task claimed just before its workers left)."""
        queues = self._table.get(task_type)
        if not queues or self.default_queue in queues:
            return self.default_queue
        return min(queues)  # one queue per type, the same on every server
