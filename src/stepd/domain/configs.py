"""Action configs: which task to launch, with which params, once which events arrived."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepd.domain.durations import parse_duration
from stepd.domain.matching import Dependency, DependencySpecError, parse_dependencies
from stepd.domain.templates import TemplateProblem, check_templates
from stepd.errors import InvalidInput
from stepd.timeutil import iso

ACTION_TYPES = ("SANDBOX_TASK",)
MAX_CONFIG_NAME = 200
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:@/ -]+$")
MAX_TASK_TYPE = 200  # the tasks table's `type` column

# What a config's numbers may be. The task columns they are copied into are 32-bit on
# PostgreSQL (64-bit on SQLite): both stores get the same, narrower, bound, so that a
# config that saves on one fires on the other. Beyond the column, each is bounded by
# its meaning: nothing sane waits ten years, retries a thousand times, or ranks above
# the priorities a person would write.
INT_COLUMN_MAX = 2**31 - 1
TEN_YEARS_SECONDS = 10 * 365 * 86400
PRIORITY_RANGE = (-1_000_000, 1_000_000)
KILL_TIMEOUT_RANGE = (1, TEN_YEARS_SECONDS)
MAX_RETRIES_RANGE = (0, 1000)
WEIGHT_RANGE = (1, INT_COLUMN_MAX)
MAX_WINDOW_SECONDS = TEN_YEARS_SECONDS

WRITABLE = {
    "name",
    "description",
    "enabled",
    "event_deps",
    "action_type",
    "task_type",
    "task_params",
    "action_params",
    "semaphores",
    "priority",
    "kill_timeout",
    "max_retries",
    "window",
}
# Fields a client may send back from a GET in its PUT: read-only, ignored.
READ_ONLY = {
    "_id",
    "id",
    "author",
    "version",
    "created",
    "updated",
    "disabled",
    "disabled_by",
    "disabled_at",
}


@dataclass(frozen=True, kw_only=True)
class SemaphoreUse:
    """A semaphore a task acquires while it runs."""

    name: str  # the semaphore's name, or a template of it over the binding ("yt-{{ cluster }}")
    weight: int  # units taken from its capacity
    capacity: int | None = None  # of the semaphore when a task makes it (default 1)

    @property
    def templated(self) -> bool:
        """Its name is a template: each firing takes the semaphore its binding names."""
        return "{{" in self.name or "{%" in self.name

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"name": self.name, "weight": self.weight}
        if self.capacity is not None:
            body["capacity"] = self.capacity
        return body


@dataclass(frozen=True, kw_only=True)
class ConfigSpec:
    """What a user writes: a config before it is stored."""

    name: str  # unique per author; need not equal the task type
    description: str  # for people
    enabled: bool  # a disabled config never fires (the story says so)
    event_deps: tuple[Dependency, ...]  # every one must be satisfied to fire
    action_type: str  # "SANDBOX_TASK": launch a task of the built-in runner
    task_type: str  # which task type to launch
    task_params: Mapping[str, object]  # extra task params; strings are Jinja templates
    action_params: Mapping[str, object]  # free-form, stored and filterable
    semaphores: tuple[SemaphoreUse, ...]  # acquired by each task it launches
    priority: int  # higher runs first
    kill_timeout: int | None  # seconds before a task is killed (TIMEOUT)
    max_retries: int  # re-runs of FAILURE/EXCEPTION
    window: str | None  # max age of joined events, as written ("7d")
    window_seconds: float | None  # the same in seconds

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "event_deps": [d.to_json() for d in self.event_deps],
            "action_type": self.action_type,
            "task_type": self.task_type,
            "task_params": dict(self.task_params),
            "action_params": dict(self.action_params),
            "semaphores": [s.to_json() for s in self.semaphores],
            "priority": self.priority,
            "kill_timeout": self.kill_timeout,
            "max_retries": self.max_retries,
            "window": self.window,
        }


@dataclass(frozen=True, kw_only=True)
class Pause:
    """Who paused a config (`POST /configs/{id}/disable`), and when."""

    by: str  # the user whose token paused it
    at: datetime  # since when it has not fired


@dataclass(frozen=True, kw_only=True)
class Deletion:
    """Who deleted a config, and when: what its tombstone says besides its last version."""

    by: str  # the user whose token deleted it (the author, an admin, or `configs sync --prune`)
    at: datetime  # when: it has fired on no event since


@dataclass(frozen=True, kw_only=True)
class ActionConfig:
    """A stored config: its spec plus identity and history."""

    id: str  # opaque, stable
    seq: int  # store key
    author: str  # the user whose token created it
    version: int  # bumped by every change
    spec: ConfigSpec
    created: datetime
    updated: datetime
    # Paused by an operator: kept apart from the spec, which PUT and `configs sync` replace
    paused: Pause | None = None
    # Deleted: this is its tombstone, its last version kept so that past stories and tasks
    # can still name it (store/configs.py); it never fires again.
    deleted: Deletion | None = None

    @property
    def fires(self) -> bool:
        """Whether events fire it now: enabled in its spec, not paused, not deleted."""
        return self.spec.enabled and self.paused is None and self.deleted is None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "_id": self.id,
            "author": self.author,
            "version": self.version,
            **self.spec.to_json(),
            "created": iso(self.created),
            "updated": iso(self.updated),
            "disabled": self.paused is not None,
            "disabled_by": None if self.paused is None else self.paused.by,
            "disabled_at": None if self.paused is None else iso(self.paused.at),
        }
        if self.deleted is not None:  # only a tombstone has these keys: live answers stay
            body["deleted"] = True
            body["deleted_by"] = self.deleted.by
            body["deleted_at"] = iso(self.deleted.at)
        return body


def _shown(value: object) -> str:
    # An integer of thousands of digits is neither worth showing nor cheap to print.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def _int(
    body: Mapping[str, Any],
    key: str,
    default: int | None,
    *,
    bounds: tuple[int, int],
    limits: bool,
) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(
            f"{key} must be an integer of at least {low}, not {_shown(value)}", field=key
        )
    if limits and value > high:
        raise InvalidInput(
            f"{key} must be an integer from {low} to {high}, not {_shown(value)}", field=key
        )
    return value


def limit_problem(spec: ConfigSpec) -> InvalidInput | None:
    """Why a stored config's numbers could not go into a task row (None: they fit).

    The reactor asks before it writes a firing's task, so that a config stored before
    the limits existed records an error on its trigger instead of failing the insert.
    Only the columns' own bound applies: what fired before keeps firing.
    """
    top = INT_COLUMN_MAX
    if (
        -top <= spec.priority <= top
        and (spec.kill_timeout is None or -top <= spec.kill_timeout <= top)
        and -top <= spec.max_retries <= top
        and all(s.weight <= top for s in spec.semaphores)
        and len(spec.task_type) <= MAX_TASK_TYPE
    ):
        return None  # every firing asks: the common answer without building a list
    for key, value in (
        ("priority", spec.priority),
        ("kill_timeout", spec.kill_timeout),
        ("max_retries", spec.max_retries),
        *((f"semaphores[{i}].weight", s.weight) for i, s in enumerate(spec.semaphores)),
    ):
        if value is not None and not -INT_COLUMN_MAX <= value <= INT_COLUMN_MAX:
            return InvalidInput(
                f"{key} is {_shown(value)}, beyond what a task can hold "
                f"(±{INT_COLUMN_MAX}); change the config",
                field=key,
            )
    if len(spec.task_type) > MAX_TASK_TYPE:
        return InvalidInput(
            f"task_type is longer than {MAX_TASK_TYPE} characters", field="task_type"
        )
    return None


def parse_semaphores(
    value: object, *, limits: bool = True, templates: bool = True
) -> tuple[SemaphoreUse, ...]:
    """A config's (or, `templates` False, a hand-made task's) semaphores: {name, weight,
    capacity}; a name may be a template over the binding where there is one."""
    if value is None:
        return ()
    if isinstance(value, dict) and set(value) == {"acquires"}:
        value = value["acquires"]  # the Sandbox form {"acquires": [...]}
    if not isinstance(value, list):
        raise InvalidInput("semaphores must be a list of {name, weight}", field="semaphores")
    uses: list[SemaphoreUse] = []
    for i, item in enumerate(value):
        where = f"semaphores[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or set(item) - {"name", "weight", "capacity"}:
            raise InvalidInput(f"{where} must be {{name, weight, capacity}}", field=where)
        name, weight = item.get("name"), item.get("weight", 1)
        capacity = item.get("capacity")
        if not isinstance(name, str) or not name or len(name) > MAX_CONFIG_NAME:
            raise InvalidInput(f"{where}.name must be a non-empty string", field=f"{where}.name")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise InvalidInput(
                f"{where}.weight must be a positive integer", field=f"{where}.weight"
            )
        if limits and weight > WEIGHT_RANGE[1]:
            raise InvalidInput(
                f"{where}.weight must be at most {WEIGHT_RANGE[1]}, not {_shown(weight)}",
                field=f"{where}.weight",
            )
        if capacity is not None and (
            isinstance(capacity, bool)
            or not isinstance(capacity, int)
            or not 1 <= capacity <= WEIGHT_RANGE[1]
        ):
            raise InvalidInput(
                f"{where}.capacity must be an integer from 1 to {WEIGHT_RANGE[1]}",
                field=f"{where}.capacity",
            )
        use = SemaphoreUse(name=name, weight=weight, capacity=capacity)
        if use.templated and not templates:
            raise InvalidInput(
                f"{where}.name is a template, but a task made by hand has no binding to "
                "render it with; name the semaphore itself",
                field=f"{where}.name",
            )
        if use.templated:
            try:
                check_templates({"name": name}, path=where)
            except TemplateProblem as exc:
                raise InvalidInput(str(exc), field=exc.field) from exc
            # A semaphore the template names is made on first use with this capacity.
            if weight > (capacity or 1):
                raise InvalidInput(
                    f"{where}.weight {weight} exceeds the capacity ({capacity or 1}) of the "
                    "semaphores its name makes; give a capacity of at least the weight",
                    field=f"{where}.weight",
                )
        uses.append(use)
    return tuple(uses)


def _mapping(body: Mapping[str, Any], key: str) -> dict[str, object]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{key} must be an object", field=key)
    return value


def _text(body: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", field=key)
    return value


def parse_config(body: object, *, stored: bool = False) -> ConfigSpec:
    """Validate a config as a client sends it; InvalidInput names the first bad field.

    `stored`: the body of a config already in the store, read back. The ranges of its
    numbers are not checked again, and a regex that RE2 refuses is taken (see
    `parse_dependencies`): a config saved before either rule existed must still load,
    list and be fixed (the reactor then records why it cannot fire, see `limit_problem`).
    """
    limits = not stored
    if not isinstance(body, dict):
        raise InvalidInput("a config must be a JSON object")
    unknown = sorted(set(body) - WRITABLE - READ_ONLY)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; a config has {sorted(WRITABLE)}", field=unknown[0]
        )
    if not body.get("event_deps"):
        raise InvalidInput(
            "event_deps is required: a non-empty list of {name, params}", field="event_deps"
        )
    try:
        deps = parse_dependencies(body["event_deps"], stored=stored)
    except DependencySpecError as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    action_type = _text(body, "action_type", "SANDBOX_TASK")
    if action_type not in ACTION_TYPES:
        raise InvalidInput(
            f"action_type must be one of {list(ACTION_TYPES)}, not {action_type!r}",
            field="action_type",
        )
    action_params = _mapping(body, "action_params")
    # The original kept the task type among the action's params; accept it there too.
    task_type = _text(body, "task_type", None) or action_params.get("task_type")
    if not isinstance(task_type, str) or not task_type:
        raise InvalidInput("task_type is required: the task type to launch", field="task_type")
    if limits and len(task_type) > MAX_TASK_TYPE:
        raise InvalidInput(
            f"task_type must be at most {MAX_TASK_TYPE} characters", field="task_type"
        )
    name = _text(body, "name", None) or task_type
    if len(name) > MAX_CONFIG_NAME or not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"name must be 1 to {MAX_CONFIG_NAME} of A-Z a-z 0-9 _ . : @ / - and spaces",
            field="name",
        )
    task_params = _mapping(body, "task_params")
    try:
        check_templates(task_params)
    except TemplateProblem as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false", field="enabled")
    window = body.get("window")
    window_seconds = (
        None
        if window is None
        else parse_duration(window, field="window", limit=MAX_WINDOW_SECONDS if limits else None)
    )
    return ConfigSpec(
        name=name,
        description=_text(body, "description", "") or "",
        enabled=enabled,
        event_deps=deps,
        action_type=action_type,
        task_type=task_type,
        task_params=task_params,
        action_params=action_params,
        semaphores=parse_semaphores(body.get("semaphores"), limits=limits),
        priority=_int(body, "priority", 0, bounds=PRIORITY_RANGE, limits=limits) or 0,
        kill_timeout=_int(body, "kill_timeout", None, bounds=KILL_TIMEOUT_RANGE, limits=limits),
        max_retries=_int(body, "max_retries", 0, bounds=MAX_RETRIES_RANGE, limits=limits) or 0,
        window=None if window is None else str(window),
        window_seconds=window_seconds,
    )


def diff(old: ConfigSpec, new: ConfigSpec) -> dict[str, dict[str, object]]:
    """Field -> {old, new} for every field that differs (what the history keeps)."""
    a, b = old.to_json(), new.to_json()
    return {k: {"old": a[k], "new": b[k]} for k in a if a[k] != b.get(k)}
