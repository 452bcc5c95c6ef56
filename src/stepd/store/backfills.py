"""Store functions for backfills (`backfills`, and the tasks they made: `tasks.backfill_id`).

A backfill is fed exactly once per binding because a feed takes its row (`take`: on
PostgreSQL `FOR UPDATE`, so a second server's feed waits and then sees the first one's
`made`; SQLite's writers take turns anyway), makes the tasks of bindings `made` onwards and
moves `made` on, all in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from stepd.domain.backfills import Backfill, BackfillState
from stepd.domain.tasks import ACTIVE, TaskStatus
from stepd.store.schema import backfills, tasks
from stepd.timeutil import as_utc

_ACTIVE = sorted(status.value for status in ACTIVE)


def _row(r: Any) -> Backfill:
    return Backfill(
        id=int(r.id),
        config_seq=int(r.config_seq),
        params=json.loads(r.params),
        total=int(r.total),
        made=int(r.made),
        max_in_flight=int(r.max_in_flight),
        state=BackfillState(r.state),
        author=r.author,
        request_id=r.request_id,
        created=as_utc(r.created),
        updated=as_utc(r.updated),
        ended=None if r.ended is None else as_utc(r.ended),
        cancelled_by=r.cancelled_by,
        errors=int(r.errors),
        last_error=r.last_error,
    )


def insert_backfill(
    conn: Connection,
    *,
    config_seq: int,
    params: Mapping[str, object],
    total: int,
    max_in_flight: int,
    author: str,
    request_id: str | None,
    now: datetime,
) -> int:
    result = conn.execute(
        insert(backfills)
        .values(
            config_seq=config_seq,
            params=json.dumps(dict(params), separators=(",", ":")),
            total=total,
            made=0,
            max_in_flight=max_in_flight,
            state=BackfillState.RUNNING.value,
            author=author,
            request_id=request_id,
            created=now,
            updated=now,
            errors=0,
        )
        .returning(backfills.c.id)
    )
    return int(result.scalar_one())


def get(conn: Connection, backfill_id: int, *, lock: bool = False) -> Backfill | None:
    """Backfill `backfill_id`; with `lock`, its row stays locked until the caller commits."""
    stmt = select(backfills).where(backfills.c.id == backfill_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    return None if row is None else _row(row)


def by_request_id(conn: Connection, request_id: str) -> Backfill | None:
    row = conn.execute(select(backfills).where(backfills.c.request_id == request_id)).first()
    return None if row is None else _row(row)


def running_ids(conn: Connection, limit: int) -> list[int]:
    """The running backfills, oldest first (what a feed round looks at)."""
    stmt = (
        select(backfills.c.id)
        .where(backfills.c.state == BackfillState.RUNNING.value)
        .order_by(backfills.c.id)
        .limit(limit)
    )
    return [int(i) for i in conn.execute(stmt).scalars()]


def listing(
    conn: Connection,
    *,
    state: BackfillState | None,
    config_seq: int | None,
    limit: int,
    offset: int,
) -> list[Backfill]:
    """Backfills, newest first."""
    stmt = select(backfills)
    if state is not None:
        stmt = stmt.where(backfills.c.state == state.value)
    if config_seq is not None:
        stmt = stmt.where(backfills.c.config_seq == config_seq)
    stmt = stmt.order_by(backfills.c.id.desc()).limit(limit).offset(offset)
    return [_row(r) for r in conn.execute(stmt)]


def active_count(conn: Connection, backfill_id: int) -> int:
    """How many of its tasks are active (queued, waiting on a semaphore, running)."""
    stmt = select(func.count()).where(
        tasks.c.backfill_id == backfill_id, tasks.c.status.in_(_ACTIVE)
    )
    return int(conn.execute(stmt).scalar_one())


def status_counts(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per backfill, how many of its tasks are in each status."""
    wanted = list(ids)
    found: dict[int, dict[str, int]] = {i: {} for i in wanted}
    if not wanted:
        return found
    stmt = (
        select(tasks.c.backfill_id, tasks.c.status, func.count())
        .where(tasks.c.backfill_id.in_(wanted))
        .group_by(tasks.c.backfill_id, tasks.c.status)
    )
    for backfill_id, status, count in conn.execute(stmt):
        found[int(backfill_id)][str(status)] = int(count)
    return found


def queued_task_ids(conn: Connection, backfill_id: int) -> list[int]:
    """Its tasks no worker has taken yet (what a cancel stops)."""
    stmt = (
        select(tasks.c.id)
        .where(
            tasks.c.backfill_id == backfill_id,
            tasks.c.status.in_([TaskStatus.ENQUEUED.value, TaskStatus.WAIT_MUTEX.value]),
            tasks.c.dispatched.is_(None),
        )
        .order_by(tasks.c.id)
    )
    return [int(i) for i in conn.execute(stmt).scalars()]


def task_ids(conn: Connection, backfill_id: int, *, limit: int, offset: int) -> list[int]:
    stmt = (
        select(tasks.c.id)
        .where(tasks.c.backfill_id == backfill_id)
        .order_by(tasks.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [int(i) for i in conn.execute(stmt).scalars()]


def advance(
    conn: Connection,
    backfill: Backfill,
    *,
    made: int,
    errors: int,
    last_error: str | None,
    state: BackfillState,
    now: datetime,
    cancelled_by: str | None = None,
) -> None:
    """Write how far `backfill` got (the caller holds its row, see `get(lock=True)`)."""
    conn.execute(
        update(backfills)
        .where(backfills.c.id == backfill.id)
        .values(
            made=made,
            errors=errors,
            last_error=last_error,
            state=state.value,
            updated=now,
            ended=None if state is BackfillState.RUNNING else now,
            cancelled_by=cancelled_by,
        )
    )
