"""Store functions for triggers: the record that a config fired for an event and binding."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from stepd.store import dbapi, queries
from stepd.store.schema import triggers
from stepd.timeutil import as_utc


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """A recorded firing."""

    id: int
    config_seq: int
    config_version: int
    event_seq: int  # the triggering event
    binding: Mapping[str, object]  # bound free params
    dep_events: tuple[int, ...]  # the event that satisfied each dependency
    task_id: int | None
    error: str | None  # why no task was made
    created: datetime


def binding_hash(binding_key: str) -> str:
    return hashlib.sha256(binding_key.encode()).hexdigest()


def insert_trigger(
    conn: dbapi.Conn,
    *,
    config_seq: int,
    config_version: int,
    event_seq: int,
    binding_key: str,
    binding_json: str,
    dep_events: Sequence[int],
    task_id: int | None,
    error: str | None,
    created: object,
) -> int | None:
    """Record a firing and the task it made (or why none); None when this (config, event,
    binding) already fired, and nothing was recorded.

    `binding_json` is the binding as JSON and `created` a time as `dbapi.time_param` binds
    it: the reactor makes both once per firing, for the task too.
    """
    # On the driver's cursor: this runs once per firing in the reactor (see store.dbapi).
    return dbapi.run_insert(
        conn,
        _Q["insert"],
        {
            "config_seq": config_seq,
            "config_version": config_version,
            "event_seq": event_seq,
            "binding_hash": binding_hash(binding_key),
            "binding": binding_json,
            # as json.dumps writes a list of ints, without an encoder call
            "dep_events": "[" + ", ".join(map(str, dep_events)) + "]",
            "task_id": task_id,
            "error": error,
            "created": created,
        },
    )


_Q = queries.load("triggers")


def _to_trigger(m: Mapping[Any, Any]) -> Trigger:
    return Trigger(
        id=int(m["id"]),
        config_seq=int(m["config_seq"]),
        config_version=int(m["config_version"]),
        event_seq=int(m["event_seq"]),
        binding=json.loads(str(m["binding"])),
        dep_events=tuple(json.loads(str(m["dep_events"]))),
        task_id=m["task_id"],
        error=m["error"],
        created=as_utc(m["created"]),
    )


def for_event(conn: Connection, event_seq: int) -> list[Trigger]:
    rows = conn.execute(
        select(triggers).where(triggers.c.event_seq == event_seq).order_by(triggers.c.id)
    )
    return [_to_trigger(r._mapping) for r in rows]


@dataclass(frozen=True)
class Fired:
    """What the firings an event completed made: tasks, and errors (no task)."""

    tasks: int = 0
    errors: int = 0


def fired_by(conn: Connection, event_seqs: Sequence[int]) -> dict[int, Fired]:
    """Per event of `event_seqs` (a page of a list) that completed a firing, what they made:
    one read along the triggers' event index."""
    if not event_seqs:
        return {}
    made = func.count(triggers.c.task_id)
    rows = conn.execute(
        select(triggers.c.event_seq, made, func.count() - made)
        .where(triggers.c.event_seq.in_(list(event_seqs)))
        .group_by(triggers.c.event_seq)
    )
    return {int(seq): Fired(tasks=int(t), errors=int(e)) for seq, t, e in rows}


def for_task(conn: Connection, task_id: int) -> Trigger | None:
    row = conn.execute(select(triggers).where(triggers.c.task_id == task_id)).first()
    return None if row is None else _to_trigger(row._mapping)


def bindings(conn: Connection, task_ids: Sequence[int]) -> dict[int, dict[str, object]]:
    """Task id -> the binding of the firing that made it, for the tasks of `task_ids` (a
    page of a config's runs) that a firing made: one read along the triggers' task index."""
    if not task_ids:
        return {}
    rows = conn.execute(
        select(triggers.c.task_id, triggers.c.binding).where(triggers.c.task_id.in_(list(task_ids)))
    )
    return {int(task_id): dict(json.loads(binding)) for task_id, binding in rows}


def for_config_binding(conn: Connection, config_seq: int, binding_key: str) -> list[Trigger]:
    """Every firing of a config for one binding (by any event): to say who completed a wait."""
    rows = conn.execute(
        select(triggers)
        .where(
            triggers.c.config_seq == config_seq,
            triggers.c.binding_hash == binding_hash(binding_key),
        )
        .order_by(triggers.c.id)
    )
    return [_to_trigger(r._mapping) for r in rows]


def completed_later(conn: Connection, config_seq: int, event_seq: int) -> list[Trigger]:
    """Firings of a config by later events that used `event_seq` for a dependency."""
    rows = conn.execute(
        select(triggers)
        .where(triggers.c.config_seq == config_seq, triggers.c.event_seq > event_seq)
        .order_by(triggers.c.id.desc())
        .limit(1000)
    )
    found = [_to_trigger(r._mapping) for r in rows]
    return [t for t in reversed(found) if event_seq in t.dep_events]
