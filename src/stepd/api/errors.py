"""One table from errors to HTTP answers: every error is a JSON body that says what was wrong."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from stepd.errors import StepdError, TooManyRequests
from stepd.store import failures

log = logging.getLogger(__name__)


def _where(loc: tuple[object, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed(request: Request) -> list[str]:
    """Every method some route takes on the request's path."""
    from stepd.api.openapi import api_routes

    path = request.url.path
    methods = {
        method
        for route in api_routes(request.app.routes)
        if route.path_regex.fullmatch(path)
        for method in route.methods or ()
    }
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(StepdError)
    async def _stepd_error(_request: Request, exc: StepdError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("request failed: %s", exc.message)
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        )
        return JSONResponse(exc.to_json(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = _where(tuple(first.get("loc", ())))
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        body = {"error": "invalid_input", "message": message, "field": where or None}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        names = {404: "not_found", 405: "method_not_allowed"}
        body = {"error": names.get(exc.status_code, "http_error"), "message": str(exc.detail)}
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only; GET and
            # POST /api/v1/events are two routes.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client left mid-request (a load generator stopping, a killed curl): nothing
        # was stored and nobody reads the answer; not a server error.
        log.debug("client disconnected before its request body was read")
        return JSONResponse({"error": "client_disconnected", "message": "gone"}, status_code=400)

    _install_store_failures(app)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        body = {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        return JSONResponse(body, status_code=500)


def _install_store_failures(app: FastAPI) -> None:
    """A driver error that says the store is full or a statement was cancelled, escaping
    outside Store.read/write (which translate it themselves): the same 507/503 JSON."""

    async def _store_failure(_request: Request, exc: Exception) -> JSONResponse:
        mapped = failures.classify(exc)
        if mapped is None:
            log.exception("unexpected error")
            body = {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
            return JSONResponse(body, status_code=500)
        log.error("request failed: %s", mapped.message)
        return JSONResponse(mapped.to_json(), status_code=mapped.status_code)

    for driver_error in failures.DRIVER_ERRORS:
        app.add_exception_handler(driver_error, _store_failure)
