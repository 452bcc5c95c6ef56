"""Store functions for tasks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from stepd.domain.configs import ActionConfig
from stepd.domain.tasks import Task, TaskStatus
from stepd.store import dbapi, queries
from stepd.store.schema import task_events, tasks
from stepd.timeutil import as_utc, utcnow


@dataclass(frozen=True, kw_only=True)
class NewTask:
    type: str
    params: Mapping[str, object]
    author: str | None
    priority: int = 0
    semaphores: Sequence[Mapping[str, object]] = ()
    kill_timeout: int | None = None
    max_retries: int = 0
    config_seq: int | None = None
    config_version: int | None = None
    event_seq: int | None = None
    created: datetime = field(default_factory=utcnow)


# On the driver's cursor (store/dbapi.py): the reactor inserts a task per firing.
_Q = queries.load("tasks")


def insert_task(conn: dbapi.Conn, new: NewTask) -> int:
    """Store an ENQUEUED task; its id."""
    return insert_encoded(
        conn,
        type=new.type,
        params_json=dbapi.to_json(dict(new.params)),
        author=new.author,
        priority=new.priority,
        semaphores_json=json.dumps([dict(s) for s in new.semaphores]),
        kill_timeout=new.kill_timeout,
        max_retries=new.max_retries,
        config_seq=new.config_seq,
        config_version=new.config_version,
        event_seq=new.event_seq,
        created=dbapi.time_param(conn, new.created),
    )


def insert_encoded(
    conn: dbapi.Conn,
    *,
    type: str,
    params_json: str,
    author: str | None,
    priority: int,
    semaphores_json: str,
    kill_timeout: int | None,
    max_retries: int,
    config_seq: int | None,
    config_version: int | None,
    event_seq: int | None,
    created: object,
    manual_json: str | None = None,
    backfill_id: int | None = None,
) -> int:
    """`insert_task` with its JSON encoded and its time bound (`dbapi.time_param`) by the
    caller: the reactor, once per firing, shares them with the trigger it records."""
    task_id = dbapi.run_insert(
        conn,
        _Q["insert"],
        {
            "type": type,
            "params": params_json,
            "status": TaskStatus.ENQUEUED.value,
            "author": author,
            "priority": priority,
            "semaphores": semaphores_json,
            "kill_timeout": kill_timeout,
            "max_retries": max_retries,
            "config_seq": config_seq,
            "config_version": config_version,
            "event_seq": event_seq,
            "created": created,
            "manual": manual_json,
            "backfill_id": backfill_id,
        },
    )
    if task_id is None:
        raise RuntimeError("a task insert inserted nothing")  # no conflict clause: cannot be
    return task_id


def insert_for_config(
    conn: dbapi.Conn,
    config: ActionConfig,
    *,
    params_json: str,
    event_seq: int | None,
    created: object,
    made_by: Mapping[str, object] | None = None,
    backfill_id: int | None = None,
    semaphores: Sequence[Mapping[str, object]] | None = None,
) -> int:
    """Store the ENQUEUED task a firing of `config` launches, with `params_json` (the
    binding and its rendered task_params, see domain/firing.py); its id. The one place that
    copies a config into a task: the reactor's firings and a run by hand (`event_seq`
    None) both make their task here. A run by hand says `made_by` ({by, binding}, and the
    backfill's id when a backfill made it: `tasks.manual`). `semaphores`: the firing's, where
    the config's names are templates."""
    spec = config.spec
    return insert_encoded(
        conn,
        type=spec.task_type,
        params_json=params_json,
        author=config.author,
        priority=spec.priority,
        # the firing's own when a name is a template (domain/firing.py task_semaphores)
        semaphores_json=json.dumps(
            [u.to_json() for u in spec.semaphores] if semaphores is None else list(semaphores)
        ),
        kill_timeout=spec.kill_timeout,
        max_retries=spec.max_retries,
        config_seq=config.seq,
        config_version=config.version,
        event_seq=event_seq,
        created=created,
        manual_json=None if made_by is None else json.dumps(dict(made_by)),
        backfill_id=backfill_id,
    )


def delete_unfired(conn: dbapi.Conn, task_id: int) -> None:
    """Delete a task made in the caller's transaction whose firing turned out to be a
    repeat (see Reactor._fire); nothing else refers to it yet."""
    dbapi.run(conn, _Q["delete_unfired"], {"task_id": task_id}).close()


def _maybe(value: Any) -> datetime | None:
    return None if value is None else as_utc(value)


def row_to_task(m: Mapping[Any, Any]) -> Task:
    return Task(
        id=int(m["id"]),
        type=str(m["type"]),
        params=json.loads(str(m["params"])),
        status=TaskStatus(m["status"]),
        author=m["author"],
        priority=int(m["priority"]),
        semaphores=tuple(json.loads(str(m["semaphores"]))),
        kill_timeout=m["kill_timeout"],
        max_retries=int(m["max_retries"]),
        attempts=int(m["attempts"]),
        config_seq=m["config_seq"],
        config_version=m["config_version"],
        event_seq=m["event_seq"],
        created=as_utc(m["created"]),
        updated=as_utc(m["updated"]),
        started=_maybe(m["started"]),
        finished=_maybe(m["finished"]),
        output=None if m["output"] is None else json.loads(str(m["output"])),
        error=m["error"],
        manual=None if m.get("manual") is None else json.loads(str(m["manual"])),
        backfill_id=m.get("backfill_id"),
    )


def get_task(conn: Connection, task_id: int) -> Task | None:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    return None if row is None else row_to_task(row._mapping)


def get_tasks(conn: Connection, ids: Iterable[int]) -> dict[int, Task]:
    wanted = sorted(set(ids))
    found: dict[int, Task] = {}
    for start in range(0, len(wanted), 500):
        rows = conn.execute(select(tasks).where(tasks.c.id.in_(wanted[start : start + 500])))
        for row in rows:
            task = row_to_task(row._mapping)
            found[task.id] = task
    return found


def finished_counts(conn: Connection, config_seq: int, since: datetime) -> dict[TaskStatus, int]:
    """Status -> how many tasks of config `config_seq` finished at or after `since` (its
    success rate), one read along the tasks' config index."""
    rows = conn.execute(
        select(tasks.c.status, func.count())
        .where(tasks.c.config_seq == config_seq, tasks.c.finished >= since)
        .group_by(tasks.c.status)
    )
    return {TaskStatus(status): int(n) for status, n in rows}


def link_event(conn: Connection, task_id: int, event_seq: int) -> None:
    """Remember that `task_id` emitted the event `event_seq` (a link of a chain)."""
    conn.execute(insert(task_events).values(task_id=task_id, event_seq=event_seq))


def emitted_events(conn: Connection, task_ids: Iterable[int]) -> dict[int, list[int]]:
    """Task id -> the seqs of the events it emitted, oldest first."""
    wanted = sorted(set(task_ids))
    out: dict[int, list[int]] = {t: [] for t in wanted}
    if not wanted:
        return out
    rows = conn.execute(
        select(task_events.c.task_id, task_events.c.event_seq)
        .where(task_events.c.task_id.in_(wanted))
        .order_by(task_events.c.event_seq)
    )
    for task_id, event_seq in rows:
        out[int(task_id)].append(int(event_seq))
    return out


def waiting_on_semaphores(conn: Connection, limit: int = 10_000) -> dict[str, int]:
    """Semaphore name -> how many tasks wait for room in it (WAIT_MUTEX), among the first
    `limit` waiting tasks (a page says "at least" beyond)."""
    waiting: dict[str, int] = {}
    rows = conn.execute(
        select(tasks.c.semaphores)
        .where(tasks.c.status == TaskStatus.WAIT_MUTEX.value)
        .order_by(tasks.c.id)
        .limit(limit)
    )
    for (uses,) in rows:
        for name in {str(use.get("name")) for use in json.loads(uses or "[]")}:
            waiting[name] = waiting.get(name, 0) + 1
    return waiting
