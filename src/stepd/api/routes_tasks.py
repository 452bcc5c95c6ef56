"""`/api/v1/tasks` and `/api/v1/semaphores`: the built-in sandbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import shapes
from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.domain.limits import INT32_MAX, INT64_MAX
from stepd.domain.tasks import ACTIVE, Task
from stepd.services.tasks import LogPage, SemaphoreState, TaskView
from stepd.store.tokens import Principal
from stepd.timeutil import iso

router = APIRouter(prefix="/api/v1", tags=["tasks"])

# A task id as the store keys it (a BIGINT from 1): outside that, a 400 naming task_id
# instead of an overflow in the database driver. Digits only, as the path is matched.
TaskId = Annotated[int, Path(ge=1, le=INT64_MAX, description="The task's id (sandbox_task_id)")]


def _answer(result: object) -> JSONResponse:
    # Rendered already (the shapes' JSON): FastAPI need not validate it again, and a
    # TaskDetail's absent `trigger` stays absent.
    return JSONResponse({"result": result})


def _task(task: Task) -> dict[str, Any]:
    return shapes.TaskOut.of(task).model_dump(mode="json")


def task_detail(view: TaskView) -> shapes.TaskDetail:
    """The one rendering of a task with its history (the API's and the UI's)."""
    return shapes.task_detail(view.task, view.attempts, view.trigger, view.emitted)


def task_log(page: LogPage) -> shapes.TaskLog:
    """The one rendering of a task's log page."""
    return shapes.TaskLog(
        id=page.task_id,
        attempt=page.attempt,
        status=page.status,
        offset=page.offset,
        next_offset=page.length,
        text=page.text,
        finished=page.status not in ACTIVE,
    )


def semaphore(state: SemaphoreState) -> dict[str, Any]:
    """The one rendering of a semaphore."""
    return shapes.SemaphoreOut(
        name=state.name,
        capacity=state.capacity,
        used=state.used,
        auto=state.auto,
        owner=state.owner,
        updated=iso(state.updated),
    ).model_dump(mode="json")


@router.get(
    "/tasks",
    summary="Find tasks: type, status, config_id, event_id; skip, limit, sort",
    response_model=shapes.Result[list[shapes.TaskOut]],
)
async def list_tasks(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    query = shapes.TaskQuery.parse(dict(request.query_params.items()))
    found = await run_in_threadpool(ctx(request).tasks.list, query)
    return _answer([_task(t) for t in found])


@router.post(
    "/tasks",
    openapi_extra=_doc_body(shapes.TaskIn),
    summary="Run a task type by hand",
    response_model=shapes.Result[shapes.TaskOut],
)
async def create_task(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    body = shapes.TaskIn.model_validate(await read_object(request, c.settings.max_body_bytes))
    return _answer(_task(await run_in_threadpool(c.tasks.create, body, principal)))


@router.get(
    "/tasks/{task_id}",
    summary="One task: params, status, attempts, output, origin",
    response_model=shapes.Result[shapes.TaskDetail],
)
async def get_task(
    task_id: TaskId, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    view = await run_in_threadpool(ctx(request).tasks.get, task_id)
    return _answer(task_detail(view).wire())


@router.get(
    "/tasks/{task_id}/logs",
    summary="A task's log (from `offset`, for following)",
    response_model=shapes.Result[shapes.TaskLog],
)
async def task_logs(
    task_id: TaskId,
    request: Request,
    _reader: Annotated[Principal | None, Depends(reader)],
    attempt: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,  # an INTEGER column
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    page = await run_in_threadpool(ctx(request).tasks.logs, task_id, attempt, offset)
    return _answer(task_log(page).model_dump(mode="json"))


@router.post(
    "/tasks/{task_id}/stop", summary="Stop a task", response_model=shapes.Result[shapes.TaskStopped]
)
async def stop_task(
    task_id: TaskId, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    status = await run_in_threadpool(ctx(request).tasks.stop, task_id, principal)
    return _answer(shapes.TaskStopped(id=task_id, status=status).model_dump(mode="json"))


@router.post(
    "/tasks/{task_id}/restart",
    summary="Run a finished task again (a new attempt)",
    response_model=shapes.Result[shapes.TaskRestarted],
)
async def restart_task(
    task_id: TaskId, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    status = await run_in_threadpool(ctx(request).tasks.restart, task_id, principal)
    return _answer(shapes.TaskRestarted(id=task_id, status=status).model_dump(mode="json"))


@router.get("/task_types", summary="The task types this server knows")
async def task_types(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    types = ctx(request).task_types
    return {"result": [types[name].to_json() for name in sorted(types)]}


@router.get(
    "/semaphores",
    tags=["semaphores"],
    summary="Every semaphore, with its use",
    response_model=shapes.Result[list[shapes.SemaphoreOut]],
)
async def list_semaphores(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    found = await run_in_threadpool(ctx(request).semaphores.list)
    return _answer([semaphore(s) for s in found])


@router.get(
    "/semaphores/{name}",
    tags=["semaphores"],
    summary="One semaphore",
    response_model=shapes.Result[shapes.SemaphoreOut],
)
async def get_semaphore(
    name: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    return _answer(semaphore(await run_in_threadpool(ctx(request).semaphores.get, name)))


@router.put(
    "/semaphores/{name}",
    tags=["semaphores"],
    openapi_extra=_doc_body(shapes.SemaphoreIn),
    summary="Create a semaphore or set its capacity",
    response_model=shapes.Result[shapes.SemaphoreOut],
)
async def put_semaphore(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    body = shapes.SemaphoreIn.model_validate(await read_object(request, c.settings.max_body_bytes))
    return _answer(semaphore(await run_in_threadpool(c.semaphores.put, name, body, principal)))


@router.delete("/semaphores/{name}", tags=["semaphores"], summary="Delete an unused semaphore")
async def delete_semaphore(
    name: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    await run_in_threadpool(ctx(request).semaphores.delete, name, principal)
    return {"name": name}
