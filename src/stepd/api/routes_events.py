"""`/api/v1/events` and `/api/v1/reject_event`, as the original STEP API has them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from stepd.api.body import read_object
from stepd.api.context import ctx, reader, short_read, writer
from stepd.api.openapi import request_body
from stepd.api.render import event_json
from stepd.clock import EVENT_NAME as CLOCK_EVENT
from stepd.domain.events import Event, EventState
from stepd.domain.schedules import EVENT_NAME as SCHEDULE_EVENT
from stepd.errors import Forbidden, InvalidInput
from stepd.services.events import EventBatch
from stepd.shapes import EventOut, EventsIn, IdsOut, RejectIn, Result, time_range
from stepd.store.events import EventQuery
from stepd.store.tokens import Principal
from stepd.store.triggers import Fired

router = APIRouter(prefix="/api/v1", tags=["events"])

MAX_LIMIT = 1000
MAX_SKIP = 1_000_000_000
QUERY_KEYS = {"name", "state", "skip", "limit", "sort", "since", "until", "fired", "include"}
SORTS = {"_id": False, "+_id": False, "-_id": True}


def _doc_body(model: type[BaseModel], *, form: bool = False) -> dict[str, Any]:
    # Its schema (and those it refers to) go under components/schemas (api/openapi.py).
    return request_body(model, form=form)


@router.post(
    "/events", openapi_extra=_doc_body(EventsIn), summary="Send events", response_model=IdsOut
)
async def post_events(request: Request) -> Response:
    # The hot path: the token is checked here rather than as a dependency, and the answer
    # is rendered here rather than validated against IdsOut, because FastAPI's dependency
    # solving and response validation cost more per request than storing one event does.
    principal = await writer(request)
    c = ctx(request)
    # No nesting bound: the hot path skips that check, since a batch is refused at any
    # level deeper than its fixed shape (params and source hold scalars) by loops, not
    # recursion, and the parser itself refuses what it cannot nest.
    body = await read_object(request, c.settings.max_body_bytes, max_depth=0)
    if not _BODY_FIELDS.issuperset(body):
        unknown = sorted(set(body) - _BODY_FIELDS)
        raise InvalidInput(
            f"unknown fields {unknown}; send {{request_id?, events, source_type?, source?}}",
            field=unknown[0],
        )
    if "events" not in body:
        raise InvalidInput("events is required: a list of {name, params}", field="events")
    if not principal.is_admin:
        _refuse_stepds_own(body["events"])
    batch = EventBatch(
        events=body["events"],  # type: ignore[arg-type]
        request_id=body.get("request_id"),  # type: ignore[arg-type]
        source_type=body.get("source_type"),  # type: ignore[arg-type]
        source=body.get("source"),  # type: ignore[arg-type]
    )
    ids = await c.events.submit_async(batch, author=principal.user)
    return Response(orjson.dumps({"ids": ids}), media_type="application/json")


_BODY_FIELDS = frozenset(("request_id", "events", "source_type", "source"))
# The events stepd sends itself: a tick sent by a user would fire what waits for the clock
# or a schedule when that user likes, which only the configs' authors may (configs/run).
STEPDS_OWN = frozenset((CLOCK_EVENT, SCHEDULE_EVENT))


def _refuse_stepds_own(events: object) -> None:
    if not isinstance(events, list):
        return  # (the service names the problem)
    for event in events:
        name = event.get("name") if isinstance(event, dict) else None
        if isinstance(name, str) and name in STEPDS_OWN:  # (any other name: the service's)
            raise Forbidden(
                f"events named {name!r} are stepd's own (its clock's and schedules' ticks): "
                "only an admin may send one; to run a config now, POST /api/v1/configs/{id}/run",
                field="events",
            )


def _int(value: str, what: str, *, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be an integer, not {value!r}", field=what) from None
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidInput(f"{what} must be {bound}, not {number}", field=what)
    return number


def parse_event_query(items: list[tuple[str, str]]) -> EventQuery:
    """The filter in a `GET /api/v1/events` query string, or a 400 naming the bad part."""
    params: dict[str, str] = {}
    source: dict[str, str] = {}
    plain: dict[str, str] = {}
    for key, value in items:
        if key.startswith("params__") and len(key) > len("params__"):
            params[key[len("params__") :]] = value
        elif key.startswith("source__") and len(key) > len("source__"):
            source[key[len("source__") :]] = value
        elif key in QUERY_KEYS:
            plain[key] = value
        else:
            raise InvalidInput(
                f"unknown query parameter {key!r}; use name, state, skip, limit, sort, "
                "since, until, fired, include, params__<key>=<value> or source__<key>=<value>",
                field=key,
            )
    sort = plain.get("sort", "_id")
    if sort not in SORTS:
        raise InvalidInput(f"sort must be _id or -_id, not {sort!r}", field="sort")
    state = plain.get("state")
    if state is not None and state not in EventState.__members__:
        raise InvalidInput(
            f"state must be one of {', '.join(EventState.__members__)}, not {state!r}",
            field="state",
        )
    fired = plain.get("fired")
    if fired is not None and fired not in ("true", "1"):
        raise InvalidInput(
            f"fired takes only true (the events whose firings made a task), not {fired!r}; "
            "leave it out for every event",
            field="fired",
        )
    since, until = time_range(plain)
    return EventQuery(
        fired=fired is not None,
        since=since,
        until=until,
        name=plain.get("name"),
        params=params,
        source=source,
        state=EventState(state) if state else None,
        skip=_int(plain.get("skip", "0"), "skip", low=0, high=MAX_SKIP),
        limit=_int(plain.get("limit", "30"), "limit", low=0, high=MAX_LIMIT),
        newest_first=SORTS[sort],
    )


def _json(body: object) -> Response:
    """A JSON answer rendered at once: as compact as FastAPI's, without its encoder's walk."""
    try:
        data = orjson.dumps(body)
    except TypeError:  # an integer beyond 64 bits, which a param may hold
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(data, media_type="application/json")


@router.get(
    "/events",
    summary=(
        "Find events by name, params__<key>, source__<key>, state, fired=true; skip, limit, "
        "sort; include=fired adds what each fired"
    ),
    response_model=Result[list[EventOut]],  # the document's; the answer is rendered by hand
)
async def get_events(request: Request) -> Response:
    # A hot read (the team's recipes poll it): the reader is checked here rather than as a
    # dependency and the answer rendered here, as for POST /events.
    await reader(request)
    items = list(request.query_params.multi_items())
    query = parse_event_query(items)
    include = _include(items)
    service = ctx(request).events
    found = await short_read(request, service.query, query)
    if not include:
        return _json({"result": [event_json(e) for e in found]})
    fired = await short_read(request, service.fired, found)
    return _json({"result": [_with_fired(e, fired.get(e.seq)) for e in found]})


def _include(items: list[tuple[str, str]]) -> bool:
    """Whether `include=fired` asks for what each event fired (the only thing to include)."""
    wanted = [value for key, value in items if key == "include"]
    for value in wanted:
        if value != "fired":
            raise InvalidInput(
                f"include takes only fired (what each event fired), not {value!r}",
                field="include",
            )
    return bool(wanted)


def _with_fired(event: Event, fired: Fired | None) -> dict[str, object]:
    made = None if fired is None else {"tasks": fired.tasks, "errors": fired.errors}
    return {**event_json(event), "fired": made}


@router.get("/events/{event_id}", summary="One event", response_model=Result[EventOut])
async def get_event(event_id: str, request: Request) -> Response:
    await reader(request)
    event = await short_read(request, ctx(request).events.get, event_id)
    return _json({"result": event_json(event)})


@router.post(
    "/reject_event", openapi_extra=_doc_body(RejectIn, form=True), summary="Reject an event"
)
async def reject_event(
    request: Request, principal: Annotated[Principal, Depends(writer)]
) -> dict[str, str]:
    c = ctx(request)
    body = await read_object(request, c.settings.max_body_bytes, allow_form=True)
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("id is required: the _id of the event to reject", field="id")
    event = await run_in_threadpool(c.events.reject, event_id, principal)
    return {"id": event.id}
