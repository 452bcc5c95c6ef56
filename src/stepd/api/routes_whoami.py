"""`/api/v1/whoami`: who a token speaks for (whose configs `stepd configs sync` manages)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from stepd.api.context import authenticate
from stepd.errors import Unauthorized
from stepd.services.auth import token_from_header

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/whoami", summary="The token's user, and whether it is an admin")
async def whoami(request: Request) -> dict[str, dict[str, object]]:
    """`{"result": {"user": ..., "admin": ...}}`; 401 without a valid token."""
    token = token_from_header(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "whoami tells who a token speaks for, and needs 'Authorization: OAuth <token>'; "
            "create a token with `stepd tokens create USER`"
        )
    principal = await authenticate(request, token)
    return {"result": {"user": principal.user, "admin": principal.is_admin}}
