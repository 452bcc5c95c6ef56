"""Who holds a semaphore and who waits for it: the semaphores page's and
`GET /api/v1/semaphores/{name}`'s detail.

Both reads are bounded, whatever the size of the queue: the holders by the rows of
`semaphore_holds` (one per running task and semaphore, so at most the capacities' sum),
read up to HOLDS_SCAN; the waiters among the first WAITING_SCAN tasks in WAIT_MUTEX, in the
order a claim would take them (priority, then age), of which the first few are kept by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, select

from stepd.domain.tasks import TaskStatus
from stepd.store.schema import semaphore_holds, tasks
from stepd.timeutil import as_utc

HOLDS_SCAN = 10_000  # hold rows read at most (a page names the first SHOWN of each)
WAITING_SCAN = 10_000  # waiting tasks looked at at most (beyond: "at least")
SHOWN = 10  # holders and waiters named per semaphore


@dataclass(frozen=True, kw_only=True)
class Holder:
    """A task that holds units of a semaphore."""

    task_id: int
    type: str
    status: str  # EXECUTING, or ENQUEUED while a broker's worker has yet to start it
    weight: int  # the units it holds
    since: datetime | None  # when it took them (its dispatch)


@dataclass(frozen=True, kw_only=True)
class Waiter:
    """A task in WAIT_MUTEX that wants units of a semaphore."""

    task_id: int
    type: str
    priority: int
    created: datetime


@dataclass(kw_only=True)
class Use:
    """One semaphore's holders and waiters."""

    holders: list[Holder] = field(default_factory=list)  # the first SHOWN, by task id
    holder_count: int = 0
    waiters: list[Waiter] = field(default_factory=list)  # the first SHOWN in claim order
    waiting: int = 0  # how many wait (among the first WAITING_SCAN)
    waiting_at_least: bool = False  # the scan stopped: there may be more


def use(conn: Connection, name: str | None = None) -> dict[str, Use]:
    """Semaphore name -> its holders and waiters (only `name`'s, when given); a semaphore
    nobody holds or waits for is absent."""
    found: dict[str, Use] = {}
    holds = (
        select(
            semaphore_holds.c.name,
            semaphore_holds.c.task_id,
            semaphore_holds.c.weight,
            tasks.c.type,
            tasks.c.status,
            tasks.c.dispatched,
        )
        .select_from(semaphore_holds.join(tasks, tasks.c.id == semaphore_holds.c.task_id))
        .order_by(semaphore_holds.c.name, semaphore_holds.c.task_id)
        .limit(HOLDS_SCAN)
    )
    if name is not None:
        holds = holds.where(semaphore_holds.c.name == name)
    for row in conn.execute(holds):
        entry = found.setdefault(row.name, Use())
        entry.holder_count += 1
        if len(entry.holders) < SHOWN:
            entry.holders.append(
                Holder(
                    task_id=int(row.task_id),
                    type=row.type,
                    status=row.status,
                    weight=int(row.weight),
                    since=None if row.dispatched is None else as_utc(row.dispatched),
                )
            )
    waiting = (
        select(tasks.c.id, tasks.c.type, tasks.c.priority, tasks.c.created, tasks.c.semaphores)
        .where(tasks.c.status == TaskStatus.WAIT_MUTEX.value)
        .order_by(tasks.c.priority.desc(), tasks.c.id)
        .limit(WAITING_SCAN)
    )
    rows = conn.execute(waiting).all()
    for w in rows:
        for wanted in {str(u.get("name")) for u in json.loads(w.semaphores or "[]")}:
            if name is not None and wanted != name:
                continue
            entry = found.setdefault(wanted, Use())
            entry.waiting += 1
            if len(entry.waiters) < SHOWN:
                entry.waiters.append(
                    Waiter(
                        task_id=int(w.id),
                        type=w.type,
                        priority=int(w.priority),
                        created=as_utc(w.created),
                    )
                )
    if len(rows) >= WAITING_SCAN:
        for entry in found.values():
            entry.waiting_at_least = entry.waiting > 0
    return found
