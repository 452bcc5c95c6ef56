"""`/api/v1/tasks` and `/api/v1/semaphores`: the built-in sandbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import shapes
from stepd.api.body import is_form, parse_json, read_bytes, read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.domain.limits import INT32_MAX, INT64_MAX
from stepd.domain.tasks import ACTIVE, Task, TaskStatus
from stepd.errors import MalformedBody
from stepd.services.tasks import LogPage, SemaphoreState, TaskView
from stepd.store.semaphore_use import Use
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
    config = view.config
    named = (
        None
        if config is None
        else shapes.TaskConfig(
            id=config.id,
            name=config.spec.name,
            author=config.author,
            version=view.task.config_version,
            deleted=config.deleted is not None,
        )
    )
    return shapes.task_detail(view.task, view.attempts, view.trigger, view.emitted, named)


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


def semaphore_detail(state: SemaphoreState, use: Use | None) -> dict[str, Any]:
    """A semaphore with who holds it and who waits for it (the API's and the UI's)."""
    use = use or Use()
    return shapes.SemaphoreDetail(
        **semaphore(state),
        holders=[
            shapes.SemaphoreHolderOut(
                task_id=h.task_id,
                type=h.type,
                status=TaskStatus(h.status),
                weight=h.weight,
                since=None if h.since is None else iso(h.since),
            )
            for h in use.holders
        ],
        holder_count=use.holder_count,
        waiting=[
            shapes.SemaphoreWaiterOut(
                task_id=w.task_id, type=w.type, priority=w.priority, created=iso(w.created)
            )
            for w in use.waiters
        ],
        waiting_count=use.waiting,
        waiting_at_least=use.waiting_at_least,
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
    task = await run_in_threadpool(c.tasks.create, body, principal)
    # Made, but it may not run as it is (a type no live worker runs): said, not refused.
    warning = await run_in_threadpool(c.tasks.type_warning, body.type)
    answer: dict[str, Any] = {"result": _task(task)}
    if warning is not None:
        answer["warnings"] = [warning]
    return JSONResponse(answer)


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
    openapi_extra={
        "requestBody": {**_doc_body(shapes.TaskRestartIn)["requestBody"], "required": False}
    },
    summary="Run a finished task again (a new attempt), optionally with new params",
    response_model=shapes.Result[shapes.TaskRestarted],
)
async def restart_task(
    task_id: TaskId, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    params = await restart_params(request, c.settings.max_body_bytes)
    done = await run_in_threadpool(c.tasks.restart, task_id, principal, params)
    answer: dict[str, Any] = {
        "result": shapes.TaskRestarted(id=task_id, status=done.status).model_dump(mode="json")
    }
    if done.warnings:
        answer["warnings"] = done.warnings
    return JSONResponse(answer)


async def restart_params(request: Request, limit: int) -> dict[str, Any] | None:
    """The new params a restart's JSON body gives, or None: no body, or a form body (the
    route took no body before params existed, and ignored whatever a client sent)."""
    raw = await read_bytes(request, limit)
    if not raw.strip() or (is_form(request) and not raw.lstrip().startswith(b"{")):
        return None
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise MalformedBody('the body must be a JSON object: {"params": {...}}')
    return dict(shapes.TaskRestartIn.model_validate(value).params)


@router.get(
    "/task_types",
    summary="The task types the deployment runs: what its workers announced, and --tasks",
)
async def task_types(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    # Each as its newest live worker describes it, with `workers` (the live ones that run
    # it), `live`, `last_seen` and, for a type of this server's own --tasks, `server`.
    known = await run_in_threadpool(ctx(request).fleet.task_types)
    for entry in known:
        if entry["last_seen"] is not None:
            entry["last_seen"] = iso(entry["last_seen"])
    return JSONResponse({"result": known})


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
    summary="One semaphore, with the tasks holding it and the first of those waiting for it",
    response_model=shapes.Result[shapes.SemaphoreDetail],
)
async def get_semaphore(
    name: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    service = ctx(request).semaphores
    state = await run_in_threadpool(service.get, name)
    use = await run_in_threadpool(service.use, name)
    return _answer(semaphore_detail(state, use.get(name)))


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
