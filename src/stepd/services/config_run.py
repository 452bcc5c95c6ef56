"""Running a config now, by hand, for one binding (`POST /api/v1/configs/{id}/run`).

The task is the one a firing with that binding would launch: the same params (the
binding, the config's task_params rendered on it) and the same copy of the config into a
task row (store.tasks.insert_for_config, which the reactor's firings use too). Only the
origin differs: no event fired it, so no trigger is recorded; the task says who ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from stepd.domain.configs import ActionConfig, limit_problem
from stepd.domain.firing import manual_firing, task_params_for, task_semaphores
from stepd.domain.tasks import Task
from stepd.domain.templates import TemplateProblem
from stepd.errors import Conflict, InvalidInput
from stepd.services import authz
from stepd.services.configs import ConfigService
from stepd.store import dbapi
from stepd.store import tasks as task_store
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

RUN_FIELDS = ("params", "dry_run")


@dataclass(frozen=True, kw_only=True)
class PlannedTask:
    """The task a run would make (`dry_run`), as `POST /api/v1/tasks` would take it."""

    config: ActionConfig
    params: Mapping[str, object]  # the binding and the rendered task_params
    binding: Mapping[str, object]  # the free params, as given
    by: str  # who asked
    kind: str = "manual"  # or "backfill": a binding of a backfill
    # The semaphores the task takes, names rendered (None: the config's, no template)
    semaphores: Sequence[Mapping[str, object]] | None = None

    def to_json(self) -> dict[str, object]:
        spec = self.config.spec
        return {
            "type": spec.task_type,
            "params": dict(self.params),
            "author": self.config.author,
            "priority": spec.priority,
            "semaphores": [u.to_json() for u in spec.semaphores]
            if self.semaphores is None
            else [dict(u) for u in self.semaphores],
            "kill_timeout": spec.kill_timeout,
            "max_retries": spec.max_retries,
            "config_id": self.config.id,
            "config_version": self.config.version,
            # as GET /tasks/{id} will say it
            "trigger": {"kind": self.kind, "by": self.by, "binding": dict(self.binding)},
        }


def plan_binding(config: ActionConfig, params: object, by: str) -> PlannedTask:
    """The task `config` makes for the binding `params` (400 naming what is wrong), as a
    firing with that binding would make it; whether it may run is the caller's to check."""
    firing = manual_firing(config.spec, params)
    try:
        rendered = task_params_for(config.spec, firing, None)
        uses = task_semaphores(config.spec, firing, None)
    except TemplateProblem as exc:
        raise InvalidInput(
            f"the config's {exc.field} fails on this binding: {exc.message}", field=exc.field
        ) from exc
    return PlannedTask(
        config=config, params=rendered, binding=firing.binding, by=by, semaphores=uses
    )


def insert_planned(
    conn: Connection, plan: PlannedTask, now: datetime, *, backfill_id: int | None = None
) -> int:
    """Store the ENQUEUED task of `plan`, marked as made by hand (by a backfill, given its
    id); the task's id."""
    made_by: dict[str, object] = {"by": plan.by, "binding": dict(plan.binding)}
    if backfill_id is not None:
        made_by["backfill"] = backfill_id
    return task_store.insert_for_config(
        conn,
        plan.config,
        params_json=dbapi.to_json(dict(plan.params)),
        event_seq=None,
        created=dbapi.time_param(conn, now),
        made_by=made_by,
        backfill_id=backfill_id,
        semaphores=plan.semaphores,
    )


def known_fields(body: Mapping[str, object], fields: Sequence[str], what: str) -> bool:
    """Refuse a field `body` should not have (400 naming it); its `dry_run` (default
    false), which a run and a backfill both take."""
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; {what} has {', '.join(fields)}", field=unknown[0]
        )
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false", field="dry_run")
    return dry_run


def _parse(body: Mapping[str, object]) -> tuple[object, bool]:
    return body.get("params", {}), known_fields(body, RUN_FIELDS, "a run")


@dataclass
class ConfigRunService:
    store: Store
    configs: ConfigService
    # Runner wake-ups, shared with TaskService.on_created (the daemon adds to that list).
    on_created: list[Callable[[], None]] = field(default_factory=list)

    def check(self, config: ActionConfig, principal: Principal) -> None:
        """Whether `principal` may run `config` now (403, 409 when it is disabled)."""
        authz.change_config(principal, config)
        if not config.fires:
            why = "paused" if config.paused is not None else "enabled: false"
            raise Conflict(
                f"config {config.id} is disabled ({why}); `stepd configs enable {config.id}` "
                "(or enabled: true in the config) before running it",
                field="id",
            )
        problem = limit_problem(config.spec)
        if problem is not None:
            raise problem

    def plan(self, config: ActionConfig, params: object, principal: Principal) -> PlannedTask:
        """The task a run of `config` with `params` makes, or why it cannot (400, 409)."""
        self.check(config, principal)
        return plan_binding(config, params, principal.user)

    def run(
        self, config_id: str, body: Mapping[str, object], principal: Principal
    ) -> PlannedTask | Task:
        """Run the config now (a Task), or with `dry_run` only say what it would make."""
        params, dry_run = _parse(body)
        if dry_run:  # a read: it writes nothing, and takes no writer's turn
            with self.store.read() as conn:
                return self.plan(self.configs.get_in(conn, config_id), params, principal)
        with self.store.write() as conn:
            # Locked: a pause that commits meanwhile waits, so no run follows a pause.
            plan = self.plan(self.configs.get_in(conn, config_id, lock=True), params, principal)
            task_id = insert_planned(conn, plan, utcnow())
            task = task_store.get_task(conn, task_id)
        assert task is not None  # made in the transaction that just committed
        for hook in self.on_created:
            hook()
        return task
