"""Store functions for cron schedules (`schedules`): one row each, with its next tick.

Emitting a tick is exactly once because of how `next_tick` moves: a round takes the row
with `take_due` (on PostgreSQL `FOR UPDATE SKIP LOCKED`: a second server skips a row the
first one holds instead of waiting and emitting it again; SQLite's writers take turns
anyway), stores the tick's event in the same transaction, and `advance`s `next_tick` only
from the value it read (a conditional UPDATE). Whatever commits first wins; the other
transaction sees `next_tick` moved on and emits nothing. A restart loses nothing either:
the row says which tick is next.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from stepd.domain.schedules import Schedule, ScheduleSpec
from stepd.store.schema import schedules
from stepd.timeutil import as_utc


def _row(r: Any) -> Schedule:
    return Schedule(
        spec=ScheduleSpec(
            name=r.name,
            cron=r.cron,
            timezone=r.timezone,
            params=json.loads(r.params),
            enabled=bool(r.enabled),
            catch_up=int(r.catch_up),
        ),
        uid=r.uid,
        author=r.author,
        created=as_utc(r.created),
        updated=as_utc(r.updated),
        next_tick=as_utc(r.next_tick),
        last_tick=None if r.last_tick is None else as_utc(r.last_tick),
    )


def _spec_values(spec: ScheduleSpec) -> dict[str, object]:
    return {
        "cron": spec.cron,
        "timezone": spec.timezone,
        "params": json.dumps(dict(spec.params), separators=(",", ":"), sort_keys=True),
        "enabled": spec.enabled,
        "catch_up": spec.catch_up,
    }


def insert_schedule(conn: Connection, schedule: Schedule) -> None:
    conn.execute(
        insert(schedules).values(
            name=schedule.name,
            uid=schedule.uid,
            author=schedule.author,
            created=schedule.created,
            updated=schedule.updated,
            next_tick=schedule.next_tick,
            last_tick=schedule.last_tick,
            **_spec_values(schedule.spec),
        )
    )


def replace_spec(conn: Connection, schedule: Schedule) -> None:
    """Write `schedule`'s spec, `updated` and `next_tick` (the caller holds its row)."""
    conn.execute(
        update(schedules)
        .where(schedules.c.name == schedule.name, schedules.c.uid == schedule.uid)
        .values(
            updated=schedule.updated, next_tick=schedule.next_tick, **_spec_values(schedule.spec)
        )
    )


def delete_schedule(conn: Connection, name: str) -> None:
    conn.execute(delete(schedules).where(schedules.c.name == name))


def get_schedule(conn: Connection, name: str, *, lock: bool = False) -> Schedule | None:
    """`lock`: keep the row locked for the rest of the write transaction (PostgreSQL; a
    change waits for a round that holds it, and a round skips it meanwhile)."""
    stmt = select(schedules).where(schedules.c.name == name)
    if lock:
        stmt = stmt.with_for_update()
    r = conn.execute(stmt).first()
    return None if r is None else _row(r)


def list_schedules(conn: Connection) -> list[Schedule]:
    return [_row(r) for r in conn.execute(select(schedules).order_by(schedules.c.name))]


def count(conn: Connection) -> int:
    """How many schedules there are; on PostgreSQL creates take turns from here to the
    end of the caller's transaction, so that two racing creates cannot both pass a bound
    on this count (SQLite's writers take turns anyway). A round's UPDATE waits for them."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE schedules IN SHARE ROW EXCLUSIVE MODE"))
    return int(conn.execute(select(func.count()).select_from(schedules)).scalar_one())


def due_names(conn: Connection, now: datetime, limit: int) -> list[str]:
    """The enabled schedules whose next tick is at or before `now`, the most overdue first
    (a range of ix_schedules_next_tick)."""
    stmt = (
        select(schedules.c.name)
        .where(schedules.c.next_tick <= now, schedules.c.enabled.is_(True))
        .order_by(schedules.c.next_tick, schedules.c.name)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def take_due(conn: Connection, name: str, now: datetime) -> Schedule | None:
    """Schedule `name` if it is (still) due at `now`, its row locked for the caller's write
    transaction; None if it is not due, or another server's round holds it (PostgreSQL:
    SKIP LOCKED; the SQLite dialect renders no lock, its writers take turns)."""
    stmt = (
        select(schedules)
        .where(
            schedules.c.name == name,
            schedules.c.next_tick <= now,
            schedules.c.enabled.is_(True),
        )
        .with_for_update(skip_locked=True)
    )
    r = conn.execute(stmt).first()
    return None if r is None else _row(r)


def advance(
    conn: Connection,
    schedule: Schedule,
    next_tick: datetime,
    last_tick: datetime | None,
) -> bool:
    """Move `schedule`'s next tick on from the one it was read with; False if the row has
    changed since (another round emitted it, or it was changed or made again): the caller
    rolls back what it stored for the tick."""
    done = conn.execute(
        update(schedules)
        .where(
            schedules.c.name == schedule.name,
            schedules.c.uid == schedule.uid,
            schedules.c.next_tick == schedule.next_tick,
        )
        .values(
            next_tick=next_tick,
            last_tick=last_tick if last_tick is not None else schedules.c.last_tick,
        )
    )
    return done.rowcount == 1
