"""`/api/v1/tasks` and `/api/v1/semaphores`: the built-in sandbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.domain.limits import INT32_MAX, INT64_MAX
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["tasks"])

# A task id as the store keys it (a BIGINT from 1): outside that, a 400 naming task_id
# instead of an overflow in the database driver. Digits only, as the path is matched.
TaskId = Annotated[int, Path(ge=1, le=INT64_MAX, description="The task's id (sandbox_task_id)")]


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the server refuses unknown fields

    type: str = Field(min_length=1, examples=["CRYPTA_GRAPH_HUMAN_MATCHING_YAML"])
    params: dict[str, Any] | None = Field(default_factory=dict, examples=[{"date": "2019-01-01"}])
    priority: int | None = 0
    semaphores: list[dict[str, Any] | str] | None = Field(
        default_factory=list, description="Names, or {name, weight}"
    )
    kill_timeout: int | None = Field(None, ge=1)
    max_retries: int | None = Field(0, ge=0)


class SemaphoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the server refuses unknown fields

    capacity: int = Field(ge=0, examples=[1])


@router.get("/tasks", summary="Find tasks: type, status, config_id, event_id; skip, limit, sort")
async def list_tasks(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    query = dict(request.query_params.items())
    return {"result": await run_in_threadpool(ctx(request).tasks.list, query)}


@router.post("/tasks", openapi_extra=_doc_body(TaskIn), summary="Run a task type by hand")
async def create_task(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, dict[str, object]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    return {"result": await run_in_threadpool(c.tasks.create, body, principal)}


@router.get("/tasks/{task_id}", summary="One task: params, status, attempts, output, origin")
async def get_task(
    task_id: TaskId, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, dict[str, object]]:
    return {"result": await run_in_threadpool(ctx(request).tasks.get, task_id)}


@router.get("/tasks/{task_id}/logs", summary="A task's log (from `offset`, for following)")
async def task_logs(
    task_id: TaskId,
    request: Request,
    _reader: Annotated[Principal | None, Depends(reader)],
    attempt: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,  # an INTEGER column
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, dict[str, object]]:
    result = await run_in_threadpool(ctx(request).tasks.logs, task_id, attempt, offset)
    return {"result": result}


@router.post("/tasks/{task_id}/stop", summary="Stop a task")
async def stop_task(
    task_id: TaskId, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, dict[str, object]]:
    return {"result": await run_in_threadpool(ctx(request).tasks.stop, task_id, principal)}


@router.post("/tasks/{task_id}/restart", summary="Run a finished task again (a new attempt)")
async def restart_task(
    task_id: TaskId, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, dict[str, object]]:
    return {"result": await run_in_threadpool(ctx(request).tasks.restart, task_id, principal)}


@router.get("/task_types", summary="The task types this server knows")
async def task_types(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    types = ctx(request).task_types
    return {"result": [types[name].to_json() for name in sorted(types)]}


@router.get("/semaphores", tags=["semaphores"], summary="Every semaphore, with its use")
async def list_semaphores(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    return {"result": await run_in_threadpool(ctx(request).semaphores.list)}


@router.get("/semaphores/{name}", tags=["semaphores"], summary="One semaphore")
async def get_semaphore(
    name: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, dict[str, object]]:
    return {"result": await run_in_threadpool(ctx(request).semaphores.get, name)}


@router.put(
    "/semaphores/{name}",
    tags=["semaphores"],
    openapi_extra=_doc_body(SemaphoreIn),
    summary="Create a semaphore or set its capacity",
)
async def put_semaphore(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, dict[str, object]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    return {"result": await run_in_threadpool(c.semaphores.put, name, body, principal)}


@router.delete("/semaphores/{name}", tags=["semaphores"], summary="Delete an unused semaphore")
async def delete_semaphore(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    await run_in_threadpool(ctx(request).semaphores.delete, name, principal)
    return {"name": name}
