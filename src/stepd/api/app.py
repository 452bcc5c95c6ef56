"""The FastAPI app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import __version__
from stepd.api import errors, routes_event_desc, routes_events
from stepd.api.context import AppContext, ctx
from stepd.errors import StoreUnavailable
from stepd.services.auth import Authenticator
from stepd.services.event_descs import EventDescService
from stepd.services.events import EventService
from stepd.settings import Settings
from stepd.store.engine import Store, open_store


def build_context(settings: Settings, store: Store | None = None) -> AppContext:
    store = store or open_store(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    return AppContext(
        settings=settings,
        store=store,
        auth=Authenticator(store, cache_seconds=settings.token_cache_seconds),
        events=EventService(store, max_events_per_request=settings.max_events_per_request),
        event_descs=EventDescService(store),
    )


def create_app(settings: Settings, context: AppContext | None = None) -> FastAPI:
    """An app serving the API on `settings`' store (opened and migrated here if not given)."""
    context = context or build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        context.store.close()

    app = FastAPI(
        title="stepd",
        version=__version__,
        description="Events in, tasks out: an open implementation of the STEP API.",
        lifespan=lifespan,
    )
    app.state.stepd = context
    errors.install(app)
    app.include_router(routes_events.router)
    app.include_router(routes_event_desc.router)

    @app.get("/healthz", tags=["operations"], summary="200 when the store answers")
    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(ctx(request).store.ping)
        except StoreUnavailable as exc:
            return JSONResponse({"status": "unavailable", "message": exc.message}, 503)
        return JSONResponse({"status": "ok", "store": ctx(request).store.dialect})

    return app
