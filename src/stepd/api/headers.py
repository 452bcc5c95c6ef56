"""Security headers on every answer: a pure ASGI middleware, so the hot API paths pay
for a header list append and nothing else (Starlette's BaseHTTPMiddleware costs a task
and a stream per request).

- `X-Content-Type-Options: nosniff` everywhere: a browser never runs a JSON answer or a
  task's log as HTML or script.
- The web UI (`/ui`) and the API pages (`/docs`, `/redoc`): a Content-Security-Policy
  that allows scripts, styles and connections from this server only and no inline
  script, and `X-Frame-Options: DENY` (no framing, no clickjacking of the buttons).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")

UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
# Swagger UI and ReDoc set style attributes from script (their own CSS-in-JS), hence
# 'unsafe-inline' for styles only; ReDoc parses the document in a worker made from a blob.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def _page_headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        NOSNIFF,
        (b"content-security-policy", policy.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]


UI_HEADERS = _page_headers(UI_POLICY)
DOCS_HEADERS = _page_headers(DOCS_POLICY)
PAGE_PREFIXES = (("/ui", UI_HEADERS), ("/docs", DOCS_HEADERS), ("/redoc", DOCS_HEADERS))


def headers_for(path: str) -> list[tuple[bytes, bytes]]:
    """The security headers an answer to `path` carries."""
    for prefix, headers in PAGE_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return headers
    return [NOSNIFF]


class SecurityHeaders:
    """Adds `headers_for(path)` to every HTTP answer of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
