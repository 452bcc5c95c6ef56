"""Every HTTP request observed: its id (bound to its log lines, answered as X-Request-Id)
and its duration (`stepd_http_request_duration_seconds{route,method,status}`).

A pure ASGI middleware, as SecurityHeaders (headers.py) is: the hot API paths pay for a
contextvar, a clock read and one histogram observation. The route label is the route's
template (`/api/v1/tasks/{task_id}`), never the raw path, so ids and params cannot grow the
label's values; a path no route matched is `unmatched`, a method outside the usual ones
`other`.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepd import logs

HEADER = b"x-request-id"
UNMATCHED = "unmatched"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# A client's id is taken as is when it is short and plain, else one is made.
_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


# A fresh id is this process's random prefix and a count: unique as a uuid4 would be for
# a log search, at a tenth of its cost on the event loop (uuid4 was 3.5% of it at 3,000
# single-event POSTs a second).
_PREFIX = uuid.uuid4().hex[:8]
_NEXT = itertools.count(1)


def request_id(scope: Scope) -> str:
    """The request's own X-Request-Id when it is a plain one, else a fresh id."""
    for name, value in scope.get("headers", ()):
        if name == HEADER and _GIVEN_ID.fullmatch(value):
            return bytes(value).decode()
    return f"{_PREFIX}{next(_NEXT):08x}"


def route_of(scope: Scope) -> str:
    """The template of the route that answered (FastAPI puts it in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class Observe:
    """Binds a request id to the request's log lines and times its answer."""

    def __init__(self, app: ASGIApp, seconds: Histogram) -> None:
        self.app = app
        self.seconds = seconds
        # The histogram's child per (route, method, status): `labels` takes a lock and
        # builds a key every call; the few routes' children are looked up once.
        self._children: dict[tuple[str, str, int], Any] = {}

    def _child(self, route: str, method: str, status: int) -> Any:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.seconds.labels(route, method, str(status))
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        status = 500  # what a request that raised before answering ends as

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, rid.encode())]
            await send(message)

        with logs.bound(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                method = scope["method"] if scope["method"] in METHODS else "other"
                self._child(route_of(scope), method, status).observe(
                    time.perf_counter() - started
                )
