"""What every route needs, built once per app and reached through `request.app.state`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from stepd.errors import QueryTimeout, Unauthorized
from stepd.instruments import Instruments
from stepd.runner.registry import TaskType
from stepd.services.auth import Authenticator, token_from_header
from stepd.services.backfills import BackfillService
from stepd.services.config_run import ConfigRunService
from stepd.services.configs import ConfigService
from stepd.services.deployment import DeploymentService
from stepd.services.event_descs import EventDescService
from stepd.services.events import EventService
from stepd.services.fleet import FleetService
from stepd.services.health import HealthService
from stepd.services.run_history import RunHistoryService
from stepd.services.schedules import ScheduleService
from stepd.services.story import StoryService
from stepd.services.tasks import SemaphoreService, TaskService
from stepd.services.trial import TrialService
from stepd.settings import Settings
from stepd.store.engine import Store, read_deadline
from stepd.store.runs import StatusEvents
from stepd.store.tally import Tally
from stepd.store.tokens import Principal


@dataclass
class AppContext:
    settings: Settings
    store: Store
    auth: Authenticator
    events: EventService
    event_descs: EventDescService
    configs: ConfigService
    config_runs: ConfigRunService  # a config run by hand
    backfills: BackfillService  # a config run for many bindings
    stories: StoryService
    trial: TrialService
    tasks: TaskService
    run_history: RunHistoryService  # a config's tasks and success rate (the config page)
    semaphores: SemaphoreService
    task_types: dict[str, TaskType]  # what --tasks declared (empty: types unknown here)
    status_events: StatusEvents  # how finished tasks report themselves
    health: HealthService
    fleet: FleetService
    deployment: DeploymentService
    schedules: ScheduleService
    tally: Tally  # the counts of stored facts behind /metrics, kept between scrapes
    instruments: Instruments  # this process's latencies (HTTP), and its reactor's

    def close(self) -> None:
        """Ends what the context holds open: the store's writer thread, then the store.
        Its builder calls it (daemon.py's `serve`, a test), after the daemon stopped."""
        if self.events.writer is not None:
            self.events.writer.close()
        self.store.close()


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.stepd
    return context


async def authenticate(request: Request, token: str) -> Principal:
    """Whom `token` speaks for (401 if nobody; 429 once this client sent too many bad ones)."""
    auth = ctx(request).auth
    # The cache answers without I/O; only a miss goes to the store, off the event loop.
    cached = auth.cached(token)
    if cached is not None:
        return cached
    # Bad tokens are counted per address as the server sees it: behind a reverse proxy,
    # the one uvicorn takes from X-Forwarded-For when it trusts the proxy.
    client = request.client.host if request.client is not None else None
    return await run_in_threadpool(auth.principal, token, client)


async def writer(request: Request) -> Principal:
    """The caller of a write: a valid token is required."""
    token = token_from_header(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "this call changes data and needs 'Authorization: OAuth <token>'; "
            "create a token with `stepd tokens create USER`"
        )
    return await authenticate(request, token)


async def reader(request: Request) -> Principal | None:
    """The caller of a read: anonymous unless the server runs with --private-reads."""
    token = token_from_header(request.headers.get("authorization"))
    if token is None:
        if ctx(request).settings.private_reads:
            raise Unauthorized(
                "this server requires a token for reads: 'Authorization: OAuth <token>'"
            )
        return None
    return await authenticate(request, token)


P = ParamSpec("P")
T = TypeVar("T")


async def short_read(
    request: Request, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a read that is short most of the time: first inline on SQLite, else (and when
    it turns out not to be short) in the threadpool.

    A SQLite read of an index takes about a tenth of a millisecond, less than the
    hop to a worker thread and back; in WAL mode it never waits for a writer. But not
    every read is short: a `params__` filter without a name walks the events in seq
    order, and a value no event has walks them all. Inline, such a read would hold the
    event loop (every request, /healthz) up to the statement timeout. So the inline try
    gets `api_loop_read_seconds` (50 ms) through the same progress handler as the
    statement timeout; past it, the read is run again in the threadpool with the full
    timeout. A PostgreSQL read waits on the network: always in the threadpool.
    """
    context = ctx(request)
    store = context.store
    if store.reads_in_process and store.read_timeout_seconds is not None:
        try:
            with read_deadline(context.settings.api_loop_read_seconds):
                return function(*args, **kwargs)
        except QueryTimeout:
            pass  # not a short read: the threadpool's turn (a read has nothing to undo)
    return await run_in_threadpool(function, *args, **kwargs)
