"""The deployment's own settings: what every process of it must agree on, stored once.

A per-process flag cannot keep a fleet consistent: a Celery worker started without
`--task-event-name` reported `taskEvent` while the configs waited for `cryptaTaskEvent`,
and the chain broke silently. So these live in the store (`deployment_settings`), set by
an admin (`stepd settings set`, `PUT /api/v1/settings`) or recorded by the first process
started with the flag given, and read where they are used (the status event is named in
the transaction that reports it), so every server and worker follows a change at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from stepd.domain import retention as retention_rules
from stepd.domain.events import NAME_PATTERN
from stepd.domain.lifecycle import StatusEvents
from stepd.errors import InvalidInput
from stepd.store import dbapi, queries
from stepd.store.schema import deployment_settings
from stepd.timeutil import as_utc


@dataclass(frozen=True, kw_only=True)
class Key:
    name: str
    setting: str  # the Settings field (and flag) it stands for, per process before
    flag: str
    default: str | float
    description: str
    kind: str = "text"  # "event_name", "text", "seconds" or "retention"


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key(
            name="status_event_name",
            setting="task_event_name",
            flag="--task-event-name",
            default="taskEvent",
            description="The event a finished task reports (Crypta: cryptaTaskEvent).",
            kind="event_name",
        ),
        Key(
            name="environment",
            setting="environment",
            flag="--environment",
            default="stable",
            description="The `environment` param of those events.",
        ),
        Key(
            name="heartbeat_timeout_seconds",
            setting="heartbeat_timeout_seconds",
            flag="--heartbeat-timeout",
            default=30.0,
            description="A worker (or attempt) silent this long is gone: its attempt is ended.",
            kind="seconds",
        ),
        Key(
            name="retention",
            setting="retention",
            flag="--retention",
            default=retention_rules.OFF,
            description="Events older than this are deleted (90d, 12h; at least 1h; off: "
            "kept forever), and finished tasks and logs unless the next two say otherwise.",
            kind="retention",
        ),
        Key(
            name="task_retention",
            setting="task_retention",
            flag="--task-retention",
            default="as retention",
            description="Finished tasks (with their attempts and logs) that finished longer "
            "ago are deleted (off: kept forever).",
            kind="retention",
        ),
        Key(
            name="log_retention",
            setting="log_retention",
            flag="--log-retention",
            default="as task_retention",
            description="The logs of finished tasks that finished longer ago are deleted "
            "(the tasks stay until task_retention).",
            kind="retention",
        ),
    )
}
MAX_TIMEOUT_SECONDS = 86_400.0
_STORED_STATUS_EVENTS = queries.load("deployment")["stored_status_events"]  # sql/deployment.sql


Value = str | float


@dataclass(frozen=True, kw_only=True)
class Stored:
    key: str
    value: Value
    updated: datetime
    updated_by: str | None


def check(key: str, value: object) -> Value:
    """`value` for `key` as it is stored, or InvalidInput naming what is wrong."""
    if key not in KEYS:
        raise InvalidInput(
            f"unknown setting {key!r}; the deployment's settings are: {', '.join(KEYS)}",
            field=key,
        )
    if KEYS[key].kind == "retention":
        return retention_rules.normal(value, field=key)
    if KEYS[key].kind == "seconds":
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):  # (10**400: too large for a float)
            raise InvalidInput(f"{key} must be a number of seconds", field=key) from None
        if isinstance(value, bool) or not 1.0 <= seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidInput(
                f"{key} must be from 1 to {MAX_TIMEOUT_SECONDS:.0f} seconds", field=key
            )
        return seconds
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key} must be a non-empty string", field=key)
    if not value.isprintable():  # it becomes an event param every status event carries
        raise InvalidInput(f"{key} may not hold control characters", field=key)
    if KEYS[key].kind == "event_name" and not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(f"{key} {value!r} is not a valid event name", field=key)
    if len(value) > 200:
        raise InvalidInput(f"{key} is longer than 200 characters", field=key)
    return value


def heartbeat_timeout(conn: Connection, default: float) -> float:
    """The stored heartbeat timeout, or `default` (the process's own) where none is."""
    stored = read(conn).get("heartbeat_timeout_seconds")
    return default if stored is None else float(stored.value)


def retention(
    conn: Connection, own: tuple[str | None, str | None, str | None]
) -> retention_rules.Policy:
    """The deployment's retention: each of (retention, task_retention, log_retention) as
    stored, or this process's own (`own`, its settings) where the store holds none."""
    stored = read(conn)
    chosen = [
        stored[name].value if name in stored else mine
        for name, mine in zip(("retention", "task_retention", "log_retention"), own, strict=True)
    ]
    return retention_rules.Policy.of(*chosen)


def read(conn: Connection) -> dict[str, Stored]:
    rows = conn.execute(select(deployment_settings))
    return {
        r.key: Stored(
            key=r.key,
            value=json.loads(r.value),
            updated=as_utc(r.updated),
            updated_by=r.updated_by,
        )
        for r in rows
    }


def write(conn: Connection, key: str, value: object, by: str | None, now: datetime) -> None:
    value = check(key, value)
    conn.execute(delete(deployment_settings).where(deployment_settings.c.key == key))
    conn.execute(
        insert(deployment_settings).values(
            key=key, value=json.dumps(value), updated=now, updated_by=by
        )
    )


def status_events(conn: dbapi.Conn, default: StatusEvents) -> StatusEvents:
    """`default` (the process's own) with what the store holds instead, where it does:
    one primary-key read on the driver's cursor (a task's end runs it), in the caller's
    transaction."""
    cur = dbapi.run(conn, _STORED_STATUS_EVENTS, {})
    stored: Mapping[str, Value] = {str(k): json.loads(v) for k, v in cur.fetchall()}
    cur.close()
    if not stored:
        return default
    return StatusEvents(
        name=str(stored.get("status_event_name", default.name)),
        environment=str(stored.get("environment", default.environment)),
    )


def reconcile(conn: Connection, given: Mapping[str, Value], by: str, now: datetime) -> list[str]:
    """Check the values a process was started with (`given`: key -> value, only those its
    flags or STEPD_* variables set) against the store: a contradiction is InvalidInput
    naming the stored value; a key the store lacks is recorded, so that the rest of the
    fleet follows the first process told. Returns what was recorded, for the log."""
    stored = read(conn)
    recorded: list[str] = []
    for name, wanted in given.items():
        key = KEYS[name]
        value = check(name, wanted)
        if name in stored:
            if stored[name].value != value:
                raise InvalidInput(
                    f"{key.flag} {value!r} contradicts the deployment's {name} "
                    f"{stored[name].value!r} (set by {stored[name].updated_by or 'unknown'}): "
                    f"drop the flag, or change it for every process with "
                    f"`stepd settings set {name} {value}`",
                    field=key.setting,
                )
            continue
        write(conn, name, value, by, now)
        recorded.append(f"recorded the deployment's {name} = {value!r} ({key.flag})")
    return recorded
