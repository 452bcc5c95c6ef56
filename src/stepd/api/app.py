"""The API's services from `Settings` (`build_context`) and the FastAPI app on them."""

from __future__ import annotations

from fastapi import FastAPI

from stepd import __version__
from stepd.api import (
    docs_pages,
    errors,
    openapi,
    routes_backfills,
    routes_configs,
    routes_crypta,
    routes_event_desc,
    routes_events,
    routes_health,
    routes_metrics,
    routes_schedules,
    routes_settings,
    routes_story,
    routes_tasks,
    routes_whoami,
    routes_workers,
)
from stepd.api.context import AppContext
from stepd.api.headers import SecurityHeaders
from stepd.api.observe import Observe
from stepd.api.urlcheck import RefuseNul
from stepd.instruments import instruments
from stepd.runner.registry import load_task_types
from stepd.services.auth import Authenticator
from stepd.services.backfills import BackfillService
from stepd.services.config_run import ConfigRunService
from stepd.services.configs import ConfigService
from stepd.services.deployment import DeploymentService
from stepd.services.event_descs import DescCache, EventDescService
from stepd.services.events import EventService
from stepd.services.fleet import FleetService
from stepd.services.health import HealthService
from stepd.services.run_history import RunHistoryService
from stepd.services.schedules import ScheduleService
from stepd.services.story import StoryService
from stepd.services.tasks import SemaphoreService, TaskService
from stepd.services.trial import TrialService
from stepd.settings import Settings
from stepd.store.engine import Store, open_store
from stepd.store.lookup import JoinBudget
from stepd.store.runs import StatusEvents
from stepd.store.tally import Tally
from stepd.ui import routes as ui_routes


def build_context(settings: Settings, store: Store | None = None) -> AppContext:
    store = store or open_store(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        statement_timeout_seconds=settings.api_statement_timeout_seconds,
    )
    task_types = load_task_types(settings.tasks)
    descs = DescCache()
    fleet = FleetService(
        store, heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds, own_types=task_types
    )
    status_events = StatusEvents(name=settings.task_event_name, environment=settings.environment)
    configs = ConfigService(
        store,
        type_warning=fleet.type_warning,
        status_events=status_events,
        reported_events=fleet.reported_events,
    )
    tasks = TaskService(
        store, status_events, type_warning=fleet.type_warning, described=fleet.described
    )
    config_runs = ConfigRunService(store, configs, on_created=tasks.on_created)
    return AppContext(
        settings=settings,
        store=store,
        auth=Authenticator(store, cache_seconds=settings.token_cache_seconds),
        events=EventService(
            store,
            max_events_per_request=settings.max_events_per_request,
            descs=descs,
            writer=store.writer(),  # the store's writer thread, where it needs one
        ),
        event_descs=EventDescService(store, cache=descs),
        configs=configs,
        # its tasks wake the runner as hand-made ones do: the same list of hooks
        config_runs=config_runs,
        backfills=BackfillService(
            store, configs, config_runs, status_events, on_created=tasks.on_created
        ),
        stories=StoryService(
            store, join_budget=JoinBudget.of(settings), live_types=fleet.live_types
        ),
        trial=TrialService(store, configs, scan_limit=settings.trial_scan_limit),
        tasks=tasks,
        run_history=RunHistoryService(store, tasks),
        semaphores=SemaphoreService(store),
        task_types=task_types,
        status_events=status_events,
        # The broker is checked where this server dispatches to it.
        health=HealthService(
            store,
            broker_url=settings.broker_url if settings.executor == "celery" else None,
            fleet=fleet,
        ),
        fleet=fleet,
        deployment=DeploymentService(store),
        schedules=ScheduleService(store),
        tally=Tally(store),
        instruments=instruments(),
    )


def create_app(context: AppContext) -> FastAPI:
    """The API on `context`'s services: a leaf. It starts nothing and closes nothing; the
    daemon (daemon.py) starts the reactor, the executor and the clock around it, serves
    it, and closes the context after."""
    app = FastAPI(
        title="stepd",
        version=__version__,
        description="Events in, tasks out: an open implementation of the STEP API.",
        docs_url=None,  # served by docs_pages, from local files
        redoc_url=None,
    )
    app.state.stepd = context
    # RefuseNul inside SecurityHeaders (the last added is the outermost): its 400s carry
    # the security headers too.
    app.add_middleware(RefuseNul)
    app.add_middleware(SecurityHeaders)
    # Outermost: it times every answer, the middlewares' own 400s too.
    app.add_middleware(Observe, seconds=context.instruments.http_seconds)
    errors.install(app)
    docs_pages.install(app)
    app.include_router(routes_events.router)
    app.include_router(routes_event_desc.router)
    app.include_router(routes_configs.router)
    app.include_router(routes_story.router)
    app.include_router(routes_crypta.router)
    app.include_router(routes_tasks.router)
    app.include_router(routes_workers.router)
    app.include_router(routes_whoami.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_health.router)
    app.include_router(routes_settings.router)
    app.include_router(routes_schedules.router)
    app.include_router(routes_backfills.router)
    app.include_router(ui_routes.router)
    openapi.install(app)

    return app
