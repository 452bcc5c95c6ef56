"""Store functions of the runner: claim by priority and semaphores, start, finish, retry, reap.

What an attempt's end means (retry or end, the backoff, the status event, the holds
to give back) is decided in `stepd.domain.lifecycle`; these functions read the task,
ask `lifecycle.decide`, and apply its `Transition` in the caller's transaction.
Every transition is one guarded UPDATE (`WHERE status = ... AND attempts = ...`),
so a stale worker (reaped, or a redelivered message) can never overwrite a newer
state, and semaphore holds are inserted and deleted in the same transaction as
the status they belong to: release cannot be forgotten, whatever ends the task.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Row

from stepd.domain import lifecycle
from stepd.domain.lifecycle import Outcome as Outcome  # re-exported: the runner's vocabulary
from stepd.domain.lifecycle import StatusEvents as StatusEvents
from stepd.domain.lifecycle import backoff_seconds as backoff_seconds
from stepd.domain.tasks import ACTIVE, TaskStatus
from stepd.errors import InvalidInput
from stepd.store import dbapi, deployment, queries
from stepd.store import events as event_store
from stepd.store.schema import semaphore_holds, semaphores, task_attempts, task_logs, tasks

CLAIM_FIRST_SCAN = 20
CLAIM_SCAN = 500  # queued tasks looked at per claim (those waiting on a semaphore are skipped)


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A task a worker now holds: run attempt `attempt` of it."""

    id: int
    attempt: int
    type: str
    params: Mapping[str, Any]
    kill_timeout: int | None


# The hot path of every task (claim, start, finish) runs on the driver's cursor
# (store/dbapi.py): a SQLAlchemy statement costs 60-90 us of Python per execution,
# several times what SQLite spends on these. Its statements are named queries in
# sql/runs.sql, bound by name.
_Q = queries.load("runs")


def _per_driver(name: str) -> dict[bool, queries.Query]:
    """The two texts of a statement that differs by database, by `dbapi.Raw.sqlite`."""
    return {True: _Q[f"{name}_sqlite"], False: _Q[f"{name}_postgres"]}


_HAS_WORK = _per_driver("has_work")
_QUEUE_HEAD = _per_driver("queue_head")
# The same, among the task types a worker runs: a worker claims only what it can run.
_HAS_WORK_TYPED = _per_driver("has_work_typed")
_QUEUE_HEAD_TYPED = _per_driver("queue_head_typed")
_TAKE_AND_START = _per_driver("take_and_start")
_TAKE = _per_driver("take")
_START = _per_driver("start")
_MARK_WAITING = _Q["mark_waiting"]
_NEW_ATTEMPT = _Q["new_attempt"]
_START_ATTEMPT = _Q["start_attempt"]
_STARTED = _Q["started"]
_ACTIVE_TASK = _Q["active_task"]
_RELEASE = _Q["release"]
_END_ATTEMPT = _Q["end_attempt"]
_RETRY = _Q["retry"]
_END = _Q["end"]
_LINK_EVENT = _Q["link_event"]

# Heartbeats are written and judged by the database's clock, never a host's (see
# sql/runs.sql, whose statements write them with the same two expressions): for the
# SQLAlchemy statements below (heartbeat, reap).
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"
_PG_NOW = "clock_timestamp()"


def _db_now(sqlite: bool) -> str:
    """The database's current time as SQL, in the form a DateTime column stores."""
    return _SQLITE_NOW if sqlite else _PG_NOW


def _db_time_ago(conn: Connection, seconds: float) -> ColumnElement[Any]:
    """The database's time `seconds` ago, to compare stored heartbeats with."""
    if conn.dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", "now", f"{-float(seconds)} seconds").op("||")(
            literal("000")
        )
    return func.clock_timestamp() - timedelta(seconds=seconds)


def _locked(conn: Connection, stmt: Any) -> Any:
    # PostgreSQL: rows another claimer holds are skipped, not waited for.
    return stmt.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else stmt


def ensure_semaphores(
    conn: Connection,
    names: Sequence[str],
    now: datetime,
    capacities: Mapping[str, int] | None = None,
) -> None:
    """Semaphores are made on first use with capacity 1 (the Sandbox default), or the
    `capacity` the config's entry gives (`capacities`, by name)."""
    existing = set(
        conn.execute(select(semaphores.c.name).where(semaphores.c.name.in_(names))).scalars()
    )
    for name in sorted(set(names) - existing):
        capacity = (capacities or {}).get(name, 1)
        dialect = conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(
                pg_insert(semaphores)
                .values(name=name, capacity=capacity, auto=True, updated=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
        else:
            conn.execute(
                insert(semaphores).values(name=name, capacity=capacity, auto=True, updated=now)
            )


def semaphore_owner(conn: Connection, name: str) -> Row[tuple[str | None]] | None:
    """Semaphore `name`'s (owner,) row, or None, kept for the caller's write transaction:
    on PostgreSQL the row stays locked until it ends, so two first claims take turns
    (SQLite's writers already do)."""
    stmt = select(semaphores.c.owner).where(semaphores.c.name == name)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


class _Ledger:
    """Semaphore capacity and use, read once per claim and kept current as it grants."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.free: dict[str, int] = {}  # name -> units still available

    def _load(self, names: set[str], capacities: Mapping[str, int]) -> None:
        missing = sorted(names - set(self.free))
        if not missing:
            return
        ensure_semaphores(self.conn, missing, self.now, capacities)
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
        capacities: dict[str, int] = {}
        for use in uses:
            wanted[str(use["name"])] = wanted.get(str(use["name"]), 0) + int(use.get("weight", 1))
            if use.get("capacity") is not None:
                capacities[str(use["name"])] = int(use["capacity"])
        if not wanted:
            return True
        self._load(set(wanted), capacities)
        if any(self.free[name] < weight for name, weight in wanted.items()):
            return False
        for name, weight in wanted.items():
            self.free[name] -= weight
        self.conn.execute(
            insert(semaphore_holds),
            [{"task_id": task_id, "name": n, "weight": w} for n, w in wanted.items()],
        )
        return True


def check_weights(conn: Connection, uses: Sequence[tuple[Any, ...]]) -> None:
    """Refuse a weight no semaphore could ever grant (an unknown one will have capacity 1,
    or the capacity its entry gives: `uses` of (name, weight) or (name, weight, capacity))."""
    made = {use[0]: int(use[2]) for use in uses if len(use) > 2 and use[2] is not None}
    uses = [(use[0], use[1]) for use in uses]
    names = [name for name, _ in uses]
    if not names:
        return
    capacity = dict(
        conn.execute(
            select(semaphores.c.name, semaphores.c.capacity).where(semaphores.c.name.in_(names))
        ).all()
    )
    for name, weight in uses:
        limit = int(capacity.get(name, made.get(name, 1)))
        if weight > limit:
            hint = (
                ""
                if name in capacity
                else f" (it does not exist yet: it would be made with {limit})"
            )
            raise InvalidInput(
                f"semaphore {name!r} has capacity {limit}{hint}; a weight of {weight} could never "
                f"be granted: raise it with PUT /api/v1/semaphores/{name}",
                field="semaphores",
            )


def release(conn: dbapi.Conn, task_id: int) -> None:
    dbapi.run(conn, _RELEASE, {"task_id": task_id}).close()


def has_work(conn: Connection, now: datetime, *, types: Collection[str] | None = None) -> bool:
    """A cheap read: is any task waiting to be claimed (of one of `types`, when given)?"""
    r = dbapi.raw(conn)
    params: dict[str, object] = {"now": dbapi.time_param(r, now)}
    if types is None:
        query = _HAS_WORK[r.sqlite]
    else:
        query = _HAS_WORK_TYPED[r.sqlite]
        params["types"] = json.dumps(sorted(types))
    cur = dbapi.run(r, query, params)
    found = cur.fetchone() is not None
    cur.close()
    return found


def claim(
    conn: Connection,
    worker: str,
    now: datetime,
    *,
    limit: int = 1,
    start: bool = True,
    types: Collection[str] | None = None,
) -> list[Claimed]:
    """Take up to `limit` tasks, highest priority first, whose semaphores have room (and
    whose type is one of `types`, when given: what the worker can run).

    With `start` the tasks become EXECUTING at once (the local executor); without,
    they are only dispatched (semaphores held) and a Celery worker starts them.
    """
    claimed: list[Claimed] = []
    ledger = _Ledger(conn, now)
    r = dbapi.raw(conn)
    at = dbapi.time_param(r, now)
    take = (_TAKE_AND_START if start else _TAKE)[r.sqlite]
    status = (TaskStatus.EXECUTING if start else TaskStatus.ENQUEUED).value
    runs_type = (lambda _type: True) if types is None else frozenset(types).__contains__
    seen = 0
    # A short look first (the common case); a long one only when nothing in the head could
    # be taken (semaphores, or types this worker does not run), so tasks behind are not
    # starved. On SQLite the short look reads the queue's head untyped and checks the types
    # here: the typed statement cost a tenth of a worker's no-op throughput. PostgreSQL
    # filters in the statement, which must not lock (FOR UPDATE) rows of other types.
    for scan in (max(limit, CLAIM_FIRST_SCAN), CLAIM_SCAN):
        if types is not None and (seen or not r.sqlite):
            head = _QUEUE_HEAD_TYPED[r.sqlite]
            bound = {"now": at, "scan": scan, "skip": 0, "types": json.dumps(sorted(types))}
        else:
            head = _QUEUE_HEAD[r.sqlite]
            bound = {"now": at, "scan": scan - seen, "skip": seen}
        cur = dbapi.run(r, head, bound)
        rows = cur.fetchall()
        cur.close()
        for task_id, task_status, uses_json, attempts, type_, params, kill_timeout in rows:
            if len(claimed) >= limit:
                return claimed
            if not runs_type(type_):
                continue
            uses = json.loads(uses_json)
            if uses and not ledger.try_acquire(task_id, uses):
                if task_status != TaskStatus.WAIT_MUTEX.value:
                    dbapi.run(r, _MARK_WAITING, {"now": at, "task_id": task_id}).close()
                continue
            attempt = int(attempts) + 1
            dbapi.run(
                r, take, {"attempt": attempt, "worker": worker, "now": at, "task_id": task_id}
            ).close()
            new_attempt = {
                "task_id": task_id,
                "attempt": attempt,
                "worker": worker,
                "status": status,
                "started": at if start else None,
            }
            dbapi.run(r, _NEW_ATTEMPT, new_attempt).close()
            claimed.append(
                Claimed(
                    id=int(task_id),
                    attempt=attempt,
                    type=type_,
                    params=json.loads(params),
                    kill_timeout=kill_timeout,
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
    r = dbapi.raw(conn)
    at = dbapi.time_param(r, now)
    bound = {"now": at, "worker": worker, "task_id": task_id, "attempt": attempt}
    cur = dbapi.run(r, _START[r.sqlite], bound)
    started = cur.rowcount == 1
    cur.close()
    if not started:
        return None
    dbapi.run(r, _START_ATTEMPT, bound).close()
    cur = dbapi.run(r, _STARTED, bound)
    type_, params, kill_timeout = cur.fetchone()
    cur.close()
    return Claimed(
        id=task_id,
        attempt=attempt,
        type=type_,
        params=json.loads(params),
        kill_timeout=kill_timeout,
    )


def heartbeat(conn: Connection, task_id: int, attempt: int) -> bool:
    """Record a sign of life, at the database's time; True when someone asked to stop the task."""
    conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.attempts == attempt,
            tasks.c.status == TaskStatus.EXECUTING.value,
        )
        .values(heartbeat=literal_column(_db_now(conn.dialect.name == "sqlite")))
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


@lru_cache(maxsize=16)
def _policy(events: StatusEvents) -> lifecycle.Policy:
    # One per deployment's StatusEvents: not rebuilt on every attempt's end.
    return lifecycle.Policy(events=events)


def _emit(conn: Connection, task_id: int, event: lifecycle.StatusEvent, now: datetime) -> int:
    new = event_store.NewEvent(
        name=event.name,
        params=event.params,
        created=now,
        author=event.author,
        source_type="task",
        source=event.source,
    )
    (seq,) = event_store.insert_events(conn, [new])
    dbapi.run(conn, _LINK_EVENT, {"task_id": task_id, "event_seq": seq}).close()
    return seq


def finish(
    conn: Connection,
    task_id: int,
    attempt: int,
    outcome: Outcome,
    events: StatusEvents,
    now: datetime,
    *,
    own_event: str | None = None,
) -> TaskStatus | None:
    """End attempt `attempt` as `lifecycle.decide` says: retry it, or end the task and report it.

    The status event is named `own_event` (the task type's own, when it names one), else as
    the deployment stores it, else as `events` says. Returns the task's new status, or None
    when the attempt was no longer current.
    """
    r = dbapi.raw(conn)
    cur = dbapi.run(r, _ACTIVE_TASK, {"task_id": task_id, "attempt": attempt})
    found = cur.fetchone()
    cur.close()
    if found is None:
        return None
    type_, params, author, status, max_retries, stop_requested = found
    task = lifecycle.TaskState(
        id=task_id,
        type=type_,
        params=json.loads(params),
        author=author,
        status=TaskStatus(status),
        attempt=attempt,
        max_retries=int(max_retries),
        stop_requested=bool(stop_requested),
        held=True,
    )
    # The deployment's stored names win over this process's own (store/deployment.py).
    events = deployment.status_events(r, events)
    if own_event is not None:
        events = StatusEvents(name=own_event, environment=events.environment)
    t = lifecycle.decide(task, outcome, _policy(events))
    at = dbapi.time_param(r, now)
    if t.release_holds:
        release(r, task_id)
    if t.attempt_status is not None:
        ended = {
            "status": t.attempt_status.value,
            "now": at,
            "error": t.error,
            "task_id": task_id,
            "attempt": attempt,
        }
        dbapi.run(r, _END_ATTEMPT, ended).close()
    output = None if t.output is None else json.dumps(t.output, default=str)
    row: dict[str, object] = {"task_id": task_id, "now": at, "error": t.error, "output": output}
    if t.retry_after_seconds is not None:
        row["not_before"] = dbapi.time_param(r, now + timedelta(seconds=t.retry_after_seconds))
        dbapi.run(r, _RETRY, row).close()
    else:
        row["status"] = t.status.value
        dbapi.run(r, _END, row).close()
    if t.event is not None:
        _emit(conn, task_id, t.event, now)
    return t.status


def reap(
    conn: Connection,
    now: datetime,
    *,
    heartbeat_timeout_seconds: float,
    events: StatusEvents,
    worker: str | None = None,
) -> list[int]:
    """End attempts whose worker stopped beating (or, with `worker`, that worker's at once).

    "Stopped beating" is judged by the database's clock, as heartbeats are written by it:
    `now` (this host's) only stamps the attempts' ends.
    """
    stale = _db_time_ago(conn, heartbeat_timeout_seconds)
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
        outcome = lifecycle.worker_lost(row.worker, row.heartbeat)
        if finish(conn, row.id, row.attempts, outcome, events, now):
            reaped.append(int(row.id))
    return reaped


def request_stop(
    conn: Connection, task_id: int, events: StatusEvents, now: datetime
) -> TaskStatus | None:
    """Stop a task: at once if no worker holds it, else ask its worker. None if it has ended."""
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    if row is None or TaskStatus(row.status) not in ACTIVE:
        return None
    task = lifecycle.TaskState(
        id=task_id,
        type=row.type,
        params=json.loads(row.params),
        author=row.author,
        status=TaskStatus(row.status),
        attempt=int(row.attempts),
        max_retries=int(row.max_retries),
        stop_requested=bool(row.stop_requested),
        held=row.dispatched is not None,
    )
    t = lifecycle.stop(task, _policy(deployment.status_events(conn, events)))
    if t is not None:
        # No attempt runs: the task's row alone changes (its output stays).
        if t.release_holds:
            release(conn, task_id)
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(
                status=t.status.value,
                finished=now,
                updated=now,
                stop_requested=True,
                error=t.error,
            )
        )
        if t.event is not None:
            _emit(conn, task_id, t.event, now)
        return t.status
    conn.execute(
        update(tasks).where(tasks.c.id == task_id).values(stop_requested=True, updated=now)
    )
    return TaskStatus(row.status)


def restart(
    conn: Connection,
    task_id: int,
    now: datetime,
    *,
    params: Mapping[str, object] | None = None,
    old_params: Mapping[str, object] | None = None,
) -> bool:
    """Queue a finished task again as a new attempt (its earlier attempts are kept).

    With `params`, the new attempt runs with those instead of `old_params` (the task's
    params until now), which its earlier attempts keep in their own `params`.
    """
    changed = {} if params is None else {"params": json.dumps(dict(params))}
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in([s.value for s in ACTIVE]))
        .values(
            **changed,
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
    if result.rowcount != 1:
        return False
    if params is not None and old_params is not None:
        # Attempts without params of their own ran with the task's params until now.
        conn.execute(
            update(task_attempts)
            .where(task_attempts.c.task_id == task_id, task_attempts.c.params.is_(None))
            .values(params=json.dumps(dict(old_params)))
        )
    return True


def unstarted_dispatches(
    conn: Connection, older_than: datetime, limit: int = 500
) -> list[tuple[int, int, str]]:
    """(task id, attempt, type) sent to a broker before `older_than` and not started yet.

    Sending their message again is safe: `start` lets only one delivery run.
    """
    rows = conn.execute(
        select(tasks.c.id, tasks.c.attempts, tasks.c.type)
        .where(
            tasks.c.status == TaskStatus.ENQUEUED.value,
            tasks.c.dispatched.is_not(None),
            tasks.c.dispatched < older_than,
        )
        .order_by(tasks.c.priority.desc(), tasks.c.id)
        .limit(limit)
    ).all()
    return [(int(i), int(a), str(t)) for i, a, t in rows]


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
