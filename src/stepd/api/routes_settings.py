"""`/api/v1/settings`: what every process of the deployment agrees on (store/deployment.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.shapes import SettingsIn
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["operations"])


@router.get("/settings", summary="The deployment's settings: stored, or their defaults")
async def show_settings(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, Any]]]:
    return {"result": await run_in_threadpool(ctx(request).deployment.show)}


@router.put(
    "/settings",
    openapi_extra=_doc_body(SettingsIn),
    summary='Change some for every server and worker (admin): {"status_event_name": ...}',
)
async def set_settings(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, list[dict[str, Any]]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    return {"result": await run_in_threadpool(c.deployment.set, body, principal)}
