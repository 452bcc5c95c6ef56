"""The OpenAPI document `/openapi.json` serves (and /docs shows): FastAPI's, completed.

Most routes read their bodies by hand (for speed and for the original's form bodies), so
FastAPI sees neither their bodies nor the errors they answer. This module adds, to the
document FastAPI builds from the routes:

- every request body, as a schema under `components/schemas` (the models each route
  names with `request_body`), plus the form variant where the route takes a form;
- every status a route answers, each error with the one error schema the server sends
  (`{"error", "message", "field"?, ...}`, api/errors.py), derived from what the route
  does: a token (401, 429; writes also 403), a body (400, 413), a path (400, 404), a
  write (409 where it can conflict, 507 when the disk is full), the store (503);
- the `Authorization` header as a security scheme, required by writes and optional on
  reads, so the "Authorize" button of /docs sends it;
- FastAPI's 422 removed: validation errors are 400 here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from stepd.shapes import ErrorOut

Auth = Literal["write", "read", "token", "none"]
SCHEME = "token"
ERROR = "Error"
SCHEMAS = "#/components/schemas/"

# The models of request bodies, by name: filled by `request_body` as routes are defined.
_BODIES: dict[str, type[BaseModel]] = {}
_FORMS: set[str] = set()  # those also taken as a form

# Routes that check the token by hand rather than as a dependency (the hot paths).
_MANUAL_AUTH: dict[tuple[str, str], Auth] = {
    ("POST", "/api/v1/events"): "write",
    ("GET", "/api/v1/events"): "read",
    ("GET", "/api/v1/events/{event_id}"): "read",
    ("GET", "/api/v1/whoami"): "token",
    ("POST", "/api/v1/configs/test"): "write",  # `computer`: a token, as for a write
    ("GET", "/healthz"): "none",
}
# What a route answers beyond what its token, body, path and store give it.
_EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/api/v1/events"): (400,),  # the query string is read by hand
    ("GET", "/api/v1/configs"): (400,),
    ("GET", "/api/v1/tasks"): (400,),
    ("POST", "/api/v1/events"): (409,),  # a request_id reused for other events
    ("POST", "/api/v1/reject_event"): (404,),  # the id in the body
    ("POST", "/api/v1/event_story"): (404,),
    ("POST", "/api/v1/configs/test"): (404,),  # config_id
    ("POST", "/api/v1/configs"): (409,),  # a duplicate name
    ("PUT", "/api/v1/configs/{config_id}"): (409,),
    ("POST", "/api/v1/event_desc"): (409,),
    ("POST", "/api/v1/tasks/{task_id}/stop"): (409,),  # the task has ended
    ("POST", "/api/v1/tasks/{task_id}/restart"): (409,),  # the task is active
    ("DELETE", "/api/v1/semaphores/{name}"): (409,),  # held by running tasks
    ("POST", "/api/v1/schedules"): (409,),  # a duplicate name, or as many as may be
    ("GET", "/healthz"): (503,),
}
# Answers that are not JSON.
_NOT_JSON: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/metrics"): {
        "text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}
    },
}
# Errors whose body is not the usual one.
_OWN_SCHEMA: dict[tuple[str, str, int], dict[str, Any]] = {
    ("GET", "/healthz", 503): {
        "type": "object",
        "required": ["status", "message", "checks"],
        "properties": {
            "status": {"const": "down"},
            "store": {"type": "string"},
            "message": {"type": "string"},
            "problem": {"type": "string"},
            "checks": {"type": "object"},
        },
    },
}
_WHY = {
    400: "Invalid input: the message names the field or parameter",
    401: "No valid token (or the Authorization header is not `OAuth <token>`)",
    403: "The token's user may not change this (the message names the owner)",
    404: "No such thing (the message names the id)",
    409: "Conflicts with what is stored",
    413: "The body is over the server's limit",
    429: "Too many bad tokens from this address: retry after `Retry-After` seconds",
    503: "The store does not answer",
    507: "The store is out of space: nothing was written",
}
# The error schema is the shapes' model, named as the document has always named it.
_ERROR_SCHEMA: dict[str, Any] = {
    **ErrorOut.model_json_schema(),
    "title": ERROR,
    "description": "Every error the API answers (src/stepd/api/errors.py).",
}
_SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": (
        "`OAuth <token>` or `Bearer <token>` (type the scheme too). Writes need it; reads "
        "need it only on a server run with --private-reads. Create a token with "
        "`stepd tokens create USER`."
    ),
}


def request_body(model: type[BaseModel], *, form: bool = False) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads a `model` body by hand (JSON, and a flat
    form of the same fields where `form`)."""
    _BODIES[model.__name__] = model
    ref = {"$ref": SCHEMAS + model.__name__}
    content: dict[str, Any] = {"application/json": {"schema": ref}}
    if form:
        _FORMS.add(model.__name__)
        content["application/x-www-form-urlencoded"] = {"schema": {"$ref": _form_ref(model)}}
    return {"requestBody": {"required": True, "content": content}}


def _form_ref(model: type[BaseModel]) -> str:
    return f"{SCHEMAS}{model.__name__}Form"


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A form holds strings only: the model's fields, each a string (a JSON text for an
    object, as /task/status's `body`)."""
    kept = ("description", "minLength", "readOnly")
    properties = {
        name: {"type": "string", **{k: v for k, v in spec.items() if k in kept}}
        for name, spec in schema.get("properties", {}).items()
    }
    form = {"type": "object", "properties": properties, "required": schema.get("required", [])}
    if "additionalProperties" in schema:
        form["additionalProperties"] = schema["additionalProperties"]
    return form


def api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (which FastAPI >= 0.16x keeps nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        else:
            inner = getattr(getattr(route, "original_router", None), "routes", None)
            if inner is not None:
                yield from api_routes(inner)


def _auth_of(route: APIRoute, method: str) -> Auth:
    manual = _MANUAL_AUTH.get((method, route.path))
    if manual is not None:
        return manual
    from stepd.api.context import reader, writer

    calls = {dep.call for dep in route.dependant.dependencies}
    if writer in calls:
        return "write"
    if reader in calls:
        return "read"
    raise RuntimeError(
        f"{method} {route.path}: say in api/openapi.py how it checks tokens (_MANUAL_AUTH)"
    )


def _statuses(route: APIRoute, method: str, operation: dict[str, Any], auth: Auth) -> set[int]:
    found: set[int] = set(_EXTRA.get((method, route.path), ()))
    if auth != "none":
        found |= {401, 429, 503}
    if auth == "write":
        found |= {403, 507}
    if "requestBody" in operation:
        found |= {400, 413}
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        found |= {400, 404}
    if any(p["in"] == "query" for p in parameters):
        found.add(400)
    return found


def _error_response(status: int, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _WHY[status],
        "content": {"application/json": {"schema": schema or {"$ref": SCHEMAS + ERROR}}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return response


def build(app: FastAPI) -> dict[str, Any]:
    """The completed document for `app` (see the module's docstring)."""
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _, defs = models_json_schema(
        [(model, "validation") for model in _BODIES.values()],
        ref_template=SCHEMAS + "{model}",
    )
    schemas.update(defs.get("$defs", {}))
    for name in _FORMS:
        schemas[f"{name}Form"] = _form_schema(schemas[name])
    schemas[ERROR] = _ERROR_SCHEMA
    doc["components"]["securitySchemes"] = {SCHEME: _SECURITY_SCHEME}

    for route in api_routes(app.routes):
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            operation = doc["paths"][route.path][method.lower()]
            # A route that is in two routers' tags shows once, under the narrower one.
            operation["tags"] = operation.get("tags", [])[-1:]
            auth = _auth_of(route, method)
            if auth == "write":
                operation["security"] = [{SCHEME: []}]
            elif auth in ("read", "token"):
                operation["security"] = [{SCHEME: []}] if auth == "token" else [{}, {SCHEME: []}]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            if (method, route.path) in _NOT_JSON:
                responses["200"]["content"] = _NOT_JSON[(method, route.path)]
            for status in sorted(_statuses(route, method, operation, auth)):
                own = _OWN_SCHEMA.get((method, route.path, status))
                responses.setdefault(str(status), _error_response(status, own))
    return doc


def install(app: FastAPI) -> None:
    """Serve `build(app)` at /openapi.json (built once, on first request)."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(build(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
