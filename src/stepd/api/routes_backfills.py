"""Backfills: `POST /api/v1/configs/{id}/backfill` and `/api/v1/backfills[/{id}]`
(services/backfills.py; their tasks are fed by backfiller.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd import shapes
from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.domain.backfills import BackfillState
from stepd.errors import InvalidInput, NotFound
from stepd.services.backfills import Plan
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["backfills"])

MAX_LIMIT = 1000
LIST_FILTERS = ("state", "config_id", "skip", "limit")


@router.post(
    "/configs/{config_id}/backfill",
    openapi_extra=_doc_body(shapes.BackfillIn),
    summary="Run a config for every binding of ranges and lists (dry_run: only plan it)",
    response_model=shapes.Result[shapes.BackfillOut],
)
async def create_backfill(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    made = await run_in_threadpool(c.backfills.submit, config_id, body, principal)
    if isinstance(made, Plan):
        return JSONResponse({"result": made.to_json()})
    view, new = made
    return JSONResponse({"id": view.backfill.id, "result": view.to_json()}, 201 if new else 200)


def _number(query: Mapping[str, str], key: str, default: int, high: int) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise InvalidInput(f"{key} must be an integer from 0 to {high}; got {raw!r}", field=key)
    return int(raw)


@router.get(
    "/backfills",
    summary="Backfills, newest first: state, config_id; skip, limit",
    response_model=shapes.Result[list[shapes.BackfillOut]],
)
async def list_backfills(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    query = dict(request.query_params.items())
    unknown = sorted(set(query) - set(LIST_FILTERS))
    if unknown:
        raise InvalidInput(
            f"unknown filter {unknown[0]!r}; use {list(LIST_FILTERS)}", field=unknown[0]
        )
    state = query.get("state")
    if state is not None and state not in {s.value for s in BackfillState}:
        raise InvalidInput(
            f"state must be one of {', '.join(s.value for s in BackfillState)}; got {state!r}",
            field="state",
        )
    found = await run_in_threadpool(
        ctx(request).backfills.listing,
        state=None if state is None else BackfillState(state),
        config_id=query.get("config_id"),
        limit=_number(query, "limit", 100, MAX_LIMIT),
        offset=_number(query, "skip", 0, 1_000_000),
    )
    return JSONResponse({"result": [view.to_json() for view in found]})


def _backfill_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no backfill with id {raw!r}", field="id")
    return int(raw)


@router.get(
    "/backfills/{backfill_id}",
    summary="One backfill: its state, progress and tasks by status",
    response_model=shapes.Result[shapes.BackfillOut],
)
async def get_backfill(
    backfill_id: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    view = await run_in_threadpool(ctx(request).backfills.get, _backfill_id(backfill_id))
    return JSONResponse({"result": view.to_json()})


@router.post(
    "/backfills/{backfill_id}/cancel",
    summary="Cancel a backfill: nothing more is made, its queued tasks stop",
    response_model=shapes.Result[shapes.BackfillOut],
)
async def cancel_backfill(
    backfill_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    view = await run_in_threadpool(c.backfills.cancel, _backfill_id(backfill_id), principal)
    return JSONResponse({"result": view.to_json()})
