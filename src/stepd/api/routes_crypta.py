"""`/api/v1/task/status`: the Crypta-style status report, turned into a `cryptaTaskEvent`."""

from __future__ import annotations

import ast
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from stepd.api.body import read_object
from stepd.api.context import ctx, writer
from stepd.api.routes_events import _doc_body
from stepd.errors import InvalidInput
from stepd.services.events import EventBatch
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["integrations"])

EVENT_NAME = "cryptaTaskEvent"
REQUIRED = ("taskType", "taskStatus", "environment")


class TaskStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the server refuses unknown fields

    taskType: str = Field(min_length=1, examples=["CRYPTA_GRAPH_PREPARE_SOUP_YAML"])
    taskStatus: str = Field(min_length=1, examples=["SUCCESS"])
    environment: str = Field(min_length=1, examples=["stable"])
    body: dict[str, Any] | str | None = Field(
        None,
        description="Extra params, as an object or its JSON text",
        examples=['{"date": "2019-01-01"}'],
    )


def _extra(raw: object) -> dict[str, object]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        text = raw
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            try:
                # The original's Swagger page showed {'date': '2019-01-01'}: a Python
                # literal. literal_eval reads literals only, never code.
                raw = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise InvalidInput(
                    f"body must be a JSON object of params: {exc}", field="body"
                ) from exc
    if not isinstance(raw, dict):
        raise InvalidInput("body must be a JSON object of params", field="body")
    return raw


@router.post(
    "/task/status",
    openapi_extra=_doc_body(TaskStatusIn, form=True),
    summary="Report a task status (Crypta API style): stored as a cryptaTaskEvent",
)
async def report_task_status(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, object]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes, allow_form=True)
    params: dict[str, object] = {}
    for key in REQUIRED:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{key} is required", field=key)
        params[key] = value
    unknown = sorted(set(body) - {*REQUIRED, "body"})
    if unknown:
        raise InvalidInput(
            f"unknown fields {unknown}; send taskType, taskStatus, environment and body",
            field=unknown[0],
        )
    extra = _extra(body.get("body"))
    clash = sorted(set(extra) & set(REQUIRED))
    if clash:
        raise InvalidInput(f"body must not repeat {clash}", field="body")
    batch = EventBatch(
        events=[{"name": EVENT_NAME, "params": {**params, **extra}}],
        source_type="task/status",
        source=principal.user,
    )
    ids = await c.events.submit_async(batch, author=principal.user)
    return {"id": ids[0], "ids": ids, "name": EVENT_NAME}
