"""Store functions for retention: read a batch of old rows, delete it with what hangs on
it. Each takes the caller's connection (services/retention.py opens a short write
transaction per batch, or a read for a dry run).

Every delete is by primary key (or the prefix of one), so a batch costs what its rows
cost and never walks a table: the params index rows of an event are found from its own
params (they are what was indexed), not by a scan of the index.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from stepd.domain.params import param_text
from stepd.domain.retention import ACTIVE_VALUES
from stepd.store import dbapi, queries
from stepd.store.events import index_value

_Q = queries.load("retention")  # sql/retention.sql


@dataclass(frozen=True, slots=True)
class OldEvent:
    seq: int
    name: str
    params: str  # the stored JSON
    state: str
    created: datetime
    source_object: str | None  # the stored JSON of an object source


@dataclass(frozen=True, slots=True)
class OldTask:
    id: int
    status: str
    created: datetime
    finished: datetime | None


@dataclass(frozen=True, slots=True)
class EventsDeleted:
    events: int
    params: int  # params index rows (and object sources' index rows)
    triggers: int
    kept_for_tasks: int  # events kept because one of their tasks is not finished


@dataclass(frozen=True, slots=True)
class TasksDeleted:
    tasks: int
    attempts: int
    logs: int  # log chunks


def oldest_unevaluated(conn: dbapi.Conn) -> datetime | None:
    cur = dbapi.run(conn, _Q["oldest_unevaluated"])
    row = cur.fetchone()
    cur.close()
    return None if row is None else dbapi.read_time(row[0])


def event_batch(conn: dbapi.Conn, after: int, limit: int) -> list[OldEvent]:
    """The `limit` events after seq `after`, oldest first."""
    cur = dbapi.run(conn, _Q["event_batch"], {"after": after, "limit": limit})
    rows = [
        OldEvent(
            seq=int(seq),
            name=str(name),
            params=str(params),
            state=str(state),
            created=dbapi.read_time(created),
            source_object=source_object,
        )
        for seq, name, params, state, created, source_object in cur.fetchall()
    ]
    cur.close()
    return rows


def delete_events(conn: dbapi.Conn, old: Sequence[OldEvent], *, apply: bool) -> EventsDeleted:
    """Delete `old` (events the caller chose: evaluated, past their cutoff) with their
    params index rows and triggers, except those with a task that is not finished.
    `apply=False` (a dry run, in a read): count only."""
    if not old:
        return EventsDeleted(events=0, params=0, triggers=0, kept_for_tasks=0)
    r = dbapi.raw(conn)
    query = _Q["tasks_of_events" if r.sqlite or not apply else "tasks_of_events_locked"]
    cur = dbapi.run(r, query, {"low": old[0].seq, "high": old[-1].seq})
    busy = {int(seq) for seq, status in cur.fetchall() if status in ACTIVE_VALUES}
    cur.close()
    going = [e for e in old if e.seq not in busy and e.state != "NEW"]
    param_rows = [
        {"name": e.name, "key": key, "value": index_value(text), "seq": e.seq}
        for e in going
        for key, value in json.loads(e.params).items()
        if (text := param_text(value)) is not None
    ]
    source_rows = [
        {"key": key, "value": index_value(text), "seq": e.seq}
        for e in going
        if e.source_object is not None
        for key, value in json.loads(e.source_object).items()
        if (text := param_text(value)) is not None
    ]
    seqs = [{"seq": e.seq} for e in going]
    if not apply:
        return EventsDeleted(
            events=len(going),
            params=len(param_rows) + len(source_rows),
            triggers=0,  # (not counted by a dry run: it would read every trigger)
            kept_for_tasks=len(old) - len(going),
        )
    # In the index's order: neighbouring deletes touch the same b-tree pages.
    param_rows.sort(key=lambda p: (p["name"], p["key"], p["value"], p["seq"]))
    source_rows.sort(key=lambda p: (p["key"], p["value"], p["seq"]))
    params = _many(r, "delete_event_param", param_rows)
    params += _many(r, "delete_event_source", source_rows)
    triggers = _many(r, "delete_event_triggers", seqs)
    events = _many(r, "delete_event", seqs)
    return EventsDeleted(
        events=events, params=params, triggers=triggers, kept_for_tasks=len(old) - len(going)
    )


def delete_requests(conn: dbapi.Conn, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` request ids stored before `cutoff`; how many went."""
    params = {"cutoff": dbapi.time_param(conn, cutoff), "limit": limit}
    cur = dbapi.run(conn, _Q["delete_requests"], params)
    deleted = int(cur.rowcount)
    cur.close()
    return deleted


def count_requests(conn: dbapi.Conn, cutoff: datetime) -> int:
    cur = dbapi.run(conn, _Q["count_requests"], {"cutoff": dbapi.time_param(conn, cutoff)})
    (count,) = cur.fetchone()
    cur.close()
    return int(count)


def task_batch(conn: dbapi.Conn, after: int, limit: int) -> list[OldTask]:
    """The `limit` tasks after id `after`, oldest first."""
    cur = dbapi.run(conn, _Q["task_batch"], {"after": after, "limit": limit})
    rows = [
        OldTask(
            id=int(id_),
            status=str(status),
            created=dbapi.read_time(created),
            finished=None if finished is None else dbapi.read_time(finished),
        )
        for id_, status, created, finished in cur.fetchall()
    ]
    cur.close()
    return rows


@dataclass(frozen=True, slots=True)
class TaskNow:
    id: int
    status: str
    finished: datetime | None


def tasks_now(conn: dbapi.Conn, low: int, high: int, *, lock: bool) -> list[TaskNow]:
    """The tasks with ids from `low` to `high` as they are in the caller's transaction
    (`lock`: locked until it ends, on PostgreSQL: SQLite's writers take turns anyway)."""
    r = dbapi.raw(conn)
    query = _Q["tasks_in_range_locked" if lock and not r.sqlite else "tasks_in_range"]
    cur = dbapi.run(r, query, {"low": low, "high": high})
    rows = [
        TaskNow(
            id=int(id_),
            status=str(status),
            finished=None if finished is None else dbapi.read_time(finished),
        )
        for id_, status, finished in cur.fetchall()
    ]
    cur.close()
    return rows


def delete_tasks(conn: dbapi.Conn, ids: Collection[int]) -> TasksDeleted:
    """Delete the tasks `ids` (finished: the caller checked, in this transaction) with
    their attempts, logs, links to the events they emitted and any semaphore hold."""
    rows = [{"id": i} for i in sorted(ids)]
    r = dbapi.raw(conn)
    logs = _many(r, "delete_task_logs", rows)
    attempts = _many(r, "delete_task_attempts", rows)
    _many(r, "delete_task_events", rows)
    _many(r, "delete_task_holds", rows)
    tasks = _many(r, "delete_task", rows)
    return TasksDeleted(tasks=tasks, attempts=attempts, logs=logs)


def delete_logs(conn: dbapi.Conn, ids: Collection[int]) -> int:
    """Delete the logs of the tasks `ids` (finished: the caller checked); chunks deleted."""
    return _many(dbapi.raw(conn), "delete_task_logs", [{"id": i} for i in sorted(ids)])


def _many(r: dbapi.Raw, name: str, rows: Sequence[Mapping[str, object]]) -> int:
    """Run the named statement once per row; the rows it deleted in all."""
    if not rows:
        return 0
    query = _Q[name]
    compiled = query.compiled(r.sqlite)
    cur = r.driver.cursor()
    cur.executemany(compiled.sql, [compiled.bind(row) for row in rows])
    deleted = int(cur.rowcount)
    cur.close()
    return max(deleted, 0)
