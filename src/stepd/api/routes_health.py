"""`GET /healthz`: the deployment's checks (services/health.py), for probes and alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd.api.context import ctx

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="ok, degraded or down, with each check: 200 unless down (503)",
)
async def healthz(request: Request) -> JSONResponse:
    context = ctx(request)
    health = await run_in_threadpool(context.health.run)
    body = health.as_json(context.store.backend)
    return JSONResponse(body, 503 if health.status == "down" else 200)
