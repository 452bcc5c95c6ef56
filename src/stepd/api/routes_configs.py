"""`/api/v1/configs`: action configs, as the original STEP API has them, plus test and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.errors import Unauthorized
from stepd.services.auth import token_from_header
from stepd.services.config_run import PlannedTask
from stepd.shapes import (
    ConfigIn,
    ConfigOut,
    ConfigRunIn,
    ConfigsValidateIn,
    ConfigTestIn,
    Result,
    TaskOut,
)
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["configs"])


@router.post("/configs", openapi_extra=_doc_body(ConfigIn), summary="Create a config")
async def create_config(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, object]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    config = await run_in_threadpool(c.configs.create, body, principal)
    answer: dict[str, object] = {"id": config.id}
    # Stored, but it may not run as it is (a task type no live worker runs): said, not refused.
    warnings = await run_in_threadpool(c.configs.warnings, config.spec)
    if warnings:
        answer["warnings"] = warnings
    return answer


@router.get(
    "/configs",
    summary="Find configs: author=..., task_type=..., a__b=... (nested)",
    response_model=Result[list[ConfigOut]],
)
async def list_configs(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    filters = dict(request.query_params.items())
    found = await run_in_threadpool(ctx(request).configs.list, filters)
    # Rendered by the domain (ConfigOut's shape, tests/api/test_shapes.py): not validated again.
    return JSONResponse({"result": [c.to_json() for c in found]})


@router.post(
    "/configs/validate",
    openapi_extra=_doc_body(ConfigsValidateIn),
    summary="Would POST /configs take these? (writes nothing)",
)
async def validate_configs(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    problems = await run_in_threadpool(c.configs.validate, body.get("configs"))
    result: list[dict[str, object]] = []
    for i, (problem, warnings) in enumerate(problems):
        item: dict[str, object] = (
            {"index": i, "ok": True} if problem is None else {"index": i, "ok": False}
        )
        if problem is not None:
            item.update(problem.to_json())
        if warnings:
            item["warnings"] = warnings
        result.append(item)
    return {"result": result}


async def computer(request: Request) -> Principal:
    """The caller of a trial: it writes nothing but runs the matcher on stored events, work
    that an anonymous caller must not be able to ask for; so a token, as for a write."""
    if token_from_header(request.headers.get("authorization")) is None:
        raise Unauthorized(
            "POST /configs/test runs the matcher on stored events and needs"
            " 'Authorization: OAuth <token>'; create a token with `stepd tokens create USER`"
        )
    return await writer(request)


@router.post(
    "/configs/test",
    openapi_extra=_doc_body(ConfigTestIn),
    summary="What a config would fire (needs a token; reads at most trial_scan_limit events)",
)
async def test_config(
    request: Request, _caller: Annotated[Principal, Depends(computer)]
) -> dict[str, object]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    result = await run_in_threadpool(c.trial.run, body)
    return {"result": result}


@router.get("/configs/{config_id}", summary="One config", response_model=Result[ConfigOut])
async def get_config(
    config_id: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> JSONResponse:
    config = await run_in_threadpool(ctx(request).configs.get, config_id)
    return JSONResponse({"result": config.to_json()})


@router.get("/configs/{config_id}/history", summary="Every version of a config: who, when, what")
async def config_history(
    config_id: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    return {"result": await run_in_threadpool(ctx(request).configs.history, config_id)}


@router.put("/configs/{config_id}", openapi_extra=_doc_body(ConfigIn), summary="Replace a config")
async def put_config(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, object]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    config = await run_in_threadpool(c.configs.update, config_id, body, principal)
    answer: dict[str, object] = {"result": config.to_json()}
    warnings = await run_in_threadpool(c.configs.warnings, config.spec)
    if warnings:
        answer["warnings"] = warnings
    return answer


@router.post(
    "/configs/{config_id}/disable",
    summary="Pause a config: it fires on no event until enabled (those sent meanwhile never)",
    response_model=Result[ConfigOut],
)
async def disable_config(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    return await _set_paused(request, config_id, principal, paused=True)


@router.post(
    "/configs/{config_id}/enable",
    summary="Resume a paused config",
    response_model=Result[ConfigOut],
)
async def enable_config(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    return await _set_paused(request, config_id, principal, paused=False)


async def _set_paused(
    request: Request, config_id: str, principal: Principal, *, paused: bool
) -> JSONResponse:
    configs = ctx(request).configs
    config = await run_in_threadpool(configs.set_paused, config_id, principal, paused=paused)
    return JSONResponse({"result": config.to_json()})


@router.post(
    "/configs/{config_id}/run",
    openapi_extra=_doc_body(ConfigRunIn),
    summary="Run a config now for one binding, as a firing would (dry_run: only say what)",
)
async def run_config(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> JSONResponse:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    made = await run_in_threadpool(c.config_runs.run, config_id, body, principal)
    if isinstance(made, PlannedTask):
        return JSONResponse({"result": {"dry_run": True, "task": made.to_json()}})
    answer: dict[str, object] = {
        "id": made.id,
        "result": TaskOut.of(made).model_dump(mode="json"),
    }
    warning = await run_in_threadpool(c.tasks.type_warning, made.type)
    if warning is not None:
        answer["warnings"] = [warning]
    return JSONResponse(answer)


@router.delete("/configs/{config_id}", summary="Delete a config")
async def delete_config(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    config = await run_in_threadpool(ctx(request).configs.delete, config_id, principal)
    return {"id": config.id}
