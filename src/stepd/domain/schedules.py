"""Cron schedules: what one is, the checks of one, and which of its ticks are due.

Pure: no I/O. A schedule ticks in its own time zone (croniter's zone-aware iteration, so
`0 6 * * *` stays at 06:00 local across a DST change) and every tick is kept and emitted
in UTC. The finest a schedule may tick is once a minute: croniter's seconds (and years)
columns are refused, so that one user's schedule cannot flood the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from stepd.domain.events import ParamsProblem, param_texts
from stepd.errors import InvalidInput
from stepd.timeutil import iso

EVENT_NAME = "schedule"  # the name of every tick's event
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # also a URL path segment
RESERVED_PARAMS = frozenset({"schedule", "timestamp"})  # what each tick's event sets itself
MAX_PARAMS = 50
MAX_PARAM_VALUE_LENGTH = 1000
MAX_CRON_LENGTH = 200
MAX_TIMEZONE_LENGTH = 64
DEFAULT_TIMEZONE = "UTC"
DEFAULT_CATCH_UP = 1
MAX_CATCH_UP = 1000
# croniter's shorthands, all of them at most hourly.
ALIASES = frozenset(
    ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
)
FIELDS = frozenset(("name", "cron", "timezone", "params", "enabled", "catch_up"))


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    """What a client sets of a schedule."""

    name: str  # unique; the `schedule` param of its events
    cron: str  # five columns (minute hour day month weekday) or an @alias
    timezone: str  # an IANA zone the cron is read in ("Europe/Moscow")
    params: Mapping[str, str]  # added to every tick's event
    enabled: bool  # false: no ticks, and none are owed when it is enabled again
    catch_up: int  # at most this many of the latest due ticks are emitted at once


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A stored schedule."""

    spec: ScheduleSpec
    uid: str  # this incarnation of the name (a schedule deleted and made again is another)
    author: str  # who created it: they (or an admin) may change or delete it
    created: datetime
    updated: datetime
    next_tick: datetime  # UTC: the first tick not yet emitted
    last_tick: datetime | None  # UTC: the latest tick emitted, if any

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, kw_only=True)
class Due:
    """What a round owes a schedule at some moment."""

    ticks: list[datetime]  # to emit, oldest first (at most `catch_up`)
    skipped: tuple[datetime, datetime] | None  # the oldest and newest tick left out, if any
    next_tick: datetime  # the first tick after the moment


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            "name must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter "
            f"or digit, not {name!r}",
            field="name",
        )
    return name


def check_cron(cron: object) -> str:
    """A cron expression stepd accepts, or InvalidInput saying why not."""
    if not isinstance(cron, str) or not cron.strip() or len(cron) > MAX_CRON_LENGTH:
        raise InvalidInput(
            f"cron must be a cron expression of at most {MAX_CRON_LENGTH} characters, "
            'e.g. "0 6 * * 1-5"',
            field="cron",
        )
    text = " ".join(cron.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise InvalidInput(
                f"cron {cron!r}: the shorthands are {', '.join(sorted(ALIASES))}", field="cron"
            )
        return text
    if len(text.split(" ")) != 5:
        raise InvalidInput(
            f"cron {cron!r} has {len(text.split(' '))} columns; write five (minute hour "
            "day-of-month month day-of-week): a schedule ticks at most once a minute, so "
            "seconds columns are refused",
            field="cron",
        )
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"cron {cron!r} does not parse: {exc}", field="cron") from None
    return text


def zone(name: object) -> ZoneInfo:
    """The time zone named `name`, or InvalidInput naming the field."""
    if isinstance(name, str) and 0 < len(name) <= MAX_TIMEZONE_LENGTH:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise InvalidInput(
        f"timezone {name!r} is not a known IANA time zone (e.g. UTC, Europe/Moscow)",
        field="timezone",
    )


def check_params(params: object) -> dict[str, str]:
    """Params added to every tick: at most MAX_PARAMS strings, none of the reserved names."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object of string values", field="params")
    if len(params) > MAX_PARAMS:
        raise InvalidInput(f"params has more than {MAX_PARAMS} keys", field="params")
    for key, value in params.items():
        if key in RESERVED_PARAMS:
            raise InvalidInput(
                f"param {key!r} is set by every tick itself; choose another name",
                field=f"params.{key}",
            )
        if not isinstance(value, str) or len(value) > MAX_PARAM_VALUE_LENGTH:
            raise InvalidInput(
                f"param {key!r} must be a string of at most {MAX_PARAM_VALUE_LENGTH} characters",
                field=f"params.{key}",
            )
    try:
        param_texts(params)  # the rules of every event's params (key length, characters)
    except ParamsProblem as exc:
        raise InvalidInput(str(exc), field="params") from None
    return dict(params)


def check_catch_up(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CATCH_UP:
        raise InvalidInput(
            f"catch_up must be a whole number from 1 to {MAX_CATCH_UP}: how many missed ticks "
            "are emitted late after downtime",
            field="catch_up",
        )
    return value


def check_enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("enabled must be true or false", field="enabled")
    return value


def check_fields(body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown fields {unknown}; a schedule has {sorted(FIELDS)}", field=unknown[0]
        )
    return body


def spec_from(body: Mapping[str, object], base: ScheduleSpec | None, now: datetime) -> ScheduleSpec:
    """The spec `body` asks for: each field it carries checked, the rest from `base` (the
    stored schedule) or the defaults; `now` checks that the cron ticks at all."""
    if base is None and "cron" not in body:
        raise InvalidInput('cron is required, e.g. "0 6 * * 1-5"', field="cron")
    if base is None and "name" not in body:
        check_name(None)
    kept: dict[str, object] = _DEFAULTS if base is None else asdict(base)
    checked = {key: _CHECKS[key](value) for key, value in body.items()}
    spec = ScheduleSpec(**{**kept, **checked})  # type: ignore[arg-type]
    first_after(spec, now)  # "0 0 31 2 *" parses but never ticks: refused here
    return spec


def check_timezone(name: object) -> str:
    zone(name)
    assert isinstance(name, str)
    return name


_CHECKS: dict[str, Callable[[object], object]] = {
    "name": check_name,
    "cron": check_cron,
    "timezone": check_timezone,
    "params": check_params,
    "enabled": check_enabled,
    "catch_up": check_catch_up,
}
_DEFAULTS: dict[str, object] = {
    "timezone": DEFAULT_TIMEZONE,
    "params": {},
    "enabled": True,
    "catch_up": DEFAULT_CATCH_UP,
}


def _iterator(spec: ScheduleSpec, start: datetime) -> croniter:
    return croniter(spec.cron, start.astimezone(zone(spec.timezone)))


def _repeat(spec: ScheduleSpec, tick: datetime) -> bool:
    """`tick` is the second pass of a wall-clock time (the hour repeated when clocks go
    back) of a schedule with a fixed hour: "30 1 * * *" ticks at the first 01:30 only, as
    cron does, while "*/15 * * * *" ticks through both hours (they are real time)."""
    # (croniter's own `fold` is not to be trusted: recomputed from the instant.)
    if tick.astimezone(UTC).astimezone(zone(spec.timezone)).fold == 0:
        return False
    hours = croniter(spec.cron).expanded[1]
    return hours != ["*"]


def first_after(spec: ScheduleSpec, moment: datetime) -> datetime:
    """The schedule's first tick strictly after `moment`, in UTC."""
    forwards = _iterator(spec, moment)
    try:
        tick: datetime = forwards.get_next(datetime)
        while _repeat(spec, tick):
            tick = forwards.get_next(datetime)
    except CroniterBadDateError:
        raise InvalidInput(
            f"cron {spec.cron!r} never ticks (no such date in the years ahead)", field="cron"
        ) from None
    return tick.astimezone(UTC)


def due(spec: ScheduleSpec, next_tick: datetime, now: datetime) -> Due:
    """The ticks from `next_tick` to `now` (both included) a round emits: the latest
    `catch_up` of them, found backwards from `now` so that a long downtime costs at most
    `catch_up + 1` steps, not one per missed tick."""
    # croniter's get_prev is strictly before its start: start just after `now`'s second.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    backwards = _iterator(spec, start)
    found: list[datetime] = []
    older: datetime | None = None
    while True:
        local: datetime = backwards.get_prev(datetime)
        if _repeat(spec, local):
            continue
        tick = local.astimezone(UTC)
        if tick < next_tick:
            break
        if len(found) == spec.catch_up:
            older = tick
            break
        found.append(tick)
    found.reverse()
    skipped = None
    if older is not None:
        skipped = (next_tick, older)
    return Due(ticks=found, skipped=skipped, next_tick=first_after(spec, now))


def tick_params(spec: ScheduleSpec, tick: datetime) -> dict[str, str]:
    """The params of the event of `tick`: which schedule, which tick, then its own params
    (which may not use those two names: check_params)."""
    return {"schedule": spec.name, "timestamp": iso(tick), **spec.params}
