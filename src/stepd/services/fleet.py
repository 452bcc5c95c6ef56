"""The fleet as the API sees it: which workers are live, what they run, which task types
the deployment knows (the union of what its workers announced, and the server's own
--tasks), and the warning for a type nobody announced.

A worker is `live` while it beats (store/workers.py); `gone` once it stopped cleanly
or has not beaten for the heartbeat timeout (a killed worker writes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from stepd.errors import NotFound
from stepd.runner.fleet import BEAT_SECONDS, MISSED_BEATS
from stepd.runner.registry import TaskType
from stepd.store import deployment
from stepd.store import workers as worker_store
from stepd.store.engine import Store
from stepd.timeutil import utcnow

State = Literal["live", "gone"]
MAX_NAMED = 20  # task types a warning names


@dataclass(frozen=True, kw_only=True)
class RunningAttempt:
    task_id: int
    type: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class WorkerView:
    row: worker_store.WorkerRow
    state: State
    running: tuple[RunningAttempt, ...]


def runs_on(worker_name: str, task_worker: str) -> bool:
    """Whether an attempt recorded as run by `task_worker` is `worker_name`'s: its own name,
    or one of its pool's processes (a Celery worker's are `NAME/PID`)."""
    return task_worker == worker_name or task_worker.startswith(worker_name + "/")


@dataclass
class FleetService:
    store: Store
    heartbeat_timeout_seconds: float = 30.0
    # The types this server was given with --tasks: known even before a worker announces them.
    own_types: Mapping[str, TaskType] = field(default_factory=dict)

    @staticmethod
    def _state(row: worker_store.WorkerRow, now: datetime, timeout: float) -> State:
        if row.stopped is not None:
            return "gone"
        # Never sooner than a few missed beats, whatever the timeout (it may be seconds).
        timeout = max(timeout, MISSED_BEATS * BEAT_SECONDS)
        return "gone" if now - row.last_seen > timedelta(seconds=timeout) else "live"

    def _views(self, name: str | None = None, *, running: bool = True) -> list[WorkerView]:
        """Every worker (or the one named), read in one snapshot with its state and, when
        `running`, the attempts it runs now (a read the task-type answers need not make)."""
        now = utcnow()
        with self.store.read() as conn:
            if name is None:
                rows = worker_store.list_workers(conn)
            else:
                found = worker_store.get_worker(conn, name)
                rows = [] if found is None else [found]
            # The deployment's stored timeout wins over this server's own.
            timeout = deployment.heartbeat_timeout(conn, self.heartbeat_timeout_seconds)
            attempts = worker_store.running(conn) if running else {}
        views = []
        for row in rows:
            mine = [
                RunningAttempt(task_id=task_id, type=type_, attempt=attempt)
                for worker, held in attempts.items()
                if runs_on(row.name, worker)
                for task_id, type_, attempt in held
            ]
            state = self._state(row, now, timeout)
            views.append(WorkerView(row=row, state=state, running=tuple(mine)))
        return views

    def workers(self, *, state: State | None = None, running: bool = True) -> list[WorkerView]:
        """Every worker the store knows of (gone ones for a day), live ones first."""
        views = [v for v in self._views(running=running) if state is None or v.state == state]
        return sorted(views, key=lambda v: v.state != "live")  # stable: newest first within

    def get(self, name: str) -> WorkerView:
        views = self._views(name)
        if not views:
            raise NotFound(f"no worker named {name!r}", field="name")
        return views[0]

    def task_types(self) -> list[dict[str, Any]]:
        """Every task type known here, by name: described by the newest live worker that
        announced it (else the newest recently seen one, else this server's --tasks), with
        the live workers that run it."""
        found: dict[str, dict[str, Any]] = {}
        # Live first, then newest first: the first description wins.
        views = self.workers(running=False)
        for view in views:
            for described in view.row.task_types:
                name = str(described.get("name"))
                entry = found.setdefault(
                    name, {**described, "workers": [], "live": False, "last_seen": None}
                )
                if view.state == "live":
                    entry["workers"].append(view.row.name)
                    entry["live"] = True
                seen = view.row.last_seen
                if entry["last_seen"] is None or seen > entry["last_seen"]:
                    entry["last_seen"] = seen
        for name, declared in self.own_types.items():
            entry = found.setdefault(
                name, {**declared.to_json(), "workers": [], "live": False, "last_seen": None}
            )
            entry["server"] = True
        return [found[name] for name in sorted(found)]

    def described(self, task_type: str) -> dict[str, Any] | None:
        """`task_type` as `task_types()` describes it (kind, params, ...); None when no
        worker or --tasks describes it."""
        return next((t for t in self.task_types() if t["name"] == task_type), None)

    def live_types(self) -> frozenset[str]:
        """The task types some live worker runs now."""
        return frozenset(
            str(t.get("name"))
            for v in self.workers(state="live", running=False)
            for t in v.row.task_types
        )

    def celery_routes(self) -> dict[str, frozenset[str]]:
        """Task type -> the queues of the live Celery workers that run it (runner/routes.py)."""
        routes: dict[str, set[str]] = {}
        for view in self.workers(state="live", running=False):
            if view.row.executor != "celery" or view.row.queue is None:
                continue
            for described in view.row.task_types:
                routes.setdefault(str(described.get("name")), set()).add(view.row.queue)
        return {name: frozenset(queues) for name, queues in routes.items()}

    def reported_events(self) -> frozenset[str]:
        """The status events task types name for themselves (`status_event=`)."""
        return frozenset(
            str(t["status_event"])
            for v in self.workers(running=False)
            for t in v.row.task_types
            if t.get("status_event")
        )

    def type_warning(self, task_type: str) -> str | None:
        """Why a config or task of `task_type` may not run (None: a live worker runs it).

        Not an error: the original STEP took configs for any task type, and a worker that
        runs it may simply not have started yet.
        """
        known = {t["name"]: t for t in self.task_types()}
        entry = known.get(task_type)
        if entry is not None and entry["live"]:
            return None
        if entry is None:
            listed = sorted(known)
            names = ", ".join(listed[:MAX_NAMED]) or "none"
            if len(listed) > MAX_NAMED:  # a big fleet: the answer stays readable
                names += f" and {len(listed) - MAX_NAMED} more"
            return (
                f"no worker has announced task type {task_type!r} (the fleet runs: {names}); "
                "a worker that does not know it ends its tasks EXCEPTION: start the workers "
                "with --tasks naming the module that declares it"
            )
        if entry.get("server") and not entry["workers"] and entry["last_seen"] is None:
            return (
                f"no live worker runs task type {task_type!r} (this server declares it, "
                "but no worker has announced it yet)"
            )
        return f"no live worker runs task type {task_type!r} now (last seen {entry['last_seen']})"
