"""A config's run history: its tasks newest first, each with its binding and how long it
ran, and its success rate over the last days (the config page; issue 11).

Also for a deleted config: its tasks keep its seq, and its tombstone its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from stepd.domain.tasks import TERMINAL, Task, TaskStatus
from stepd.services.tasks import TaskService
from stepd.shapes import TaskQuery
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.timeutil import utcnow

RATE_DAYS = 30  # the success rate's window


@dataclass(frozen=True, kw_only=True)
class Run:
    """One task of a config, as its run history lists it."""

    task: Task
    # The bound free params it ran for: its firing's, or those of a run by hand (None: none
    # recorded, a task made before runs by hand were).
    binding: Mapping[str, object] | None
    # From its (last) start to its finish, or to now while it runs; None: not started.
    duration_seconds: float | None


@dataclass(frozen=True, kw_only=True)
class SuccessRate:
    """How a config's tasks that finished in the last `days` ended."""

    days: int
    by_status: Mapping[TaskStatus, int]  # finished tasks by final status

    @property
    def finished(self) -> int:
        return sum(self.by_status.values())

    @property
    def succeeded(self) -> int:
        return self.by_status.get(TaskStatus.SUCCESS, 0)

    @property
    def rate(self) -> float | None:
        """SUCCESS among the finished, from 0 to 1 (None: none finished)."""
        return self.succeeded / self.finished if self.finished else None


def duration_seconds(task: Task, now: datetime) -> float | None:
    if task.started is None:
        return None
    end = task.finished if task.finished is not None and task.status in TERMINAL else now
    return max(0.0, (end - task.started).total_seconds())


@dataclass
class RunHistoryService:
    store: Store
    tasks: TaskService  # its list is the one task filter

    def runs(self, config_seq: int, *, skip: int, limit: int) -> list[Run]:
        """A page of the config's tasks, newest first."""
        query = TaskQuery(config_seq=config_seq, skip=skip, limit=limit, sort="-id")
        found = self.tasks.list(query)
        with self.store.read() as conn:
            fired = trigger_store.bindings(conn, [t.id for t in found])
        now = utcnow()
        return [
            Run(
                task=t,
                binding=fired.get(t.id, _manual_binding(t)),
                duration_seconds=duration_seconds(t, now),
            )
            for t in found
        ]

    def success_rate(self, config_seq: int, *, days: int = RATE_DAYS) -> SuccessRate:
        since = utcnow() - timedelta(days=days)
        with self.store.read() as conn:
            counts = task_store.finished_counts(conn, config_seq, since)
        # A task restarted since it finished is running again: counted when it ends.
        return SuccessRate(days=days, by_status={s: n for s, n in counts.items() if s in TERMINAL})


def _manual_binding(task: Task) -> Mapping[str, object] | None:
    binding = None if task.manual is None else task.manual.get("binding")
    return dict(binding) if isinstance(binding, Mapping) else None
