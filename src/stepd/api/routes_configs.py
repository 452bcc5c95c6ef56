"""`/api/v1/configs`: action configs, as the original STEP API has them, plus test and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader, writer
from stepd.api.routes_events import _doc_body
from stepd.domain.events import NAME_PATTERN as EVENT_NAME
from stepd.errors import Unauthorized
from stepd.services.auth import token_from_header
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["configs"])


class DependencyIn(BaseModel):
    name: str = Field(pattern=EVENT_NAME.pattern, examples=["cryptaTaskEvent"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        examples=[
            {
                "taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                "taskStatus": "SUCCESS",
                "environment": "stable",
                "date": "~",
            }
        ],
    )


def _read_only_fields(schema: dict[str, Any]) -> None:
    for key in ("_id", "id", "author", "version", "created", "updated"):
        schema["properties"][key] = {"readOnly": True, "description": "ignored: as GET gave it"}


class ConfigIn(BaseModel):
    """A config; `~` (or null) in a dependency param binds any value and joins on it."""

    # Unknown fields are refused; those a GET returns may be sent back and are ignored.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_read_only_fields)

    name: str | None = Field(None, examples=["human-matching-after-soup"])
    description: str = ""
    enabled: bool = True
    event_deps: list[DependencyIn] = Field(min_length=1)
    action_type: str = "SANDBOX_TASK"
    task_type: str = Field(examples=["CRYPTA_GRAPH_HUMAN_MATCHING_YAML"])
    task_params: dict[str, Any] = Field(default_factory=dict, examples=[{"day": "{{ date }}"}])
    action_params: dict[str, Any] = Field(default_factory=dict)
    semaphores: list[dict[str, Any] | str] = Field(default_factory=list)
    priority: int = 0
    kill_timeout: int | None = Field(None, ge=1)
    max_retries: int = Field(0, ge=0)
    window: str | None = Field(None, examples=["7d"])


class ConfigTestIn(BaseModel):
    """A config (or config_id), and an event or a filter of stored events."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["config"], "properties": {"config": {"type": "object"}}},
                {"required": ["config_id"], "properties": {"config_id": {"type": "string"}}},
            ],
            "oneOf": [
                {"required": ["event"], "properties": {"event": {"type": "object"}}},
                {"required": ["events"], "properties": {"events": {"type": "object"}}},
            ],
        }
    )

    config: ConfigIn | None = Field(None, description="A config to try (or give config_id)")
    config_id: str | None = None
    event: dict[str, Any] | None = Field(
        None, description="A hypothetical event {name, params}, not stored"
    )
    events: dict[str, Any] | None = Field(
        None, description="A filter of stored events: {name, params: {k: v}, limit}"
    )


@router.post("/configs", openapi_extra=_doc_body(ConfigIn), summary="Create a config")
async def create_config(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes)
    config = await run_in_threadpool(c.configs.create, body, principal)
    return {"id": config.id}


@router.get("/configs", summary="Find configs: author=..., task_type=..., a__b=... (nested)")
async def list_configs(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, list[dict[str, object]]]:
    filters = dict(request.query_params.items())
    found = await run_in_threadpool(ctx(request).configs.list, filters)
    return {"result": [c.to_json() for c in found]}


class ConfigsValidateIn(BaseModel):
    """For the OpenAPI page only: the route reads the body itself."""

    configs: list[Any] = Field(
        description="Configs as POST /configs takes them (each is checked and answered)"
    )


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


@router.get("/configs/{config_id}", summary="One config")
async def get_config(
    config_id: str, request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> dict[str, dict[str, object]]:
    config = await run_in_threadpool(ctx(request).configs.get, config_id)
    return {"result": config.to_json()}


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
