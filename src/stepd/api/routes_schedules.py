"""`/api/v1/schedules`: cron schedules, each tick a `schedule` event (stepd/scheduler.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import shapes
from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.domain.schedules import Schedule
from stepd.store.tokens import Principal
from stepd.timeutil import iso

router = APIRouter(prefix="/api/v1", tags=["schedules"])


def schedule_out(schedule: Schedule) -> dict[str, Any]:
    spec = schedule.spec
    return shapes.ScheduleOut(
        name=spec.name,
        cron=spec.cron,
        timezone=spec.timezone,
        params=dict(spec.params),
        enabled=spec.enabled,
        catch_up=spec.catch_up,
        author=schedule.author,
        created=iso(schedule.created),
        updated=iso(schedule.updated),
        next_tick=iso(schedule.next_tick) if spec.enabled else None,
        last_tick=None if schedule.last_tick is None else iso(schedule.last_tick),
    ).model_dump(mode="json")


def _one(schedule: Schedule) -> JSONResponse:
    return JSONResponse({"result": schedule_out(schedule)})


@router.post(
    "/schedules",
    openapi_extra=_doc_body(shapes.ScheduleIn),
    summary="Create a cron schedule",
    response_model=shapes.Result[shapes.ScheduleOut],
)
async def create_schedule(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    return _one(await run_in_threadpool(c.schedules.create, body, principal))


@router.get(
    "/schedules",
    summary="Every schedule, by name",
    response_model=shapes.Result[list[shapes.ScheduleOut]],
)
async def list_schedules(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    found = await run_in_threadpool(ctx(request).schedules.list)
    return JSONResponse({"result": [schedule_out(s) for s in found]})


@router.get(
    "/schedules/{name}",
    summary="One schedule, with its next and last tick",
    response_model=shapes.Result[shapes.ScheduleOut],
)
async def get_schedule(
    name: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    return _one(await run_in_threadpool(ctx(request).schedules.get, name))


@router.put(
    "/schedules/{name}",
    openapi_extra=_doc_body(shapes.ScheduleChangeIn),
    summary="Change some fields of a schedule (its author or an admin)",
    response_model=shapes.Result[shapes.ScheduleOut],
)
async def update_schedule(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    return _one(await run_in_threadpool(c.schedules.update, name, body, principal))


@router.delete(
    "/schedules/{name}",
    summary="Delete a schedule: it ticks no more (its author or an admin)",
    response_model=shapes.ScheduleDeleted,
)
async def delete_schedule(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    await run_in_threadpool(ctx(request).schedules.delete, name, principal)
    return {"name": name}
