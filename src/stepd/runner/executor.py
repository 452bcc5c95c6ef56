"""The executor seam: how a deployment runs its tasks, chosen by name from one registry.

An executor has two sides. In `stepd serve` it is an `Executor` (start, wake, stop): the
local one supervises worker processes on this machine, the Celery one dispatches task
ids to a broker. In `stepd worker` it is the executor's `work` function, which runs the
worker processes of that executor until the process is asked to stop. `none` runs
nothing here (an API replica whose tasks other machines run).

A new executor (Kubernetes jobs, say) is one module with a `Spec` and one line in
`EXECUTORS`: the settings, both CLIs and the daemon look executors up here and nowhere
else ask which one it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from stepd.errors import InvalidInput

if TYPE_CHECKING:
    from stepd.proc.wakepipe import WakePipe
    from stepd.runner.worker import WorkerSettings
    from stepd.settings import Settings
    from stepd.store.engine import Store
    from stepd.store.runs import StatusEvents


class Executor(Protocol):
    """What `stepd serve` runs of an executor."""

    def start(self) -> None:
        """Start its threads and processes (returns at once)."""

    def wake(self) -> None:
        """Tasks were made in this process: look for them now, not at the next poll."""

    def wakeups(self) -> list[WakePipe]:
        """What another process (the reactor's own) sets when it makes tasks."""

    def stop(self) -> None:
        """Let the attempts in hand finish (bounded), then stop everything it started."""


@dataclass(frozen=True, kw_only=True)
class ServerSide:
    """What an executor in `stepd serve` is built from."""

    settings: Settings
    store: Store
    status_events: StatusEvents
    cross_process: bool  # the reactor runs in a process of its own: wake through pipes


@dataclass(frozen=True, kw_only=True)
class Spec:
    """One executor: its name, its `stepd serve` side and its `stepd worker` side."""

    name: str
    description: str
    # None: it runs nothing in `stepd serve` (given these settings).
    serve: Callable[[ServerSide], Executor | None]
    # Runs this executor's workers until asked to stop; None: `stepd worker` has none.
    work: Callable[[Settings, WorkerSettings], None] | None = None
    needs_broker: bool = False


def _local(side: ServerSide) -> Executor | None:
    from stepd.runner.local import serve_side

    return serve_side(side)


def _local_work(settings: Settings, worker: WorkerSettings) -> None:
    from stepd.runner.local import work

    work(settings, worker)


def _celery(side: ServerSide) -> Executor | None:
    from stepd.runner.dispatcher import serve_side

    return serve_side(side)


def _celery_work(settings: Settings, worker: WorkerSettings) -> None:
    from stepd.runner.celery_app import work

    work(settings, worker)


EXECUTORS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(
            name="local",
            description="worker processes on this machine",
            serve=_local,
            work=_local_work,
        ),
        Spec(
            name="celery",
            description="dispatch to Celery workers on any machine",
            serve=_celery,
            work=_celery_work,
            needs_broker=True,
        ),
        Spec(name="none", description="run no tasks here", serve=lambda _side: None),
    )
}


def spec(name: str, *, for_worker: bool = False) -> Spec:
    """The executor named `name`, or InvalidInput listing the names there are."""
    found = EXECUTORS.get(name)
    names = [n for n, s in EXECUTORS.items() if s.work is not None or not for_worker]
    if found is None or (for_worker and found.work is None):
        raise InvalidInput(
            f"--executor must be {', '.join(names[:-1])} or {names[-1]}, not {name!r}",
            field="executor",
        )
    return found


def check(settings: Settings, *, for_worker: bool = False) -> Spec:
    """The executor of `settings`, checked for what it needs."""
    found = spec(settings.executor, for_worker=for_worker)
    if found.needs_broker and not settings.broker_url:
        raise InvalidInput(
            f"--executor {found.name} needs --broker (or STEPD_BROKER_URL)", field="broker_url"
        )
    return found
