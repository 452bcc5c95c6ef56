"""`/api/v1/event_story`: what an event fired, and why not."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader
from stepd.api.routes_events import _doc_body
from stepd.errors import InvalidInput
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["event story"])


class StoryIn(BaseModel):
    id: str = Field(min_length=1)


@router.post(
    "/event_story", openapi_extra=_doc_body(StoryIn, form=True), summary="Start an event's story"
)
async def start_story(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, str]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes, allow_form=True)
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("id is required: the _id of the event", field="id")
    return {"id": await run_in_threadpool(c.stories.start, event_id)}


@router.get("/event_story/{story_id}", summary="An event's story")
async def get_story(
    story_id: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, dict[str, object]]:
    return {"result": await run_in_threadpool(ctx(request).stories.tell, story_id)}


@router.get("/events/{event_id}/story", tags=["events"], summary="An event's story in one call")
async def event_story(
    event_id: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, dict[str, object]]:
    return {"result": await run_in_threadpool(ctx(request).stories.tell, event_id)}
