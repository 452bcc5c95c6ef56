"""The reads behind `GET /metrics`: a few counts and ages, each answered by an index.

Every statement here stays cheap however much history the store holds (1,000,000
events, 100,000 tasks): nothing counts a whole table that grows with history.

- events ever stored: `max(seq)` (the primary key's last entry), not `count(*)`;
- NEW and REJECTED events: ranges of `ix_events_state_seq` (the reactor's backlog
  and the rejected events, both small next to the processed history);
- active tasks by status: ranges of `ix_tasks_status_priority_id`, index only;
- ended tasks: only among the newest `RECENT_TASKS` tasks, a range of the primary key;
- semaphores, configs: small tables (at most `MAX_SEMAPHORES` semaphores are read);
- failed firings: the triggers without a task, a range of `ix_triggers_task_id` (every
  firing that made its task has one, so the range holds the failed ones only).

The caller owns the transaction: one read transaction, so every figure is of the
same snapshot. Named queries (sql/metrics.sql) on the driver's cursor (store/dbapi.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from stepd.domain.tasks import TaskStatus
from stepd.store import dbapi, queries

RECENT_TASKS = 10_000  # the window of newest tasks whose statuses are counted
MAX_SEMAPHORES = 1_000  # semaphores reported (by name); more would swamp a scrape

_Q = queries.load("metrics")  # the statements, by name: sql/metrics.sql


@dataclass(frozen=True, kw_only=True)
class Semaphore:
    name: str
    capacity: int  # units it grants at once
    used: int  # units held by dispatched or running tasks


@dataclass(frozen=True, kw_only=True)
class StoreMetrics:
    """What the store says about the work in it, read in one snapshot."""

    events_stored: int  # the highest event seq: every event ever stored
    events_pending: int  # NEW: not yet evaluated by the reactor
    oldest_pending_event: datetime | None  # `created` of the oldest NEW event
    events_rejected: int
    active_tasks: dict[TaskStatus, int]  # ENQUEUED, WAIT_MUTEX, EXECUTING: every one present
    oldest_waiting_task: datetime | None  # since when the oldest queued task waits
    recent_tasks: dict[TaskStatus, int]  # statuses among the newest RECENT_TASKS tasks
    recent_window: int  # how many tasks that window holds (< RECENT_TASKS in a young store)
    semaphores: list[Semaphore]  # by name, at most MAX_SEMAPHORES
    semaphores_truncated: bool  # there are more than MAX_SEMAPHORES
    configs: int
    configs_enabled: int
    trigger_errors: int  # firings and evaluations that failed: triggers with an error, no task


def _one(conn: dbapi.Conn, name: str, **params: object) -> tuple[object, ...]:
    cur = dbapi.run(conn, _Q[name], params)
    row = cur.fetchone()
    cur.close()
    return tuple(row) if row is not None else ()


def _all(conn: dbapi.Conn, name: str, **params: object) -> list[tuple[object, ...]]:
    cur = dbapi.run(conn, _Q[name], params)
    rows = [tuple(row) for row in cur.fetchall()]
    cur.close()
    return rows


def _int(value: object) -> int:
    return 0 if value is None else int(str(value))


def _statuses(rows: list[tuple[object, ...]]) -> dict[TaskStatus, int]:
    return {TaskStatus(str(status)): _int(n) for status, n in rows}


def reactor_backlog(conn: Connection) -> tuple[int, datetime | None]:
    """How many events wait for the reactor, and since when the oldest (the health check's
    two figures of `read`, without the rest)."""
    r = dbapi.raw(conn)
    (pending,) = _one(r, "events_in_state", state="NEW")
    oldest = _one(r, "oldest_new_event")
    return _int(pending), dbapi.read_time(oldest[0]) if oldest else None


def read(conn: Connection) -> StoreMetrics:
    """Every figure of `GET /metrics` that the store holds, on `conn`'s transaction."""
    r = dbapi.raw(conn)
    (stored,) = _one(r, "events_stored")
    (pending,) = _one(r, "events_in_state", state="NEW")
    oldest_event = _one(r, "oldest_new_event")
    (rejected,) = _one(r, "events_in_state", state="REJECTED")

    active = dict.fromkeys((TaskStatus.ENQUEUED, TaskStatus.WAIT_MUTEX, TaskStatus.EXECUTING), 0)
    active.update(_statuses(_all(r, "active_tasks")))
    waiting = _one(r, "oldest_waiting_task")
    oldest_task = None
    if waiting:
        created, not_before = waiting
        # A retry waits from when it came due, not from when the task was first made.
        oldest_task = dbapi.read_time(created)
        if not_before is not None:
            oldest_task = max(oldest_task, dbapi.read_time(not_before))

    (last_task,) = _one(r, "last_task")
    after = max(0, _int(last_task) - RECENT_TASKS)
    recent = _statuses(_all(r, "recent_tasks_sqlite" if r.sqlite else "recent_tasks", after=after))

    semaphore_rows = _all(r, "semaphores", limit=MAX_SEMAPHORES + 1)
    configs, enabled = _one(r, "configs")
    (trigger_errors,) = _one(r, "trigger_errors")
    return StoreMetrics(
        events_stored=_int(stored),
        events_pending=_int(pending),
        oldest_pending_event=dbapi.read_time(oldest_event[0]) if oldest_event else None,
        events_rejected=_int(rejected),
        active_tasks=active,
        oldest_waiting_task=oldest_task,
        recent_tasks=recent,
        recent_window=sum(recent.values()),
        semaphores=[
            Semaphore(name=str(name), capacity=_int(capacity), used=_int(used))
            for name, capacity, used in semaphore_rows[:MAX_SEMAPHORES]
        ],
        semaphores_truncated=len(semaphore_rows) > MAX_SEMAPHORES,
        configs=_int(configs),
        configs_enabled=_int(enabled),
        trigger_errors=_int(trigger_errors),
    )
