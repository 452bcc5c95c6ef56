"""`/ui/...`: the web pages. Server-rendered from the same services the JSON API uses.

Every page reads in the threadpool (as the API routes do) and renders an autoescaped
template. Reads obey `--private-reads` exactly as the API does: without a token a
private server answers 401 with a page that says why (see docs/ui.md).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from stepd.api import routes_tasks as rendering
from stepd.api.context import AppContext, ctx, reader
from stepd.api.routes_schedules import schedule_out
from stepd.api.routes_workers import worker_out
from stepd.clock import EVENT_NAME as CLOCK_EVENT_NAME
from stepd.domain.backfills import DEFAULT_IN_FLIGHT, BackfillState
from stepd.domain.config_diff import diff_lines
from stepd.domain.events import EventState
from stepd.domain.firing import free_params
from stepd.domain.limits import INT64_MAX
from stepd.domain.schedules import EVENT_NAME as SCHEDULE_EVENT_NAME
from stepd.domain.tasks import TaskStatus
from stepd.errors import InvalidInput, NotFound, StepdError, Unauthorized
from stepd.services.run_history import Run
from stepd.shapes import TaskOut, TaskQuery, time_range
from stepd.store.events import EventQuery
from stepd.store.semaphore_use import SHOWN as SEMAPHORE_USE_SHOWN
from stepd.timeutil import iso, parse_instant, parse_when, utcnow
from stepd.ui.render import STATIC_FILES, make_env, static_file

T = TypeVar("T")
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50  # rows of a list page
MAX_SKIP = 1_000_000
MAX_LOG_CHARS = 200_000  # the tail of a log shown on a task page; the rest is in log.txt
ACTIVE_TASKS = {"ENQUEUED", "WAIT_MUTEX", "EXECUTING"}
EVENT_ID = re.compile(r"^[0-9a-f]{24}$")
TASK_ID = re.compile(r"[0-9]+")  # fullmatch, ASCII: str.isdigit takes "²", which int() refuses

_env = make_env()

# The events of timers, not of pipelines: the events list leaves them out by default.
TIMER_EVENTS = (CLOCK_EVENT_NAME, SCHEDULE_EVENT_NAME)


def _html(template: str, context: Mapping[str, object], status_code: int = 200) -> HTMLResponse:
    body = _env.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


def _error(exc: StepdError) -> HTMLResponse:
    titles = {400: "Bad request", 401: "A token is needed", 403: "Forbidden", 404: "Not found"}
    return _html(
        "error.html",
        {
            "title": titles.get(exc.status_code, "Error"),
            "message": exc.message,
            "private_reads": isinstance(exc, Unauthorized),
            "status_code": exc.status_code,
        },
        exc.status_code,
    )


async def _page(
    request: Request, template: str, build: Callable[[AppContext], Mapping[str, object]]
) -> HTMLResponse:
    """Check the reader, run `build` in the threadpool, render; a StepdError as its page."""
    try:
        await reader(request)
        context = await run_in_threadpool(build, ctx(request))
    except StepdError as exc:
        return _error(exc)
    return _html(template, {"request": request, **context})


def _int(value: str | None, what: str, *, default: int, high: int) -> int:
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be an integer, not {value!r}", field=what) from None
    if not 0 <= number <= high:
        raise InvalidInput(f"{what} must be from 0 to {high}, not {number}", field=what)
    return number


def parse_params(text: str) -> dict[str, str]:
    """`date=2019-01-01 env=stable` (shell quoting for spaces) as {key: value}."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"params: {exc}", field="params") from None
    params: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidInput(
                f"params: {word!r} is not key=value (write date=2019-01-01 env=stable)",
                field="params",
            )
        params[key] = value
    return params


def _story_is_live(story: Mapping[str, Any]) -> bool:
    """True while the story may still change: the event is NEW or one of its tasks runs."""
    if not story.get("evaluated", True):
        return True
    if any(t.get("status") in ACTIVE_TASKS for t in story.get("produced_tasks") or []):
        return True
    return any(_story_is_live(sub) for sub in story.get("chain") or [])


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
@router.get("/ui/")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/events", status_code=307)


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    data = static_file(name)
    if data is None:
        return _error(NotFound(f"no static file {name!r}"))
    return Response(
        data, media_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/ui/find")
async def find(request: Request, id: str = "") -> Response:
    """The search box: an event id goes to its story, an integer to that task."""
    wanted = id.strip()
    if EVENT_ID.match(wanted):
        return RedirectResponse(f"/ui/events/{wanted}", status_code=303)
    if TASK_ID.fullmatch(wanted):
        try:
            number = _task_id(wanted)
        except StepdError as exc:
            return _error(exc)
        return RedirectResponse(f"/ui/tasks/{number}", status_code=303)
    return _error(
        NotFound(
            f"{wanted!r} is neither an event id (24 hex digits, e.g. 00000000000000000000000b) "
            "nor a task id (an integer)"
        )
    )


@router.get("/ui/events")
async def events(request: Request) -> HTMLResponse:
    q = request.query_params
    form = {
        "name": q.get("name", "").strip(),
        "params": q.get("params", "").strip(),
        "state": q.get("state", ""),
        "since": q.get("since", "").strip(),
        "until": q.get("until", "").strip(),
        "clock": "1" if q.get("clock") else "",  # show the clock's events too
    }

    def build(c: AppContext) -> dict[str, object]:
        skip = _int(q.get("skip"), "skip", default=0, high=MAX_SKIP)
        # The clock's and the schedules' events (one a minute and more) crowd out the rest
        # of an unfiltered list: left out unless asked for, or named.
        hide_clock = not (form["clock"] or form["name"] or form["params"])
        state = form["state"]
        if state and state not in EventState.__members__:
            raise InvalidInput(f"state must be one of {', '.join(EventState)}", field="state")
        since, until = _time_range(form)
        query = EventQuery(
            since=since,
            until=until,
            name=form["name"] or None,
            params=parse_params(form["params"]),
            state=EventState(state) if state else None,
            skip=skip,
            limit=PAGE_SIZE + 1,  # one more: is there an older page?
            newest_first=True,
            exclude_names=TIMER_EVENTS if hide_clock else (),
        )
        listed = c.events.query(query)
        fired = c.events.fired(listed[:PAGE_SIZE])
        found = [{**e.to_json(), "fired": fired.get(e.seq)} for e in listed]
        page, paging = _page_of(found, skip)
        return {
            "form": form,
            "states": list(EventState),
            "events": page,
            "hide_clock": hide_clock,
            **paging,
        }

    return await _page(request, "events.html", build)


@router.get("/ui/events/{event_id}")
async def event_story(event_id: str, request: Request) -> HTMLResponse:
    def build(c: AppContext) -> dict[str, object]:
        try:
            story = c.stories.tell(event_id)
        except NotFound:
            raise NotFound(f"no event with id {event_id!r}", field="id") from None
        return {"story": story, "live": _story_is_live(story)}

    return await _page(request, "story.html", build)


def _time_range(form: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """A list page's `since` and `until` as a person types them (2h ago, or ISO 8601)."""
    found: dict[str, str] = {}
    for key in ("since", "until"):
        if form.get(key):
            try:
                found[key] = iso(parse_when(form[key]))
            except ValueError as exc:
                raise InvalidInput(f"{key}: {exc}", field=key) from None
    return time_range(found)


def _page_of(found: list[T], skip: int) -> tuple[list[T], dict[str, int | None]]:
    """A page of what a query for `PAGE_SIZE + 1` rows from `skip` found, and the skips
    of the older and newer pages (None: there is none)."""
    older = skip + PAGE_SIZE if len(found) > PAGE_SIZE else None
    newer = max(0, skip - PAGE_SIZE) if skip else None
    return found[:PAGE_SIZE], {"skip": skip, "older": older, "newer": newer}


def _task_id(text: str) -> int:
    """The task id in a page's address: digits from 1 to the store's largest key."""
    if not TASK_ID.fullmatch(text):
        raise NotFound(f"no task with id {text!r}: task ids are integers", field="id")
    # Checked as text: int() refuses more than 4,300 digits, and the store's key has 19.
    digits = text.lstrip("0")
    if not digits or len(digits) > len(str(INT64_MAX)) or int(digits) > INT64_MAX:
        raise InvalidInput(
            f"{_shorten(text)} is not a task id: task ids are from 1 to {INT64_MAX}", field="id"
        )
    return int(digits)


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


@router.get("/ui/tasks")
async def tasks(request: Request) -> HTMLResponse:
    q = request.query_params
    keys = ("type", "status", "config_id", "event_id", "since", "until")
    form = {key: q.get(key, "").strip() for key in keys}

    def build(c: AppContext) -> dict[str, object]:
        skip = _int(q.get("skip"), "skip", default=0, high=MAX_SKIP)
        since, until = _time_range(form)
        filters = TaskQuery.parse(
            {k: v for k, v in form.items() if v and k not in {"since", "until"}}
        )
        query = filters.model_copy(
            update={"skip": skip, "limit": PAGE_SIZE + 1, "since": since, "until": until}
        )
        found = [TaskOut.of(t).model_dump(mode="json") for t in c.tasks.list(query)]
        page, paging = _page_of(found, skip)
        return {
            "form": form,
            "statuses": list(TaskStatus),
            "tasks": page,
            **paging,
            "live": skip == 0,
        }

    return await _page(request, "tasks.html", build)


@router.get("/ui/tasks/{task_id}")
async def task(task_id: str, request: Request) -> HTMLResponse:
    attempt_text = request.query_params.get("attempt")

    def build(c: AppContext) -> dict[str, object]:
        number = _task_id(task_id)
        attempt = _int(attempt_text, "attempt", default=0, high=1_000_000) or None
        body = rendering.task_detail(c.tasks.get(number)).wire()
        log = rendering.task_log(c.tasks.logs(number, attempt, 0)).model_dump(mode="json")
        text = str(log["text"])
        return {
            "task": body,
            "duration": _duration(body.get("started"), body.get("finished")),
            "log": log,
            "log_text": text[-MAX_LOG_CHARS:],
            "log_cut": max(0, len(text) - MAX_LOG_CHARS),
            "live": body["status"] in ACTIVE_TASKS,
            # Follow the log (static/app.js) while the task runs and the attempt shown is
            # its latest: an earlier attempt's log no longer grows.
            "follow": body["status"] in ACTIVE_TASKS and log["attempt"] >= body["attempts"],
            "attempt_pinned": attempt is not None,
            # the body POST /api/v1/tasks/{id}/restart takes, to edit into the new params
            "rerun_body": {"params": body["params"]},
        }

    return await _page(request, "task.html", build)


def _duration(started: object, finished: object) -> str | None:
    """How long an attempt ran (to now, while it runs), as a person reads it."""
    if not isinstance(started, str):
        return None
    end = parse_instant(finished) if isinstance(finished, str) else utcnow()
    return duration_text((end - parse_instant(started)).total_seconds())


def duration_text(seconds: float) -> str:
    """850 ms, 12.3 s, 4 min 05 s, 2 h 03 min."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@router.get("/ui/tasks/{task_id}/log.txt")
async def task_log(task_id: str, request: Request) -> Response:
    attempt_text = request.query_params.get("attempt")

    def build(c: AppContext) -> dict[str, object]:
        attempt = _int(attempt_text, "attempt", default=0, high=1_000_000) or None
        page = c.tasks.logs(_task_id(task_id), attempt, 0)
        return rendering.task_log(page).model_dump(mode="json")

    try:
        await reader(request)
        log = await run_in_threadpool(build, ctx(request))
    except StepdError as exc:
        return _error(exc)
    return PlainTextResponse(str(log["text"]), headers={"Cache-Control": "no-store"})


@router.get("/ui/configs")
async def configs(request: Request) -> HTMLResponse:
    q = request.query_params
    form = {key: q.get(key, "").strip() for key in ("author", "task_type")}

    def build(c: AppContext) -> dict[str, object]:
        found = c.configs.list({k: v for k, v in form.items() if v})
        rows = sorted(found, key=lambda x: (x.author, x.spec.name or "", x.seq))
        return {"form": form, "configs": [x.to_json() for x in rows]}

    return await _page(request, "configs.html", build)


@router.get("/ui/configs/{config_id}")
async def config(config_id: str, request: Request) -> HTMLResponse:
    q = request.query_params

    def build(c: AppContext) -> dict[str, object]:
        skip = _int(q.get("skip"), "skip", default=0, high=MAX_SKIP)
        # A deleted config's page shows its tombstone: old stories and tasks link here.
        found = c.configs.get_or_tombstone(config_id)
        runs = c.run_history.runs(found.seq, skip=skip, limit=PAGE_SIZE + 1)
        page, paging = _page_of([_run_row(r) for r in runs], skip)
        return {
            "config": found.to_json(),
            "deleted": found.deleted is not None,
            "editable": found.spec.to_json(),  # the body PUT /api/v1/configs/{id} takes
            # the body POST /api/v1/configs/{id}/run takes, with every free param to fill
            "run_body": {"params": dict.fromkeys(free_params(found.spec.event_deps), "")},
            # the body POST /api/v1/configs/{id}/backfill takes: a range or list per param
            "backfill_body": {
                "params": {
                    key: {"from": "", "to": ""} if key == "date" else []
                    for key in free_params(found.spec.event_deps)
                },
                "max_in_flight": DEFAULT_IN_FLIGHT,
            },
            "backfills": [v.to_json() for v in c.backfills.listing(config_seq=found.seq, limit=5)],
            "history": [_version_row(h) for h in reversed(c.configs.history(config_id))],
            "runs": page,
            **paging,
            "rate": c.run_history.success_rate(found.seq),
        }

    return await _page(request, "config.html", build)


def _run_row(run: Run) -> dict[str, object]:
    """A line of a config's run history."""
    seconds = run.duration_seconds
    return {
        **TaskOut.of(run.task).model_dump(mode="json"),
        "binding": run.binding,
        "duration": None if seconds is None else duration_text(seconds),
    }


def _version_row(entry: Mapping[str, Any]) -> dict[str, object]:
    """A history entry with its change as the lines `configs sync` prints (field by field);
    a created entry's change is the first version itself, shown whole."""
    change = entry.get("change") or {}
    fields = entry["action"] not in ("created", "deleted") and isinstance(change, dict)
    return {**entry, "lines": diff_lines(change) if fields else []}


@router.get("/ui/semaphores")
async def semaphores(request: Request) -> HTMLResponse:
    def build(c: AppContext) -> dict[str, object]:
        use = c.semaphores.use()
        return {
            "semaphores": [
                rendering.semaphore_detail(s, use.get(s.name)) for s in c.semaphores.list()
            ],
            "shown": SEMAPHORE_USE_SHOWN,
        }

    return await _page(request, "semaphores.html", build)


@router.get("/ui/schedules")
async def schedules(request: Request) -> HTMLResponse:
    def build(c: AppContext) -> dict[str, object]:
        return {"schedules": [schedule_out(s) for s in c.schedules.list()]}

    return await _page(request, "schedules.html", build)


@router.get("/ui/backfills")
async def backfills(request: Request) -> HTMLResponse:
    q = request.query_params
    form = {key: q.get(key, "").strip() for key in ("state", "config_id")}

    def build(c: AppContext) -> dict[str, object]:
        skip = _int(q.get("skip"), "skip", default=0, high=MAX_SKIP)
        state = form["state"]
        if state and state not in {s.value for s in BackfillState}:
            raise InvalidInput(f"state must be running, done or cancelled, not {state!r}")
        found = c.backfills.listing(
            state=BackfillState(state) if state else None,
            config_id=form["config_id"] or None,
            limit=PAGE_SIZE + 1,
            offset=skip,
        )
        page, paging = _page_of([v.to_json() for v in found], skip)
        return {
            "form": form,
            "states": [s.value for s in BackfillState],
            "backfills": page,
            **paging,
            "live": skip == 0,
        }

    return await _page(request, "backfills.html", build)


@router.get("/ui/backfills/{backfill_id}")
async def backfill(backfill_id: str, request: Request) -> HTMLResponse:
    q = request.query_params

    def build(c: AppContext) -> dict[str, object]:
        if not backfill_id.isdigit() or len(backfill_id) > 18:
            raise NotFound(f"no backfill with id {backfill_id!r}")
        number = int(backfill_id)
        skip = _int(q.get("skip"), "skip", default=0, high=MAX_SKIP)
        view = c.backfills.get(number)
        found = c.backfills.tasks(number, limit=PAGE_SIZE + 1, offset=skip)
        page, paging = _page_of([TaskOut.of(t).model_dump(mode="json") for t in found], skip)
        return {"backfill": view.to_json(), "tasks": page, **paging}

    return await _page(request, "backfill.html", build)


@router.get("/ui/workers")
async def workers(request: Request) -> HTMLResponse:
    def build(c: AppContext) -> dict[str, object]:
        return {"workers": [worker_out(v).model_dump(mode="json") for v in c.fleet.workers()]}

    return await _page(request, "workers.html", build)
