"""`/api/v1/workers`: the fleet, as its workers announced themselves (services/fleet.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import shapes
from stepd.api.context import ctx, reader
from stepd.services.fleet import WorkerView
from stepd.store.tokens import Principal
from stepd.timeutil import iso

router = APIRouter(prefix="/api/v1", tags=["workers"])


def worker_out(view: WorkerView) -> shapes.WorkerOut:
    row = view.row
    return shapes.WorkerOut(
        name=row.name,
        host=row.host,
        pid=row.pid,
        executor=row.executor,
        version=row.version,
        queue=row.queue,
        task_types=[str(t.get("name")) for t in row.task_types],
        state=view.state,
        started=iso(row.started),
        last_seen=iso(row.last_seen),
        stopped=None if row.stopped is None else iso(row.stopped),
        running=[
            shapes.RunningOut(task_id=r.task_id, type=r.type, attempt=r.attempt)
            for r in view.running
        ],
    )


@router.get(
    "/workers",
    summary="Every worker that announced itself: live ones first, gone ones for a day",
    response_model=shapes.Result[list[shapes.WorkerOut]],
)
async def list_workers(
    request: Request,
    _reader: Annotated[Principal | None, Depends(reader)],
    state: Annotated[Literal["live", "gone"] | None, Query(description="Only these")] = None,
) -> JSONResponse:
    views = await run_in_threadpool(ctx(request).fleet.workers, state=state)
    return JSONResponse({"result": [worker_out(v).model_dump(mode="json") for v in views]})


@router.get(
    "/workers/{name}",
    summary="One worker, with the task types it runs described",
    response_model=shapes.Result[shapes.WorkerDetail],
)
async def get_worker(
    name: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    view = await run_in_threadpool(ctx(request).fleet.get, name)
    detail: dict[str, Any] = worker_out(view).model_dump(mode="json")
    detail["task_type_details"] = view.row.task_types
    return JSONResponse({"result": detail})
