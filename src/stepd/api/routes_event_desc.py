"""`/api/v1/event_desc`: the registry of event names and their fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.render import event_desc_json
from stepd.api.routes_events import _doc_body
from stepd.domain.events import NAME_PATTERN as EVENT_NAME
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["event descriptions"])

ParamName = Annotated[str, Field(min_length=1)]


class EventDescIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the server refuses unknown fields

    name: str = Field(pattern=EVENT_NAME.pattern)
    description: str = ""
    required_fields: list[ParamName] | None = []
    optional_fields: list[ParamName] | None = []
    public: bool = False
    list_in_idm: bool = False


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class EventDescChangeIn(EventDescIn):
    # Optional, but not null: the schema shows no default.
    name: str = Field(  # type: ignore[assignment]
        None,
        pattern=EVENT_NAME.pattern,
        description="The path's name, if given: it cannot change",
        json_schema_extra=_no_default,
    )


@router.post("/event_desc", openapi_extra=_doc_body(EventDescIn), summary="Describe an event name")
async def create_desc(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, dict[str, object]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    desc = await run_in_threadpool(c.event_descs.create, body, principal)
    return {"result": event_desc_json(desc)}


@router.get("/event_desc", summary="Every event description")
async def list_descs(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    descs = await run_in_threadpool(ctx(request).event_descs.list)
    return {"result": [event_desc_json(d) for d in descs]}


@router.get("/event_desc/{name}", summary="One event description")
async def get_desc(
    name: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, dict[str, object]]:
    desc = await run_in_threadpool(ctx(request).event_descs.get, name)
    return {"result": event_desc_json(desc)}


@router.put(
    "/event_desc/{name}",
    openapi_extra=_doc_body(EventDescChangeIn),
    summary="Change the fields sent",
)
async def update_desc(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, dict[str, object]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    desc = await run_in_threadpool(c.event_descs.update, name, body, principal)
    return {"result": event_desc_json(desc)}


@router.delete("/event_desc/{name}", summary="Remove an event description")
async def delete_desc(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    await run_in_threadpool(ctx(request).event_descs.delete, name, principal)
    return {"name": name}
