"""`/api/v1/whoami`: who the caller's token speaks for (what `stepd configs sync` manages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from stepd.api.context import writer
from stepd.store.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/whoami", summary="The token's user, and whether it is an admin")
async def whoami(
    principal: Annotated[Principal, Depends(writer)],
) -> dict[str, dict[str, object]]:
    """`{"result": {"user": ..., "admin": ...}}`; 401 without a valid token."""
    return {"result": {"user": principal.user, "admin": principal.is_admin}}
