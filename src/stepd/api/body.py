"""Reading request bodies: JSON, or form data where the original's users sent it."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request

from stepd.errors import BodyTooLarge, MalformedBody


async def read_bytes(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"


async def read_object(
    request: Request, limit: int, *, allow_form: bool = False
) -> dict[str, object]:
    """The body as a JSON object (or, when allowed, a flat form), or a 400 saying why not."""
    raw = await read_bytes(request, limit)
    if allow_form and _is_form(request):
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError as exc:
            raise MalformedBody("the form body is not UTF-8") from exc
    if not raw.strip():
        raise MalformedBody("the body is empty; send a JSON object")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedBody("the body must be a JSON object")
    return value
