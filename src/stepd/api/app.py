"""The FastAPI app factory."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import __version__
from stepd.api import (
    docs_pages,
    errors,
    openapi,
    routes_configs,
    routes_crypta,
    routes_event_desc,
    routes_events,
    routes_metrics,
    routes_story,
    routes_tasks,
    routes_whoami,
)
from stepd.api.context import AppContext, ctx
from stepd.api.headers import SecurityHeaders
from stepd.api.urlcheck import RefuseNul
from stepd.clock import Clock
from stepd.errors import InvalidInput, StoreUnavailable
from stepd.proc.wakepipe import WakePipe
from stepd.reactor.process import ReactorConfig, ReactorProcess
from stepd.reactor.reactor import Reactor, ReactorLoop
from stepd.runner.horse import HorseLimits
from stepd.runner.local import LocalConfig, LocalExecutor
from stepd.runner.registry import load_task_types
from stepd.runner.worker import WorkerSettings
from stepd.services.auth import Authenticator
from stepd.services.configs import ConfigService
from stepd.services.event_descs import DescCache, EventDescService
from stepd.services.events import EventService
from stepd.services.story import StoryService
from stepd.services.tasks import SemaphoreService, TaskService
from stepd.services.trial import TrialService
from stepd.settings import Settings
from stepd.store.engine import Store, open_store
from stepd.store.lookup import JoinBudget
from stepd.store.notify import EVENTS_CHANNEL
from stepd.store.runs import StatusEvents
from stepd.ui import routes as ui_routes


def join_budget(settings: Settings) -> JoinBudget:
    """What one config's evaluation on one event may cost (the reactor's, a story's)."""
    return JoinBudget(rows=settings.join_budget_rows, steps=settings.join_budget_steps)


def build_context(settings: Settings, store: Store | None = None) -> AppContext:
    store = store or open_store(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        statement_timeout_seconds=settings.api_statement_timeout_seconds,
    )
    task_types = load_task_types(settings.tasks)
    descs = DescCache()
    configs = ConfigService(store, known_types=set(task_types) if settings.tasks else None)
    status_events = StatusEvents(name=settings.task_event_name, environment=settings.environment)
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
        stories=StoryService(store, join_budget=join_budget(settings)),
        trial=TrialService(store, configs, scan_limit=settings.trial_scan_limit),
        tasks=TaskService(store, status_events, task_types),
        semaphores=SemaphoreService(store),
        task_types=task_types,
        status_events=status_events,
    )


def create_app(settings: Settings, context: AppContext | None = None) -> FastAPI:
    """An app serving the API on `settings`' store (opened and migrated here if not given)."""
    context = context or build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loop = None
        listener = None
        executor = None
        if settings.executor == "local" and settings.workers > 0:
            executor = LocalExecutor(
                LocalConfig(
                    database_url=context.store.url,
                    tasks=settings.tasks,
                    sqlite_synchronous=settings.sqlite_synchronous,
                    worker=WorkerSettings(
                        status_events=context.status_events,
                        horse=HorseLimits(max_tasks=settings.horse_max_tasks),
                        # Woken when this server makes tasks; the poll finds the rest
                        # (retries coming due, tasks another replica made).
                        poll_interval_seconds=0.1,
                    ),
                ),
                workers=settings.workers,
                heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
            )
            executor.start()
            context.tasks.on_created.append(executor.notify)
        dispatcher = None
        # With the reactor in a process of its own, it wakes the dispatcher across processes.
        dispatcher_wake = WakePipe() if settings.reactor and settings.reactor_process else None
        if settings.executor == "celery":
            from stepd.runner.celery_app import make_celery
            from stepd.runner.dispatcher import Dispatcher

            if not settings.broker_url:
                raise InvalidInput("the celery executor needs a broker URL (--broker)")
            dispatcher = Dispatcher(
                context.store,
                make_celery(settings.broker_url, queue=settings.queue),
                context.status_events,
                heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
                # A message no worker took within twice the heartbeat timeout is sent again.
                resend_after_seconds=max(10.0, 2 * settings.heartbeat_timeout_seconds),
                queue=settings.queue,
                _wake=threading.Event() if dispatcher_wake is None else dispatcher_wake,
            )
            dispatcher.start()
            context.tasks.on_created.append(dispatcher.notify)
        reactor_process = None
        if settings.reactor and settings.reactor_process:
            task_wakes = [] if executor is None else list(executor.wakes)
            if dispatcher is not None and dispatcher_wake is not None:
                task_wakes.append(dispatcher_wake)
            reactor_process = ReactorProcess(
                ReactorConfig(
                    database_url=context.store.url,
                    sqlite_synchronous=settings.sqlite_synchronous,
                    poll_interval_seconds=settings.reactor_poll_interval_seconds,
                    join_budget_rows=settings.join_budget_rows,
                    join_budget_steps=settings.join_budget_steps,
                ),
                task_wakes,
            )
            reactor_process.start()
            context.events.on_stored.append(reactor_process.notify)
        elif settings.reactor:
            loop = ReactorLoop(
                Reactor(context.store, join_budget=join_budget(settings)),
                poll_interval_seconds=settings.reactor_poll_interval_seconds,
            )
            context.events.on_stored.append(loop.notify)
            if dispatcher is not None:
                loop.reactor.on_tasks.append(dispatcher.notify)
            if executor is not None:
                loop.reactor.on_tasks.append(executor.notify)
            loop.start()
            listener = context.store.listener_for(EVENTS_CHANNEL, loop.notify)
            if listener is not None:
                listener.start()
        clock = Clock(context.events) if settings.clock else None
        if clock is not None:
            clock.start()
        try:
            yield
        finally:
            if clock is not None:
                clock.stop()
            if executor is not None:
                context.tasks.on_created.remove(executor.notify)
                executor.stop()
            if dispatcher is not None:
                context.tasks.on_created.remove(dispatcher.notify)
                dispatcher.stop()
            if reactor_process is not None:
                context.events.on_stored.remove(reactor_process.notify)
                reactor_process.stop()
            if listener is not None:
                listener.stop()
            if loop is not None:
                context.events.on_stored.remove(loop.notify)
                loop.stop()
            if context.events.writer is not None:
                context.events.writer.close()
            context.store.close()

    app = FastAPI(
        title="stepd",
        version=__version__,
        description="Events in, tasks out: an open implementation of the STEP API.",
        lifespan=lifespan,
        docs_url=None,  # served by docs_pages, from local files
        redoc_url=None,
    )
    app.state.stepd = context
    # RefuseNul inside SecurityHeaders (the last added is the outermost): its 400s carry
    # the security headers too.
    app.add_middleware(RefuseNul)
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    docs_pages.install(app)
    app.include_router(routes_events.router)
    app.include_router(routes_event_desc.router)
    app.include_router(routes_configs.router)
    app.include_router(routes_story.router)
    app.include_router(routes_crypta.router)
    app.include_router(routes_tasks.router)
    app.include_router(routes_whoami.router)
    app.include_router(routes_metrics.router)
    app.include_router(ui_routes.router)
    openapi.install(app)

    @app.get("/healthz", tags=["operations"], summary="200 when the store answers and has room")
    async def healthz(request: Request) -> JSONResponse:
        store = ctx(request).store
        try:
            await run_in_threadpool(store.ping)
        except StoreUnavailable as exc:
            return JSONResponse({"status": "unavailable", "message": exc.message}, 503)
        if store.problem is not None:
            # A write failed for want of space and none has committed since.
            body = {
                "status": "degraded",
                "store": store.backend,
                "problem": store.problem,
                "message": f"the store is {store.problem}: writes fail until space is freed",
            }
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ok", "store": store.backend})

    return app
