"""Refuse a request whose path or query string holds a NUL character, before any route.

PostgreSQL cannot compare or store text with NUL (0x00) in it and fails the statement;
SQLite takes it. Refused here for every route at once, the two stores answer alike: 400
naming the part of the address that holds it. (Bodies are checked by api/body.py.)
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send


class RefuseNul:
    """ASGI middleware: a 400 for a NUL in the decoded path or query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope.get("path", ""), scope.get("query_string", b""))
            if problem is not None:
                message, field = problem
                body = orjson.dumps({"error": "invalid_input", "message": message, "field": field})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


_NUL = "holds a NUL character (%00), which no store can keep"


def _problem(path: str, query: bytes) -> tuple[str, str] | None:
    if "\x00" in path:
        return f"the path {_NUL}", "path"
    # A raw query string cannot hold a NUL byte; its decoding only comes from %00.
    if b"%00" not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key:
            return f"a query parameter's name {_NUL}", key.replace("\x00", "%00")
        if "\x00" in value:
            return f"the query parameter {key!r} {_NUL}", key
    return None
