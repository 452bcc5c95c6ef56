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
from stepd.shapes import ConfigIn, ConfigOut, ConfigsValidateIn, ConfigTestIn, Result
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["configs"])


@router.post("/configs", openapi_extra=_doc_body(ConfigIn), summary="Create a config")
async def create_config(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    config = await run_in_threadpool(c.configs.create, body, principal)
    return {"id": config.id}


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
    return {
        "result": [
            {"index": i, "ok": True} if p is None else {"index": i, "ok": False, **p.to_json()}
            for i, p in enumerate(problems)
        ]
    }


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
) -> dict[str, dict[str, object]]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    config = await run_in_threadpool(c.configs.update, config_id, body, principal)
    return {"result": config.to_json()}


@router.delete("/configs/{config_id}", summary="Delete a config")
async def delete_config(
    config_id: str, request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    config = await run_in_threadpool(ctx(request).configs.delete, config_id, principal)
    return {"id": config.id}
