"""Tasks and semaphores as people and clients see them: list, inspect, create, stop, restart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from stepd.domain.configs import SemaphoreUse, parse_semaphores
from stepd.domain.events import format_event_id, parse_event_id
from stepd.domain.limits import check_int32
from stepd.domain.tasks import ACTIVE, Task, TaskStatus
from stepd.errors import Conflict, InvalidInput, NotFound
from stepd.runner.registry import TaskType
from stepd.services import authz
from stepd.store import runs
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.schema import semaphore_holds, semaphores, tasks
from stepd.store.tokens import Principal
from stepd.timeutil import iso, utcnow

MAX_LIMIT = 1000
SORTS = {"id": tasks.c.id.asc(), "-id": tasks.c.id.desc(), "priority": tasks.c.priority.desc()}


def task_json(task: Task, *, attempts: list[dict[str, Any]] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "id": task.id,
        "sandbox_task_id": task.id,
        "type": task.type,
        "params": dict(task.params),
        "status": task.status.value,
        "author": task.author,
        "priority": task.priority,
        "semaphores": list(task.semaphores),
        "kill_timeout": task.kill_timeout,
        "max_retries": task.max_retries,
        "attempts": task.attempts,
        "config_id": None if task.config_seq is None else format_event_id(task.config_seq),
        "config_version": task.config_version,
        "event_id": None if task.event_seq is None else format_event_id(task.event_seq),
        "created": iso(task.created),
        "updated": iso(task.updated),
        "started": None if task.started is None else iso(task.started),
        "finished": None if task.finished is None else iso(task.finished),
        "output": task.output,
        "error": task.error,
    }
    if attempts is not None:
        body["attempt_history"] = [
            {
                "attempt": a["attempt"],
                "status": a["status"],
                "worker": a["worker"],
                "started": None if a["started"] is None else iso(a["started"]),
                "finished": None if a["finished"] is None else iso(a["finished"]),
                "error": a["error"],
            }
            for a in attempts
        ]
    return body


def _int(value: str, what: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be an integer, not {value!r}", field=what) from None
    if number < low or (high is not None and number > high):
        raise InvalidInput(f"{what} must be from {low} to {high or 'up'}", field=what)
    return number


def _number(body: Mapping[str, object], key: str, default: int | None, *, low: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    # The tasks table keeps these in INTEGER columns (32 bits on PostgreSQL).
    return check_int32(key, value, low=low)


@dataclass
class TaskService:
    store: Store
    status_events: runs.StatusEvents
    types: Mapping[str, TaskType] = field(default_factory=dict)
    on_created: list[Any] = field(default_factory=list)

    def _get(self, conn: Connection, task_id: int) -> Task:
        task = task_store.get_task(conn, task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id}", field="id")
        return task

    def list(self, query: Mapping[str, str]) -> list[dict[str, object]]:
        allowed = {"type", "status", "config_id", "event_id", "author", "skip", "limit", "sort"}
        unknown = sorted(set(query) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown filter {unknown[0]!r}; use {sorted(allowed)}", field=unknown[0]
            )
        stmt = select(tasks)
        if "type" in query:
            stmt = stmt.where(tasks.c.type == query["type"])
        if "author" in query:
            stmt = stmt.where(tasks.c.author == query["author"])
        if "status" in query:
            wanted = [s for s in query["status"].split(",") if s]
            bad = [s for s in wanted if s not in TaskStatus.__members__]
            if bad:
                raise InvalidInput(
                    f"unknown status {bad[0]!r}; use {', '.join(TaskStatus)}", field="status"
                )
            stmt = stmt.where(tasks.c.status.in_(wanted))
        for key, column in (("config_id", tasks.c.config_seq), ("event_id", tasks.c.event_seq)):
            if key in query:
                seq = parse_event_id(query[key])
                if seq is None:
                    raise InvalidInput(f"{key} {query[key]!r} is not an id", field=key)
                stmt = stmt.where(column == seq)
        sort = query.get("sort", "-id")
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {sorted(SORTS)}", field="sort")
        stmt = stmt.order_by(SORTS[sort], tasks.c.id.desc()).offset(
            _int(query.get("skip", "0"), "skip", 0, 1_000_000_000)
        )
        stmt = stmt.limit(_int(query.get("limit", "30"), "limit", 0, MAX_LIMIT))
        with self.store.read() as conn:
            return [task_json(task_store.row_to_task(r._mapping)) for r in conn.execute(stmt)]

    def get(self, task_id: int) -> dict[str, object]:
        with self.store.read() as conn:
            task = self._get(conn, task_id)
            body = task_json(task, attempts=runs.attempts(conn, task_id))
            trigger = trigger_store.for_task(conn, task_id)
            if trigger is not None:
                body["trigger"] = {
                    "event_id": format_event_id(trigger.event_seq),
                    "binding": dict(trigger.binding),
                    "dep_event_ids": [format_event_id(s) for s in trigger.dep_events],
                }
            emitted = task_store.emitted_events(conn, [task_id])[task_id]
            body["emitted_event_ids"] = [format_event_id(s) for s in emitted]
        return body

    def logs(self, task_id: int, attempt: int | None, offset: int) -> dict[str, object]:
        with self.store.read() as conn:
            task = self._get(conn, task_id)
            number, text = runs.read_log(conn, task_id, attempt)
        return {
            "id": task_id,
            "attempt": number,
            "status": task.status.value,
            "offset": offset,
            "next_offset": len(text),
            "text": text[offset:],
            "finished": task.status not in ACTIVE,
        }

    def create(self, body: Mapping[str, object], principal: Principal) -> dict[str, object]:
        unknown = sorted(
            set(body) - {"type", "params", "priority", "semaphores", "kill_timeout", "max_retries"}
        )
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
        task_type = body.get("type")
        if not isinstance(task_type, str) or not task_type:
            raise InvalidInput("type is required: the task type to run", field="type")
        if self.types and task_type not in self.types:
            raise InvalidInput(
                f"unknown task type {task_type!r}; this server knows: "
                + ", ".join(sorted(self.types)),
                field="type",
            )
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput("params must be an object", field="params")
        priority = _number(body, "priority", 0, low=-1_000_000)
        max_retries = _number(body, "max_retries", 0, low=0)
        kill_timeout = _number(body, "kill_timeout", None, low=1)
        uses: tuple[SemaphoreUse, ...] = parse_semaphores(body.get("semaphores"))
        with self.store.write() as conn:
            runs.check_weights(conn, [(u.name, u.weight) for u in uses])
            task_id = task_store.insert_task(
                conn,
                task_store.NewTask(
                    type=task_type,
                    params=params,
                    author=principal.user,
                    priority=priority or 0,
                    semaphores=[{"name": u.name, "weight": u.weight} for u in uses],
                    kill_timeout=kill_timeout,
                    max_retries=max_retries or 0,
                ),
            )
            task = self._get(conn, task_id)
        for hook in self.on_created:
            hook()
        return task_json(task)

    def stop(self, task_id: int, principal: Principal) -> dict[str, object]:
        """Stop a task; its author, its config's author or an admin may (authz)."""
        with self.store.write() as conn:
            task = self._get(conn, task_id)
            authz.control_task(conn, principal, task, "stop")
            status = runs.request_stop(conn, task_id, self.status_events, utcnow())
            if status is None:
                raise Conflict(
                    f"task {task_id} has already ended ({task.status.value}); nothing to stop"
                )
        return {"id": task_id, "status": status.value, "stop_requested": True}

    def restart(self, task_id: int, principal: Principal) -> dict[str, object]:
        """Queue a finished task again; who may is as for `stop`."""
        with self.store.write() as conn:
            task = self._get(conn, task_id)
            authz.control_task(conn, principal, task, "restart")
            if not runs.restart(conn, task_id, utcnow()):
                raise Conflict(
                    f"task {task_id} is {task.status.value}; only a finished task can be restarted"
                )
        for hook in self.on_created:
            hook()
        return {"id": task_id, "status": TaskStatus.ENQUEUED.value}


@dataclass
class SemaphoreService:
    store: Store

    def _json(self, conn: Connection, name: str | None = None) -> list[dict[str, object]]:
        stmt = select(semaphores).order_by(semaphores.c.name)
        if name is not None:
            stmt = stmt.where(semaphores.c.name == name)
        used = dict(
            conn.execute(
                select(semaphore_holds.c.name, func.sum(semaphore_holds.c.weight)).group_by(
                    semaphore_holds.c.name
                )
            ).all()
        )
        return [
            {
                "name": r.name,
                "capacity": r.capacity,
                "used": int(used.get(r.name) or 0),
                "auto": bool(r.auto),
                "owner": r.owner,
                "updated": iso(r.updated),
            }
            for r in conn.execute(stmt)
        ]

    def list(self) -> list[dict[str, object]]:
        with self.store.read() as conn:
            return self._json(conn)

    def get(self, name: str) -> dict[str, object]:
        with self.store.read() as conn:
            found = self._json(conn, name)
        if not found:
            raise NotFound(f"no semaphore {name!r}", field="name")
        return found[0]

    def put(self, name: str, body: Mapping[str, object], principal: Principal) -> dict[str, object]:
        """Create a semaphore or set its capacity (authz: its owner, or a claim by one of
        its users while it has none; the caller then becomes its owner)."""
        unknown = sorted(set(body) - {"capacity", "name"})
        if unknown:
            raise InvalidInput(
                f"unknown field {unknown[0]!r}; a semaphore has capacity", field=unknown[0]
            )
        capacity = check_int32("capacity", body.get("capacity"), low=0)
        if not name or len(name) > 200:
            raise InvalidInput("name must be 1 to 200 characters", field="name")
        now = utcnow()
        with self.store.write() as conn:
            runs.ensure_semaphores(conn, [name], now)
            found = runs.semaphore_owner(conn, name)
            owner = None if found is None else found.owner
            authz.change_semaphore(conn, principal, name, owner, "set")
            conn.execute(
                update(semaphores)
                .where(semaphores.c.name == name)
                .values(capacity=capacity, auto=False, updated=now, owner=owner or principal.user)
            )
            return self._json(conn, name)[0]

    def delete(self, name: str, principal: Principal) -> None:
        """Delete an unused semaphore: its owner or an admin (authz)."""
        with self.store.write() as conn:
            found = runs.semaphore_owner(conn, name)
            if found is None:
                raise NotFound(f"no semaphore {name!r}", field="name")
            authz.change_semaphore(conn, principal, name, found.owner, "delete")
            held = conn.execute(
                select(func.count())
                .select_from(semaphore_holds)
                .where(semaphore_holds.c.name == name)
            ).scalar_one()
            if held:
                raise Conflict(f"semaphore {name!r} is held by {held} running task(s)")
            if conn.execute(delete(semaphores).where(semaphores.c.name == name)).rowcount == 0:
                raise NotFound(f"no semaphore {name!r}", field="name")
