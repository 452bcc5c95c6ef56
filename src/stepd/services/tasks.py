"""Tasks and semaphores as people and clients see them: list, inspect, create, stop, restart."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from stepd.domain.configs import ActionConfig
from stepd.domain.task_params import check_params
from stepd.domain.tasks import Task, TaskStatus
from stepd.errors import Conflict, InvalidInput, NotFound
from stepd.services import authz
from stepd.shapes import SemaphoreIn, TaskIn, TaskQuery
from stepd.store import configs as config_store
from stepd.store import runs, semaphore_use
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.schema import semaphore_holds, semaphores, tasks
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

SORTS = {"id": tasks.c.id.asc(), "-id": tasks.c.id.desc(), "priority": tasks.c.priority.desc()}


@dataclass(frozen=True, kw_only=True)
class TaskView:
    """One task with its history: what `GET /api/v1/tasks/{id}` renders."""

    task: Task
    attempts: list[dict[str, Any]]  # task_attempts rows, by attempt
    trigger: trigger_store.Trigger | None  # None: made by hand
    emitted: tuple[int, ...]  # the seqs of the events it emitted
    # The config that made it, live or deleted since (its tombstone); None: made by hand.
    config: ActionConfig | None = None


@dataclass(frozen=True, kw_only=True)
class LogPage:
    """A task's log of one attempt, from an offset."""

    task_id: int
    attempt: int
    status: TaskStatus
    offset: int
    text: str  # from `offset`
    length: int  # of the whole log: where the next read starts


@dataclass(frozen=True, kw_only=True)
class SemaphoreState:
    """A semaphore and the weight running tasks hold of it."""

    name: str
    capacity: int
    used: int
    auto: bool
    owner: str | None
    updated: datetime


@dataclass
class TaskService:
    store: Store
    status_events: runs.StatusEvents
    # Why a task type may not run (services/fleet.py): a task of it is made all the same.
    type_warning: Callable[[str], str | None] = lambda _type: None
    # A task type as the fleet describes it, with its params (services/fleet.py); None: not
    # known here.
    described: Callable[[str], Mapping[str, object] | None] = lambda _type: None
    on_created: list[Any] = field(default_factory=list)

    def _get(self, conn: Connection, task_id: int) -> Task:
        task = task_store.get_task(conn, task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id}", field="id")
        return task

    def list(self, query: TaskQuery) -> list[Task]:
        """The tasks `query` selects, in its order."""
        stmt = select(tasks)
        if query.type is not None:
            stmt = stmt.where(tasks.c.type == query.type)
        if query.author is not None:
            stmt = stmt.where(tasks.c.author == query.author)
        if query.status:
            stmt = stmt.where(tasks.c.status.in_([s.value for s in query.status]))
        if query.config_seq is not None:
            stmt = stmt.where(tasks.c.config_seq == query.config_seq)
        if query.event_seq is not None:
            stmt = stmt.where(tasks.c.event_seq == query.event_seq)
        if query.since is not None:
            stmt = stmt.where(tasks.c.created >= query.since)
        if query.until is not None:
            stmt = stmt.where(tasks.c.created < query.until)
        stmt = stmt.order_by(SORTS[query.sort], tasks.c.id.desc())
        stmt = stmt.offset(query.skip).limit(query.limit)
        with self.store.read() as conn:
            return [task_store.row_to_task(r._mapping) for r in conn.execute(stmt)]

    def get(self, task_id: int) -> TaskView:
        """One task with its attempts, its firing and the events it emitted."""
        with self.store.read() as conn:
            task = self._get(conn, task_id)
            return TaskView(
                task=task,
                attempts=runs.attempts(conn, task_id),
                trigger=trigger_store.for_task(conn, task_id),
                emitted=tuple(task_store.emitted_events(conn, [task_id])[task_id]),
                config=None
                if task.config_seq is None
                else config_store.configs_by_seq(conn, [task.config_seq]).get(task.config_seq),
            )

    def logs(self, task_id: int, attempt: int | None, offset: int) -> LogPage:
        """The log of `attempt` (the latest if None) from `offset`."""
        with self.store.read() as conn:
            task = self._get(conn, task_id)
            number, text = runs.read_log(conn, task_id, attempt)
        return LogPage(
            task_id=task_id,
            attempt=number,
            status=task.status,
            offset=offset,
            text=text[offset:],
            length=len(text),
        )

    def create(self, body: TaskIn, principal: Principal) -> Task:
        """Store a task made by hand; the model checked the body, this checks the
        semaphores' weights (see `type_warning` for its type)."""
        with self.store.write() as conn:
            runs.check_weights(conn, [(u.name, u.weight, u.capacity) for u in body.semaphores])
            task_id = task_store.insert_task(
                conn,
                task_store.NewTask(
                    type=body.type,
                    params=body.params,
                    author=principal.user,
                    priority=body.priority,
                    # `capacity` only where given: the stored JSON stays as it always was
                    semaphores=[u.model_dump(exclude_none=True) for u in body.semaphores],
                    kill_timeout=body.kill_timeout,
                    max_retries=body.max_retries,
                ),
            )
            task = self._get(conn, task_id)
        for hook in self.on_created:
            hook()
        return task

    def stop(self, task_id: int, principal: Principal) -> TaskStatus:
        """Stop a task; its author, its config's author or an admin may (authz)."""
        with self.store.write() as conn:
            task = self._get(conn, task_id)
            authz.control_task(conn, principal, task, "stop")
            status = runs.request_stop(conn, task_id, self.status_events, utcnow())
            if status is None:
                raise Conflict(
                    f"task {task_id} has already ended ({task.status.value}); nothing to stop"
                )
        return status

    def restart(
        self,
        task_id: int,
        principal: Principal,
        params: Mapping[str, object] | None = None,
    ) -> Restarted:
        """Queue a finished task again; who may is as for `stop`. With `params`, they
        replace or add to the task's params for the new attempt; the earlier attempts keep
        the params they ran with. Checked against the type's declared params, where known."""
        warnings: list[str] = []
        with self.store.write() as conn:
            task = self._get(conn, task_id)
            authz.control_task(conn, principal, task, "restart")
            merged = None
            if params is not None:
                merged = {**task.params, **params}
                warnings = check_params(task.type, self.described(task.type), merged, params)
            if not runs.restart(conn, task_id, utcnow(), params=merged, old_params=task.params):
                raise Conflict(
                    f"task {task_id} is {task.status.value}; only a finished task can be restarted"
                )
        for hook in self.on_created:
            hook()
        return Restarted(
            status=TaskStatus.ENQUEUED, params=merged or task.params, warnings=warnings
        )


@dataclass(frozen=True, kw_only=True)
class Restarted:
    """A task queued again: its status, the params its new attempt runs with, and what
    they were warned of."""

    status: TaskStatus
    params: Mapping[str, object]
    warnings: list[str]


@dataclass
class SemaphoreService:
    store: Store

    def _states(self, conn: Connection, name: str | None = None) -> list[SemaphoreState]:
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
            SemaphoreState(
                name=r.name,
                capacity=r.capacity,
                used=int(used.get(r.name) or 0),
                auto=bool(r.auto),
                owner=r.owner,
                updated=r.updated,
            )
            for r in conn.execute(stmt)
        ]

    def list(self) -> list[SemaphoreState]:
        """Every semaphore, by name."""
        with self.store.read() as conn:
            return self._states(conn)

    def waiting(self) -> dict[str, int]:
        """Semaphore name -> the tasks waiting for room in it."""
        with self.store.read() as conn:
            return task_store.waiting_on_semaphores(conn)

    def use(self, name: str | None = None) -> dict[str, semaphore_use.Use]:
        """Semaphore name -> the tasks holding it and those waiting for it (only `name`'s,
        when given); absent: nobody holds or waits."""
        with self.store.read() as conn:
            return semaphore_use.use(conn, name)

    def get(self, name: str) -> SemaphoreState:
        """One semaphore (NotFound if there is none)."""
        with self.store.read() as conn:
            found = self._states(conn, name)
        if not found:
            raise NotFound(f"no semaphore {name!r}", field="name")
        return found[0]

    def put(self, name: str, body: SemaphoreIn, principal: Principal) -> SemaphoreState:
        """Create a semaphore or set its capacity (authz: its owner, or a claim by one of
        its users while it has none; the caller then becomes its owner)."""
        capacity = body.capacity
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
            return self._states(conn, name)[0]

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
