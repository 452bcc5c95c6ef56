"""The API's shapes, once: what clients send and what the server answers (tasks, semaphores,
events).

One pydantic model per shape, used by every edge: the routes parse requests with them and
render answers with them (and FastAPI's OpenAPI document names them), the Python client
parses answers into them, the CLI and the UI pass them to the services. This module imports
only pydantic and the pure domain, so the client and the CLI need no FastAPI.

The field order of a response model is the key order on the wire: it is the order the
original STEP clients and /work/shared/scenarios/ have always seen (tests/api/test_shapes.py
keeps the old JSON of `GET /api/v1/tasks/{id}` to compare).

Request models check what today's server checked with the same messages and fields (the
domain's checks raise `InvalidInput`, which pydantic lets through unchanged), so a bad body
is the same 400 as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stepd.domain.events import NAME_PATTERN as EVENT_NAME
from stepd.domain.events import format_event_id, parse_event_id
from stepd.domain.limits import INT32_MAX, check_int32
from stepd.domain.params import Scalar
from stepd.domain.schedules import NAME_PATTERN as SCHEDULE_NAME
from stepd.domain.tasks import Task, TaskStatus
from stepd.errors import InvalidInput
from stepd.timeutil import iso, parse_instant

MAX_LIMIT = 1000  # tasks one list may return
MAX_SKIP = 1_000_000_000
SORTS = ("id", "-id", "priority")
_STRICT = ConfigDict(extra="forbid", frozen=True)  # requests: unknown fields are refused
_ANSWER = ConfigDict(extra="allow")  # answers: a newer server may add keys


def _seq_id(seq: int | None) -> str | None:
    return None if seq is None else format_event_id(seq)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


# --- requests ---------------------------------------------------------------------------


class SemaphoreUseIn(BaseModel):
    """A semaphore a task holds while it runs, with its weight; in a config, its name may
    be a template over the binding ("yt-{{ cluster }}"), and `capacity` is the capacity of
    a semaphore a task makes on first use (default 1)."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    weight: int = Field(default=1, ge=1)
    # Left out when unset (exclude_if): answers keep the keys they always had.
    capacity: int | None = Field(default=None, ge=1, exclude_if=lambda v: v is None)


class TaskIn(BaseModel):
    """`POST /api/v1/tasks`: run a task type by hand."""

    model_config = _STRICT

    type: str = Field(min_length=1, examples=["CRYPTA_GRAPH_HUMAN_MATCHING_YAML"])
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"date": "2019-01-01"}])
    priority: int = Field(default=0, ge=-1_000_000, le=INT32_MAX)
    semaphores: list[SemaphoreUseIn] = Field(
        default_factory=list, description="Names, or {name, weight}"
    )
    kill_timeout: int | None = Field(default=None, ge=1, le=INT32_MAX, description="Seconds")
    max_retries: int = Field(default=0, ge=0, le=INT32_MAX)

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: object) -> object:
        # The checks (and messages) the server has always made; nulls mean the default.
        if not isinstance(data, Mapping):
            return data
        known = set(cls.model_fields)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
        task_type = data.get("type")
        if not isinstance(task_type, str) or not task_type:
            raise InvalidInput("type is required: the task type to run", field="type")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput("params must be an object", field="params")
        body: dict[str, object] = {"type": task_type, "params": params}
        for key, low in (("priority", -1_000_000), ("max_retries", 0), ("kill_timeout", 1)):
            if data.get(key) is not None:
                # The tasks table keeps these in INTEGER columns (32 bits on PostgreSQL).
                body[key] = check_int32(key, data[key], low=low)
        # Imported here: the configs domain loads the template engine, which the client
        # (that imports this module for the answers' shapes) does not need.
        from stepd.domain.configs import parse_semaphores

        uses = parse_semaphores(data.get("semaphores"), templates=False)
        body["semaphores"] = [u.to_json() for u in uses]
        return body


class SemaphoreIn(BaseModel):
    """`PUT /api/v1/semaphores/{name}`: create a semaphore or set its capacity."""

    model_config = _STRICT

    capacity: int = Field(ge=0, le=INT32_MAX, examples=[1])

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            return data
        # `name` is allowed (and ignored): the path names the semaphore.
        unknown = sorted(set(data) - {"capacity", "name"})
        if unknown:
            raise InvalidInput(
                f"unknown field {unknown[0]!r}; a semaphore has capacity", field=unknown[0]
            )
        return {"capacity": check_int32("capacity", data.get("capacity"), low=0)}


def time_range(query: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """The `since` (inclusive) and `until` (exclusive) of a list's query, ISO 8601."""
    found: dict[str, datetime] = {}
    for key in ("since", "until"):
        if key in query:
            try:
                found[key] = parse_instant(query[key])
            except ValueError as exc:
                raise InvalidInput(f"{key}: {exc}", field=key) from None
    since, until = found.get("since"), found.get("until")
    if since is not None and until is not None and until <= since:
        raise InvalidInput(
            f"until ({iso(until)}) must be after since ({iso(since)})", field="until"
        )
    return since, until


class TaskQuery(BaseModel):
    """The filters of `GET /api/v1/tasks` (and the UI's task list), typed."""

    model_config = _STRICT

    type: str | None = None
    author: str | None = None
    status: tuple[TaskStatus, ...] = ()  # any of these
    config_seq: int | None = None  # the `config_id` filter, as the store keys it
    event_seq: int | None = None  # the `event_id` filter
    skip: int = Field(default=0, ge=0, le=MAX_SKIP)
    limit: int = Field(default=30, ge=0, le=MAX_LIMIT)
    sort: str = "-id"
    since: datetime | None = None  # created at or after (aware UTC)
    until: datetime | None = None  # created before

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> TaskQuery:
        """The filters from a query string, with the messages the API has always given."""
        allowed = {
            *("type", "status", "config_id", "event_id", "author"),
            *("skip", "limit", "sort", "since", "until"),
        }
        unknown = sorted(set(query) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown filter {unknown[0]!r}; use {sorted(allowed)}", field=unknown[0]
            )
        wanted = [s for s in query.get("status", "").split(",") if s]
        bad = [s for s in wanted if s not in TaskStatus.__members__]
        if bad:
            raise InvalidInput(
                f"unknown status {bad[0]!r}; use {', '.join(TaskStatus)}", field="status"
            )
        seqs: dict[str, int | None] = {}
        for key in ("config_id", "event_id"):
            seqs[key] = None
            if key in query:
                seqs[key] = parse_event_id(query[key])
                if seqs[key] is None:
                    raise InvalidInput(f"{key} {query[key]!r} is not an id", field=key)
        sort = query.get("sort", "-id")
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {sorted(SORTS)}", field="sort")
        since, until = time_range(query)
        return cls(
            since=since,
            until=until,
            type=query.get("type"),
            author=query.get("author"),
            status=tuple(TaskStatus(s) for s in wanted),
            config_seq=seqs["config_id"],
            event_seq=seqs["event_id"],
            skip=_query_int(query.get("skip", "0"), "skip", MAX_SKIP),
            limit=_query_int(query.get("limit", "30"), "limit", MAX_LIMIT),
            sort=sort,
        )


def _query_int(value: str, what: str, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be an integer, not {value!r}", field=what) from None
    if number < 0 or number > high:
        raise InvalidInput(f"{what} must be from 0 to {high}", field=what)
    return number


# --- answers ----------------------------------------------------------------------------


class Attempt(BaseModel):
    """One attempt of a task (`attempt_history`)."""

    model_config = _ANSWER

    attempt: int
    status: str
    worker: str | None
    started: str | None
    finished: str | None
    error: str | None
    # The params it ran with (a rerun may change the task's params; these stay)
    params: dict[str, Any] | None = None


class TaskTrigger(BaseModel):
    """What launched a task: a firing (its event, the binding and the events it joined), or
    a run of its config by hand (`kind: manual`, `by` whom, the binding; no event)."""

    model_config = _ANSWER

    event_id: str | None
    binding: dict[str, Any]
    dep_event_ids: list[str]
    kind: Literal["event", "manual", "backfill"] = "event"
    by: str | None = None  # manual, backfill: who ran the config
    backfill_id: int | None = None  # backfill: which one


class TaskOut(BaseModel):
    """A task as the API renders it (`GET /api/v1/tasks`, `POST /api/v1/tasks`)."""

    model_config = _ANSWER

    id: int
    sandbox_task_id: int  # the original Sandbox's name for `id`
    type: str
    params: dict[str, Any]
    status: TaskStatus
    author: str | None
    priority: int
    semaphores: list[dict[str, Any]]
    kill_timeout: int | None
    max_retries: int
    attempts: int
    config_id: str | None
    config_version: int | None
    event_id: str | None
    created: str
    updated: str
    started: str | None
    finished: str | None
    output: Any
    error: str | None

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        """The rendering of a domain task."""
        return cls(**_task_fields(task))


class TaskConfig(BaseModel):
    """The config that made a task, by name, also once deleted (its tombstone names it)."""

    model_config = _ANSWER

    id: str
    name: str | None
    author: str
    version: int | None = Field(description="The config's version that made the task")
    deleted: bool = Field(description="Deleted since: GET /configs/{id} answers its tombstone")


class TaskDetail(TaskOut):
    """One task (`GET /api/v1/tasks/{id}`): also its attempts, its firing and what it emitted.
    `trigger` and `config` are absent (not null) for a task made by hand, as `trigger` has
    always been."""

    attempt_history: list[Attempt]
    trigger: TaskTrigger | None = None
    emitted_event_ids: list[str]
    config: TaskConfig | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON body, keys in the wire's order (no `trigger` nor `config` when there is
        none)."""
        body = self.model_dump(mode="json")
        for key in ("trigger", "config"):
            if body[key] is None:
                del body[key]
        return body


class ProducedTask(BaseModel):
    """A task in an event's story (`produced_tasks`): the original's keys, `task_type` for
    the rendering's `type`; built from the same rendering (`of`)."""

    model_config = _ANSWER

    sandbox_task_id: int
    config_id: str | None
    config_name: str | None
    task_type: str
    params: dict[str, Any]
    status: TaskStatus

    @classmethod
    def of(cls, task: Task, config_name: str | None) -> ProducedTask:
        """The story's entry for a task the config named `config_name` launched."""
        fields = _task_fields(task)
        return cls(
            sandbox_task_id=fields["sandbox_task_id"],
            config_id=fields["config_id"],
            config_name=config_name,
            task_type=fields["type"],
            params=fields["params"],
            status=fields["status"],
        )


def _task_fields(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "sandbox_task_id": task.id,
        "type": task.type,
        "params": dict(task.params),
        "status": task.status,
        "author": task.author,
        "priority": task.priority,
        "semaphores": [dict(s) for s in task.semaphores],
        "kill_timeout": task.kill_timeout,
        "max_retries": task.max_retries,
        "attempts": task.attempts,
        "config_id": _seq_id(task.config_seq),
        "config_version": task.config_version,
        "event_id": _seq_id(task.event_seq),
        "created": iso(task.created),
        "updated": iso(task.updated),
        "started": _iso(task.started),
        "finished": _iso(task.finished),
        "output": task.output,
        "error": task.error,
    }


class Firing(Protocol):
    """What the rendering needs of a recorded firing (store.triggers.Trigger)."""

    @property
    def event_seq(self) -> int: ...
    @property
    def binding(self) -> Mapping[str, object]: ...
    @property
    def dep_events(self) -> Sequence[int]: ...


def task_detail(
    task: Task,
    attempts: Sequence[Mapping[str, Any]],
    trigger: Firing | None,
    emitted: Sequence[int],
    config: TaskConfig | None = None,
) -> TaskDetail:
    """The rendering of one task with its history (`GET /api/v1/tasks/{id}`); `config`
    names the config that made it (live, or deleted since)."""
    return TaskDetail(
        **_task_fields(task),
        attempt_history=[
            Attempt(
                attempt=a["attempt"],
                status=a["status"],
                worker=a["worker"],
                started=_iso(a["started"]),
                finished=_iso(a["finished"]),
                error=a["error"],
                params=_attempt_params(task, a),
            )
            for a in attempts
        ],
        trigger=_trigger(task, trigger),
        emitted_event_ids=[format_event_id(s) for s in emitted],
        config=config,
    )


def _attempt_params(task: Task, attempt: Mapping[str, Any]) -> dict[str, Any]:
    # NULL: it ran with the task's params (they are written on the attempts a rerun with
    # new params leaves behind).
    kept = attempt.get("params")
    return dict(task.params) if kept is None else dict(json.loads(str(kept)))


def _trigger(task: Task, trigger: Firing | None) -> TaskTrigger | None:
    if trigger is not None:
        return TaskTrigger(
            event_id=format_event_id(trigger.event_seq),
            binding=dict(trigger.binding),
            dep_event_ids=[format_event_id(s) for s in trigger.dep_events],
        )
    if task.manual is not None:
        binding = task.manual.get("binding")
        return TaskTrigger(
            event_id=None,
            binding=dict(binding) if isinstance(binding, Mapping) else {},
            dep_event_ids=[],
            kind="manual" if task.backfill_id is None else "backfill",
            by=str(task.manual.get("by")),
            backfill_id=task.backfill_id,
        )
    return None


class TaskLog(BaseModel):
    """A task's log from an offset (`GET /api/v1/tasks/{id}/logs`)."""

    model_config = _ANSWER

    id: int
    attempt: int
    status: TaskStatus
    offset: int
    next_offset: int  # where the next read starts, to follow the log
    text: str
    finished: bool


class TaskStopped(BaseModel):
    """`POST /api/v1/tasks/{id}/stop`."""

    model_config = _ANSWER

    id: int
    status: TaskStatus
    stop_requested: bool = True


class TaskRestarted(BaseModel):
    """`POST /api/v1/tasks/{id}/restart`."""

    model_config = _ANSWER

    id: int
    status: TaskStatus


class SemaphoreOut(BaseModel):
    """A semaphore with its use."""

    model_config = _ANSWER

    name: str
    capacity: int
    used: int  # the weight running tasks hold
    auto: bool  # made by a task's use, not by a person
    owner: str | None
    updated: str


class SemaphoreHolderOut(BaseModel):
    """A task holding units of a semaphore."""

    model_config = _ANSWER

    task_id: int
    type: str
    status: TaskStatus  # EXECUTING, or ENQUEUED until a broker's worker starts it
    weight: int
    since: str | None  # when it took them


class SemaphoreWaiterOut(BaseModel):
    """A task waiting (WAIT_MUTEX) for room in a semaphore."""

    model_config = _ANSWER

    task_id: int
    type: str
    priority: int
    created: str


class SemaphoreDetail(SemaphoreOut):
    """`GET /api/v1/semaphores/{name}`: the semaphore with who holds it and who waits."""

    holders: list[SemaphoreHolderOut]  # the first few, by task id
    holder_count: int
    waiting: list[SemaphoreWaiterOut]  # the first few, in the order they will get room
    waiting_count: int  # among the first 10,000 waiting tasks
    waiting_at_least: bool  # true: more may wait beyond those looked at


class SemaphoreDeleted(BaseModel):
    """`DELETE /api/v1/semaphores/{name}`."""

    model_config = _ANSWER

    name: str


# --- events -----------------------------------------------------------------------------
# `POST /api/v1/events` and `GET /api/v1/events` are hot: their routes parse and render by
# hand (orjson), and tests/api/test_shapes.py checks that what they write is exactly what
# these models write.


class EventIn(BaseModel):
    """One event of a batch."""

    model_config = _STRICT

    name: str = Field(pattern=EVENT_NAME.pattern, examples=["cryptaTaskEvent"])
    params: dict[str, Scalar] = Field(
        default_factory=dict,
        examples=[
            {
                "taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                "taskStatus": "SUCCESS",
                "environment": "stable",
                "date": "2019-01-01",
            }
        ],
    )


class EventsIn(BaseModel):
    """The body of `POST /api/v1/events` (the route validates by hand, for speed)."""

    model_config = _STRICT

    request_id: str | None = Field(
        default=None, description="Same request_id again: same ids, nothing new stored"
    )
    events: list[EventIn]
    source_type: str | None = None
    source: str | dict[str, Scalar] | None = Field(
        default=None,
        description="Who sent the batch: a string, or a flat object of scalars of at most "
        '4 KiB as JSON, e.g. {"task_id": 123}; returned as sent, filtered by source__<key>',
    )


class IdsOut(BaseModel):
    """The answer of `POST /api/v1/events`."""

    model_config = _ANSWER

    ids: list[str] = Field(description="One id per event, in the order sent")


class RejectIn(BaseModel):
    """`POST /api/v1/reject_event`."""

    id: str = Field(min_length=1)


class EventOut(BaseModel):
    """An event as the API renders it (`Event.to_json`); `_id` on the wire."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    id: str = Field(alias="_id")
    name: str
    params: dict[str, Scalar]
    state: str
    created: str
    author: str | None
    request_id: str | None
    source_type: str | None
    source: str | dict[str, Scalar] | None


class EventFiredOut(BaseModel):
    """What the firings an event completed made: tasks, and errors (a firing that could
    make no task, a template that failed)."""

    model_config = _ANSWER

    tasks: int
    errors: int


class EventWithFired(EventOut):
    """An event of `GET /api/v1/events?include=fired`: `fired` is null when the event
    completed no firing."""

    fired: EventFiredOut | None


# --- configs ----------------------------------------------------------------------------
# The domain renders a config (ActionConfig.to_json); ConfigOut is its shape, which
# tests/api/test_shapes.py checks it matches exactly.


class DependencyIn(BaseModel):
    """An event a config waits for: its name and the params it must have (`~` binds any)."""

    name: str = Field(pattern=EVENT_NAME.pattern, examples=["cryptaTaskEvent"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        examples=[
            {
                "taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                "taskStatus": "SUCCESS",
                "environment": "stable",
                "date": "~",
            }
        ],
    )


def _read_only_fields(schema: dict[str, Any]) -> None:
    for key in ("_id", "id", "author", "version", "created", "updated"):
        schema["properties"][key] = {"readOnly": True, "description": "ignored: as GET gave it"}


class ConfigIn(BaseModel):
    """A config; `~` (or null) in a dependency param binds any value and joins on it."""

    # Unknown fields are refused; those a GET returns may be sent back and are ignored.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_read_only_fields)

    name: str | None = Field(default=None, examples=["human-matching-after-soup"])
    description: str = ""
    enabled: bool = True
    event_deps: list[DependencyIn] = Field(min_length=1)
    action_type: str = "SANDBOX_TASK"
    task_type: str = Field(examples=["CRYPTA_GRAPH_HUMAN_MATCHING_YAML"])
    task_params: dict[str, Any] = Field(default_factory=dict, examples=[{"day": "{{ date }}"}])
    action_params: dict[str, Any] = Field(default_factory=dict)
    semaphores: list[dict[str, Any] | str] = Field(default_factory=list)
    priority: int = 0
    kill_timeout: int | None = Field(default=None, ge=1)
    max_retries: int = Field(default=0, ge=0)
    window: str | None = Field(default=None, examples=["7d"])


class ConfigTestIn(BaseModel):
    """A config (or config_id), and an event or a filter of stored events."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["config"], "properties": {"config": {"type": "object"}}},
                {"required": ["config_id"], "properties": {"config_id": {"type": "string"}}},
            ],
            "oneOf": [
                {"required": ["event"], "properties": {"event": {"type": "object"}}},
                {"required": ["events"], "properties": {"events": {"type": "object"}}},
            ],
        }
    )

    config: ConfigIn | None = Field(default=None, description="A config to try (or give config_id)")
    config_id: str | None = None
    event: dict[str, Any] | None = Field(
        default=None, description="A hypothetical event {name, params}, not stored"
    )
    events: dict[str, Any] | None = Field(
        default=None, description="A filter of stored events: {name, params: {k: v}, limit}"
    )


class ConfigsValidateIn(BaseModel):
    """`POST /api/v1/configs/validate` (the route reads the body itself)."""

    configs: list[Any] = Field(
        description="Configs as POST /configs takes them (each is checked and answered)"
    )


class SettingsIn(BaseModel):
    """`PUT /api/v1/settings`: the deployment's settings that change (the route reads the
    body itself and names an unknown key or a bad value in its 400)."""

    status_event_name: str | None = Field(
        default=None, description="The event a finished task reports", examples=["cryptaTaskEvent"]
    )
    environment: str | None = Field(default=None, description="Its `environment` param")
    heartbeat_timeout_seconds: float | None = Field(
        default=None, description="A worker silent this long is gone (1 to 86400)"
    )


class DependencyOut(BaseModel):
    """A dependency as a stored config renders it."""

    model_config = _ANSWER

    name: str
    params: dict[str, Any]


class ConfigOut(BaseModel):
    """A stored config as the API renders it (`ActionConfig.to_json`); `_id` on the wire."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    id: str = Field(alias="_id")
    author: str
    version: int
    name: str | None
    description: str
    enabled: bool
    event_deps: list[DependencyOut]
    action_type: str
    task_type: str
    task_params: dict[str, Any]
    action_params: dict[str, Any]
    semaphores: list[SemaphoreUseIn]
    priority: int
    kill_timeout: int | None
    max_retries: int
    window: str | None
    created: str
    updated: str
    disabled: bool = Field(description="Paused (POST /configs/{id}/disable): it does not fire")
    disabled_by: str | None = Field(default=None, description="Who paused it")
    disabled_at: str | None = Field(default=None, description="Since when")


class ConfigRunIn(BaseModel):
    """`POST /api/v1/configs/{id}/run`: the binding a firing would have, and whether to only
    say what task it would make."""

    model_config = _STRICT

    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Every free param of the config, and only those",
        examples=[{"date": "2019-01-01"}],
    )
    dry_run: bool = False


class BackfillIn(BaseModel):
    """`POST /api/v1/configs/{id}/backfill`: a run of the config for every binding of the
    product of its params' values (at most 10,000), `max_in_flight` tasks at a time."""

    model_config = _STRICT

    params: dict[str, Any] = Field(
        description="Each free param of the config: a value, a list of values, or a range "
        '{"from", "to"} of dates (YYYY-MM-DD, by day) or integers, both ends included',
        examples=[
            {"date": {"from": "2019-01-01", "to": "2019-01-31"}, "mrbasename": ["hahn", "arnold"]}
        ],
    )
    max_in_flight: int = Field(default=4, ge=1, le=1000, description="Tasks unfinished at once")
    dry_run: bool = Field(default=False, description="Only list every binding and its task")
    request_id: str | None = Field(
        default=None,
        max_length=200,
        description="Sent again, answers the backfill it started instead of a second one",
    )


class BackfillOut(BaseModel):
    """A backfill: what it runs and how far it got."""

    model_config = _ANSWER

    id: int
    config_id: str | None = Field(description="A deleted config's too (its tombstone)")
    config_name: str | None
    state: Literal["running", "done", "cancelled"]
    params: dict[str, Any]
    bindings: int
    max_in_flight: int
    made: int = Field(description="Bindings made into tasks so far")
    active: int = Field(description="Its tasks queued or running now")
    finished: int = Field(description="Its tasks that have ended")
    counts: dict[str, int] = Field(description="Its tasks by status")
    progress: float = Field(description="Bindings done (task ended, or failed to make): 0 to 1")
    errors: int = Field(description="Bindings that made no task (a template failed on them)")
    last_error: str | None
    waiting_for: str | None = Field(description="Why it makes nothing now, if not obvious")
    author: str
    request_id: str | None
    created: str
    updated: str
    ended: str | None
    cancelled_by: str | None


class BackfillPlanOut(BaseModel):
    """A backfill's `dry_run`: every binding's task, in the order they would be made."""

    model_config = _ANSWER

    dry_run: Literal[True]
    config_id: str
    config_name: str
    bindings: int
    max_in_flight: int
    tasks: list[dict[str, Any]]


class TaskRestartIn(BaseModel):
    """`POST /api/v1/tasks/{id}/restart` (a body is optional): params that replace or add
    to the task's params for the new attempt (the old ones stay in its attempt history)."""

    model_config = _STRICT

    params: dict[str, Any] = Field(default_factory=dict, examples=[{"date": "2019-01-02"}])

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: object) -> object:
        # Named in a 400 (InvalidInput), as TaskIn's fields are, not a pydantic error.
        if not isinstance(data, Mapping):
            return data
        unknown = sorted(set(data) - {"params"})
        if unknown:
            raise InvalidInput(
                f"unknown field {unknown[0]!r}; a restart takes params", field=unknown[0]
            )
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput("params must be an object of new param values", field="params")
        return {"params": params}


class ErrorOut(BaseModel):
    """Every error the API answers (src/stepd/api/errors.py)."""

    model_config = _ANSWER

    error: str = Field(description="A fixed code", examples=["invalid_input"])
    message: str = Field(description="What was wrong, for a person")
    field: str | None = Field(
        default=None, description="The request field at fault, if any", examples=["events[0].name"]
    )
    retry_after: int | None = Field(default=None, description="429: seconds to wait")
    deleted: bool | None = Field(
        default=None, description="404 of a deleted config: true, its last version as `result`"
    )
    result: dict[str, Any] | None = Field(
        default=None, description="404 of a deleted config: its tombstone (ConfigOut and deleted)"
    )


# --- the fleet ----------------------------------------------------------------------------


class RunningOut(BaseModel):
    """An attempt a worker runs now."""

    model_config = _ANSWER

    task_id: int
    type: str
    attempt: int


class WorkerOut(BaseModel):
    """A worker as it announced itself (`GET /api/v1/workers`), with its state and what
    it runs now: `live` while it beats, `gone` once it stopped or fell silent."""

    model_config = _ANSWER

    name: str
    host: str
    pid: int
    executor: str
    version: str
    queue: str | None
    task_types: list[str]
    state: str
    started: str
    last_seen: str
    stopped: str | None
    running: list[RunningOut]


class WorkerDetail(WorkerOut):
    """One worker (`GET /api/v1/workers/{name}`): also each task type's description."""

    task_type_details: list[dict[str, Any]]


# --- schedules ----------------------------------------------------------------------------
# The routes read the body themselves (domain/schedules.py checks it and names the field
# at fault); these models are what the OpenAPI page shows and the client parses.


class ScheduleIn(BaseModel):
    """`POST /api/v1/schedules`: a cron schedule emitting a `schedule` event per tick."""

    model_config = _STRICT

    name: str = Field(
        pattern=SCHEDULE_NAME.pattern, examples=["nightly-soup"], description="Unique"
    )
    cron: str = Field(
        examples=["0 6 * * 1-5"],
        description="Five columns (minute hour day month weekday) or @hourly, @daily, ...; "
        "at most once a minute",
    )
    timezone: str = Field(default="UTC", examples=["Europe/Moscow"], description="IANA zone")
    params: dict[str, str] = Field(
        default_factory=dict,
        examples=[{"environment": "stable"}],
        description="Added to every tick's event (not `schedule` nor `timestamp`)",
    )
    enabled: bool = Field(default=True, description="false: no ticks, none owed later")
    catch_up: int = Field(
        default=1, ge=1, le=1000, description="After downtime, emit at most this many missed ticks"
    )


class ScheduleChangeIn(BaseModel):
    """`PUT /api/v1/schedules/{name}`: only the fields that change."""

    model_config = _STRICT

    name: str | None = Field(default=None, description="The path's name, if given")
    cron: str | None = None
    timezone: str | None = None
    params: dict[str, str] | None = Field(default=None, description="Replaces the params")
    enabled: bool | None = None
    catch_up: int | None = Field(default=None, ge=1, le=1000)


class ScheduleOut(BaseModel):
    """A stored schedule."""

    model_config = _ANSWER

    name: str
    cron: str
    timezone: str
    params: dict[str, str]
    enabled: bool
    catch_up: int
    author: str
    created: str
    updated: str
    next_tick: str | None = Field(description="UTC; null while disabled")
    last_tick: str | None = Field(description="UTC: the latest tick emitted")


class ScheduleDeleted(BaseModel):
    """`DELETE /api/v1/schedules/{name}`."""

    model_config = _ANSWER

    name: str


T = TypeVar("T")


class Result(BaseModel, Generic[T]):
    """The envelope of every answer that is not an error: `{"result": ...}`."""

    model_config = _ANSWER

    result: T
