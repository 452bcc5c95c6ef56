"""Store functions for the fleet: the workers that announced themselves, and their beats.

A worker process writes its row when it starts (`announce`), refreshes `last_seen` while
it lives (`beat`) and sets `stopped` when it stops cleanly (`depart`). Whether it is
`live` or `gone` is decided by the reader from `stopped` and `last_seen` (a killed worker
writes nothing). Local workers get a new name each time the supervisor restarts one, so
the rows of workers gone for `KEEP_GONE` are pruned when another announces itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from stepd.domain.tasks import TaskStatus
from stepd.store.schema import tasks, workers
from stepd.timeutil import as_utc

KEEP_GONE = timedelta(days=1)  # a gone worker stays listed this long (for its story)


@dataclass(frozen=True, kw_only=True)
class WorkerRow:
    """A worker as announced, with what the store knows of it since."""

    name: str
    host: str
    pid: int
    executor: str
    version: str
    queue: str | None
    task_types: list[dict[str, Any]]  # TaskType.describe() of each type it runs
    started: datetime
    last_seen: datetime
    stopped: datetime | None


def announce(conn: Connection, row: WorkerRow) -> None:
    """Write `row` (replacing a row of the same name) and prune long-gone workers."""
    conn.execute(delete(workers).where(workers.c.name == row.name))
    conn.execute(delete(workers).where(workers.c.last_seen < row.started - KEEP_GONE))
    conn.execute(
        insert(workers).values(
            name=row.name,
            host=row.host,
            pid=row.pid,
            executor=row.executor,
            version=row.version,
            queue=row.queue,
            task_types=json.dumps(row.task_types, separators=(",", ":"), sort_keys=True),
            started=row.started,
            last_seen=row.last_seen,
            stopped=row.stopped,
        )
    )


def beat(conn: Connection, name: str, now: datetime) -> bool:
    """Refresh `name`'s `last_seen`; False when it has no row (pruned, or the store was
    restored from a backup): the caller announces itself again."""
    done = conn.execute(
        update(workers).where(workers.c.name == name).values(last_seen=now, stopped=None)
    )
    return done.rowcount > 0


def depart(conn: Connection, name: str, now: datetime) -> None:
    conn.execute(update(workers).where(workers.c.name == name).values(stopped=now, last_seen=now))


def _row(r: Any) -> WorkerRow:
    return WorkerRow(
        name=r.name,
        host=r.host,
        pid=int(r.pid),
        executor=r.executor,
        version=r.version,
        queue=r.queue,
        task_types=json.loads(r.task_types),
        started=as_utc(r.started),
        last_seen=as_utc(r.last_seen),
        stopped=None if r.stopped is None else as_utc(r.stopped),
    )


def list_workers(conn: Connection, *, seen_since: datetime | None = None) -> list[WorkerRow]:
    """Every worker (seen since `seen_since`, when given), the most recently started first."""
    stmt = select(workers)
    if seen_since is not None:
        stmt = stmt.where(workers.c.last_seen >= seen_since)
    stmt = stmt.order_by(workers.c.started.desc(), workers.c.name)
    return [_row(r) for r in conn.execute(stmt)]


def get_worker(conn: Connection, name: str) -> WorkerRow | None:
    r = conn.execute(select(workers).where(workers.c.name == name)).first()
    return None if r is None else _row(r)


def running(conn: Connection) -> dict[str, list[tuple[int, str, int]]]:
    """The running attempts (task id, type, attempt) by the name of the worker that runs
    them: an index range (EXECUTING tasks are few, however long the history)."""
    stmt = (
        select(tasks.c.id, tasks.c.type, tasks.c.attempts, tasks.c.worker)
        .where(tasks.c.status == TaskStatus.EXECUTING.value)
        .order_by(tasks.c.id)
    )
    found: dict[str, list[tuple[int, str, int]]] = {}
    for r in conn.execute(stmt):
        if r.worker is not None:
            found.setdefault(r.worker, []).append((int(r.id), r.type, int(r.attempts)))
    return found


def waiting(conn: Connection, limit: int = 1000) -> dict[str, tuple[int, datetime]]:
    """The oldest `limit` ENQUEUED tasks by type: (how many, the oldest one's `created`);
    a range of the status index, however long the history."""
    stmt = (
        select(tasks.c.type, tasks.c.created)
        .where(tasks.c.status == TaskStatus.ENQUEUED.value)
        .order_by(tasks.c.id)
        .limit(limit)
    )
    found: dict[str, tuple[int, datetime]] = {}
    for r in conn.execute(stmt):
        count, oldest = found.get(r.type, (0, as_utc(r.created)))
        found[r.type] = (count + 1, min(oldest, as_utc(r.created)))
    return found
