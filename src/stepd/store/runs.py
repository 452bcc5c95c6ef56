"""Store functions of the runner: claim by priority and semaphores, start, finish, retry, reap.

Every transition is one guarded UPDATE (`WHERE status = ... AND attempts = ...`),
so a stale worker (reaped, or a redelivered message) can never overwrite a newer
state, and semaphore holds are inserted and deleted in the same transaction as
the status they belong to: release cannot be forgotten, whatever ends the task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    TextClause,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from stepd.domain.tasks import ACTIVE, TaskStatus
from stepd.errors import InvalidInput
from stepd.store import events as event_store
from stepd.store.schema import semaphore_holds, semaphores, task_attempts, task_logs, tasks

CLAIM_FIRST_SCAN = 20
CLAIM_SCAN = 500  # queued tasks looked at per claim (those waiting on a semaphore are skipped)
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 600.0
MAX_PARAMS_IN_EVENT = 50


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A task a worker now holds: run attempt `attempt` of it."""

    id: int
    attempt: int
    type: str
    params: Mapping[str, Any]
    kill_timeout: int | None


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How an attempt ended."""

    status: TaskStatus
    output: object = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class StatusEvents:
    """How finished tasks report themselves as events."""

    name: str = "taskEvent"
    environment: str = "stable"


# The hot path of every task (claim, finish) as prepared text: building a Core
# statement per call cost more than running it. Each is compiled once; the
# datetimes are bound through the column type, exactly as Core stores them.
_CLAIMABLE = (
    # Literal values: the partial index ix_tasks_queue (priority DESC, id) is only used
    # when the query repeats its condition word for word.
    "status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL"
    " AND (not_before IS NULL OR not_before <= :now)"
)
_TIME = DateTime(timezone=True)


def _sql(sql: str, *times: str) -> TextClause:
    return text(sql).bindparams(*(bindparam(name, type_=_TIME) for name in times))


def _queue(dialect: str) -> str:
    # SQLite's planner, without statistics, prefers the status index and sorts the
    # whole queue on every claim; the partial index hands out its head in order.
    return "tasks INDEXED BY ix_tasks_queue" if dialect == "sqlite" else "tasks"


@cache
def _has_work(dialect: str) -> TextClause:
    return _sql(f"SELECT id FROM {_queue(dialect)} WHERE {_CLAIMABLE} LIMIT 1", "now")


@cache
def _queue_head(dialect: str) -> TextClause:
    # PostgreSQL: rows another claimer holds are skipped, not waited for.
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return _sql(
        "SELECT id, status, semaphores, attempts, type, params, kill_timeout"
        f" FROM {_queue(dialect)} WHERE {_CLAIMABLE}"
        f" ORDER BY priority DESC, id LIMIT :limit OFFSET :offset{lock}",
        "now",
    )


_MARK_WAITING = _sql("UPDATE tasks SET status = 'WAIT_MUTEX', updated = :now WHERE id = :id", "now")
_TAKE_AND_START = _sql(
    "UPDATE tasks SET attempts = :attempt, dispatched = :now, worker = :worker, updated = :now,"
    " heartbeat = :now, status = 'EXECUTING', started = :now WHERE id = :id",
    "now",
)
_TAKE = _sql(
    "UPDATE tasks SET attempts = :attempt, dispatched = :now, worker = :worker, updated = :now,"
    " heartbeat = :now, status = 'ENQUEUED' WHERE id = :id",
    "now",
)
_NEW_ATTEMPT = _sql(
    "INSERT INTO task_attempts (task_id, attempt, worker, status, started)"
    " VALUES (:id, :attempt, :worker, :status, :started)",
    "started",
)
_START = _sql(
    "UPDATE tasks SET status = 'EXECUTING', started = :now, heartbeat = :now, worker = :worker,"
    " updated = :now WHERE id = :id AND attempts = :attempt AND status = 'ENQUEUED'"
    " AND dispatched IS NOT NULL",
    "now",
)
_START_ATTEMPT = _sql(
    "UPDATE task_attempts SET status = 'EXECUTING', started = :now, worker = :worker"
    " WHERE task_id = :id AND attempt = :attempt",
    "now",
)
_STARTED = text("SELECT type, params, kill_timeout FROM tasks WHERE id = :id")
_ACTIVE_TASK = text(
    "SELECT id, type, params, author, max_retries, stop_requested FROM tasks"
    " WHERE id = :id AND attempts = :attempt"
    " AND status IN ('ENQUEUED', 'WAIT_MUTEX', 'EXECUTING')"
)
_RELEASE = text("DELETE FROM semaphore_holds WHERE task_id = :id")
_END_ATTEMPT = _sql(
    "UPDATE task_attempts SET status = :status, finished = :now, error = :error"
    " WHERE task_id = :id AND attempt = :attempt",
    "now",
)
_RETRY = _sql(
    "UPDATE tasks SET status = 'ENQUEUED', dispatched = NULL, worker = NULL, heartbeat = NULL,"
    " not_before = :not_before, updated = :now, error = :error, output = :output WHERE id = :id",
    "now",
    "not_before",
)
_END = _sql(
    "UPDATE tasks SET status = :status, finished = :now, updated = :now, output = :output,"
    " error = :error, dispatched = NULL, heartbeat = NULL WHERE id = :id",
    "now",
)
_LINK_EVENT = text("INSERT INTO task_events (task_id, event_seq) VALUES (:id, :seq)")


def _locked(conn: Connection, stmt: Any) -> Any:
    # PostgreSQL: rows another claimer holds are skipped, not waited for.
    return stmt.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else stmt


def ensure_semaphores(conn: Connection, names: Sequence[str], now: datetime) -> None:
    """Semaphores are made on first use with capacity 1 (the Sandbox default)."""
    existing = set(
        conn.execute(select(semaphores.c.name).where(semaphores.c.name.in_(names))).scalars()
    )
    for name in sorted(set(names) - existing):
        dialect = conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(
                pg_insert(semaphores)
                .values(name=name, capacity=1, auto=True, updated=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
        else:
            conn.execute(insert(semaphores).values(name=name, capacity=1, auto=True, updated=now))


class _Ledger:
    """Semaphore capacity and use, read once per claim and kept current as it grants."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.free: dict[str, int] = {}  # name -> units still available

    def _load(self, names: set[str]) -> None:
        missing = sorted(names - set(self.free))
        if not missing:
            return
        ensure_semaphores(self.conn, missing, self.now)
        stmt = (
            select(semaphores.c.name, semaphores.c.capacity)
            .where(semaphores.c.name.in_(missing))
            .order_by(semaphores.c.name)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()  # in name order: two claimers never deadlock
        capacity = dict(self.conn.execute(stmt).all())
        held = dict(
            self.conn.execute(
                select(semaphore_holds.c.name, func.sum(semaphore_holds.c.weight))
                .where(semaphore_holds.c.name.in_(missing))
                .group_by(semaphore_holds.c.name)
            ).all()
        )
        for name in missing:
            self.free[name] = int(capacity[name]) - int(held.get(name) or 0)

    def try_acquire(self, task_id: int, uses: Sequence[Mapping[str, Any]]) -> bool:
        """Take every unit `uses` asks for, or none of them."""
        wanted: dict[str, int] = {}
        for use in uses:
            wanted[str(use["name"])] = wanted.get(str(use["name"]), 0) + int(use.get("weight", 1))
        if not wanted:
            return True
        self._load(set(wanted))
        if any(self.free[name] < weight for name, weight in wanted.items()):
            return False
        for name, weight in wanted.items():
            self.free[name] -= weight
        self.conn.execute(
            insert(semaphore_holds),
            [{"task_id": task_id, "name": n, "weight": w} for n, w in wanted.items()],
        )
        return True


def check_weights(conn: Connection, uses: Sequence[tuple[str, int]]) -> None:
    """Refuse a weight no semaphore could ever grant (an unknown one will have capacity 1)."""
    names = [name for name, _ in uses]
    if not names:
        return
    capacity = dict(
        conn.execute(
            select(semaphores.c.name, semaphores.c.capacity).where(semaphores.c.name.in_(names))
        ).all()
    )
    for name, weight in uses:
        limit = int(capacity.get(name, 1))
        if weight > limit:
            hint = "" if name in capacity else " (it does not exist yet: it would be made with 1)"
            raise InvalidInput(
                f"semaphore {name!r} has capacity {limit}{hint}; a weight of {weight} could never "
                f"be granted: raise it with PUT /api/v1/semaphores/{name}",
                field="semaphores",
            )


def release(conn: Connection, task_id: int) -> None:
    conn.execute(_RELEASE, {"id": task_id})


def has_work(conn: Connection, now: datetime) -> bool:
    """A cheap read: is any task waiting to be claimed?"""
    return conn.execute(_has_work(conn.dialect.name), {"now": now}).first() is not None


def claim(
    conn: Connection, worker: str, now: datetime, *, limit: int = 1, start: bool = True
) -> list[Claimed]:
    """Take up to `limit` tasks, highest priority first, whose semaphores have room.

    With `start` the tasks become EXECUTING at once (the local executor); without,
    they are only dispatched (semaphores held) and a Celery worker starts them.
    """
    claimed: list[Claimed] = []
    ledger = _Ledger(conn, now)
    head = _queue_head(conn.dialect.name)
    seen = 0
    # A short look first (the common case); a long one only when the head of the
    # queue is blocked on semaphores, so tasks behind it are not starved.
    for scan in (max(limit, CLAIM_FIRST_SCAN), CLAIM_SCAN):
        rows = conn.execute(head, {"now": now, "limit": scan - seen, "offset": seen}).all()
        for row in rows:
            if len(claimed) >= limit:
                return claimed
            uses = json.loads(row.semaphores)
            if uses and not ledger.try_acquire(row.id, uses):
                if row.status != TaskStatus.WAIT_MUTEX.value:
                    conn.execute(_MARK_WAITING, {"now": now, "id": row.id})
                continue
            attempt = int(row.attempts) + 1
            take = _TAKE_AND_START if start else _TAKE
            conn.execute(take, {"attempt": attempt, "now": now, "worker": worker, "id": row.id})
            conn.execute(
                _NEW_ATTEMPT,
                {
                    "id": row.id,
                    "attempt": attempt,
                    "worker": worker,
                    "status": (TaskStatus.EXECUTING if start else TaskStatus.ENQUEUED).value,
                    "started": now if start else None,
                },
            )
            claimed.append(
                Claimed(
                    id=int(row.id),
                    attempt=attempt,
                    type=row.type,
                    params=json.loads(row.params),
                    kill_timeout=row.kill_timeout,
                )
            )
        seen += len(rows)
        if claimed or len(rows) < scan:
            break
    return claimed


def start(
    conn: Connection, task_id: int, attempt: int, worker: str, now: datetime
) -> Claimed | None:
    """A dispatched attempt begins on a worker; None if it is stale (already run or reaped)."""
    values = {"id": task_id, "attempt": attempt, "worker": worker, "now": now}
    if conn.execute(_START, values).rowcount != 1:
        return None
    conn.execute(_START_ATTEMPT, values)
    row = conn.execute(_STARTED, {"id": task_id}).one()
    return Claimed(
        id=task_id,
        attempt=attempt,
        type=row.type,
        params=json.loads(row.params),
        kill_timeout=row.kill_timeout,
    )


def heartbeat(conn: Connection, task_id: int, attempt: int, now: datetime) -> bool:
    """Record a sign of life; True when someone asked to stop the task."""
    conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.attempts == attempt,
            tasks.c.status == TaskStatus.EXECUTING.value,
        )
        .values(heartbeat=now)
    )
    row = conn.execute(
        select(tasks.c.stop_requested, tasks.c.status, tasks.c.attempts).where(
            tasks.c.id == task_id
        )
    ).one()
    # A task reaped or restarted meanwhile is no longer ours: stop too.
    return (
        bool(row.stop_requested)
        or row.status != TaskStatus.EXECUTING.value
        or row.attempts != attempt
    )


def append_log(conn: Connection, task_id: int, attempt: int, chunk: int, text: str) -> None:
    conn.execute(insert(task_logs).values(task_id=task_id, attempt=attempt, chunk=chunk, text=text))


def read_log(conn: Connection, task_id: int, attempt: int | None = None) -> tuple[int, str]:
    """(attempt, its whole log); the latest attempt unless one is asked for."""
    if attempt is None:
        attempt = int(
            conn.execute(
                select(func.coalesce(func.max(task_attempts.c.attempt), 0)).where(
                    task_attempts.c.task_id == task_id
                )
            ).scalar_one()
        )
    rows = conn.execute(
        select(task_logs.c.text)
        .where(task_logs.c.task_id == task_id, task_logs.c.attempt == attempt)
        .order_by(task_logs.c.chunk)
    ).scalars()
    return attempt, "".join(rows)


def attempts(conn: Connection, task_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(task_attempts)
        .where(task_attempts.c.task_id == task_id)
        .order_by(task_attempts.c.attempt)
    )
    return [dict(r._mapping) for r in rows]


def backoff_seconds(attempt: int) -> float:
    return float(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1)))


def _status_event(
    task: Any, status: TaskStatus, events: StatusEvents, now: datetime
) -> event_store.NewEvent:
    params: dict[str, Any] = {}
    for key, value in list(json.loads(task.params).items())[:MAX_PARAMS_IN_EVENT]:
        if value is None or isinstance(value, str | int | float | bool):
            params[key] = value
    params.update(
        taskType=task.type,
        taskStatus=status.value,
        taskId=str(task.id),
        environment=events.environment,
    )
    return event_store.NewEvent(
        name=events.name,
        params=params,
        created=now,
        author=task.author,
        source_type="task",
        source=str(task.id),
    )


def _emit(
    conn: Connection, task: Any, status: TaskStatus, events: StatusEvents, now: datetime
) -> int:
    (seq,) = event_store.insert_events(conn, [_status_event(task, status, events, now)])
    conn.execute(_LINK_EVENT, {"id": task.id, "seq": seq})
    return seq


def finish(
    conn: Connection,
    task_id: int,
    attempt: int,
    outcome: Outcome,
    events: StatusEvents,
    now: datetime,
) -> TaskStatus | None:
    """End attempt `attempt`: retry it, or make the task terminal and report it as an event.

    Returns the task's new status, or None when the attempt was no longer current.
    """
    row = conn.execute(_ACTIVE_TASK, {"id": task_id, "attempt": attempt}).first()
    if row is None:
        return None
    release(conn, task_id)
    conn.execute(
        _END_ATTEMPT,
        {
            "status": outcome.status.value,
            "now": now,
            "error": outcome.error,
            "id": task_id,
            "attempt": attempt,
        },
    )
    retry = (
        outcome.status in (TaskStatus.FAILURE, TaskStatus.EXCEPTION)
        and attempt <= int(row.max_retries)
        and not row.stop_requested
    )
    output = None if outcome.output is None else json.dumps(outcome.output, default=str)
    if retry:
        conn.execute(
            _RETRY,
            {
                "not_before": now + timedelta(seconds=backoff_seconds(attempt)),
                "now": now,
                "error": outcome.error,
                "output": output,
                "id": task_id,
            },
        )
        return TaskStatus.ENQUEUED
    conn.execute(
        _END,
        {
            "status": outcome.status.value,
            "now": now,
            "output": output,
            "error": outcome.error,
            "id": task_id,
        },
    )
    _emit(conn, row, outcome.status, events, now)
    return outcome.status


def reap(
    conn: Connection,
    now: datetime,
    *,
    heartbeat_timeout_seconds: float,
    events: StatusEvents,
    worker: str | None = None,
) -> list[int]:
    """End attempts whose worker stopped beating (or, with `worker`, that worker's at once)."""
    stale = now - timedelta(seconds=heartbeat_timeout_seconds)
    # Only started attempts beat; a dispatched one waiting in a broker queue is not lost.
    cond = tasks.c.status == TaskStatus.EXECUTING.value
    cond = cond & (tasks.c.worker == worker if worker is not None else tasks.c.heartbeat < stale)
    rows = conn.execute(
        _locked(
            conn,
            select(tasks.c.id, tasks.c.attempts, tasks.c.heartbeat, tasks.c.worker).where(cond),
        )
    ).all()
    reaped = []
    for row in rows:
        seen = "" if row.heartbeat is None else f" (last heartbeat {row.heartbeat})"
        error = f"worker {row.worker} was lost{seen}; the attempt was abandoned"
        if finish(
            conn,
            row.id,
            row.attempts,
            Outcome(status=TaskStatus.EXCEPTION, error=error),
            events,
            now,
        ):
            reaped.append(int(row.id))
    return reaped


def request_stop(
    conn: Connection, task_id: int, events: StatusEvents, now: datetime
) -> TaskStatus | None:
    """Stop a task: at once if no worker holds it, else ask its worker. None if it has ended."""
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    if row is None or TaskStatus(row.status) not in ACTIVE:
        return None
    if row.dispatched is None:
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(
                status=TaskStatus.STOPPED.value,
                finished=now,
                updated=now,
                stop_requested=True,
                error="stopped before it started",
            )
        )
        _emit(conn, row, TaskStatus.STOPPED, events, now)
        return TaskStatus.STOPPED
    conn.execute(
        update(tasks).where(tasks.c.id == task_id).values(stop_requested=True, updated=now)
    )
    return TaskStatus(row.status)


def restart(conn: Connection, task_id: int, now: datetime) -> bool:
    """Queue a finished task again as a new attempt (its earlier attempts are kept)."""
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in([s.value for s in ACTIVE]))
        .values(
            status=TaskStatus.ENQUEUED.value,
            finished=None,
            started=None,
            dispatched=None,
            worker=None,
            heartbeat=None,
            not_before=None,
            stop_requested=False,
            updated=now,
            error=None,
            output=None,
        )
    )
    return result.rowcount == 1


def unstarted_dispatches(
    conn: Connection, older_than: datetime, limit: int = 500
) -> list[tuple[int, int]]:
    """(task id, attempt) sent to a broker before `older_than` and not started yet.

    Sending their message again is safe: `start` lets only one delivery run.
    """
    rows = conn.execute(
        select(tasks.c.id, tasks.c.attempts)
        .where(
            tasks.c.status == TaskStatus.ENQUEUED.value,
            tasks.c.dispatched.is_not(None),
            tasks.c.dispatched < older_than,
        )
        .order_by(tasks.c.priority.desc(), tasks.c.id)
        .limit(limit)
    ).all()
    return [(int(i), int(a)) for i, a in rows]


def undo_dispatch(conn: Connection, task_id: int, attempt: int, now: datetime) -> None:
    """The message could not be sent: give the claim back as if it never happened."""
    result = conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.attempts == attempt,
            tasks.c.status == TaskStatus.ENQUEUED.value,
        )
        .values(dispatched=None, worker=None, heartbeat=None, attempts=attempt - 1, updated=now)
    )
    if result.rowcount == 1:
        release(conn, task_id)
        conn.execute(
            delete(task_attempts).where(
                task_attempts.c.task_id == task_id, task_attempts.c.attempt == attempt
            )
        )
