"""Backfills: one config run for every binding of a product of ranges and lists.

A backfill's params give each free param of the config a value, a list of values, or a
range: `{"from": "2019-01-01", "to": "2019-01-31"}` (dates, by day) or `{"from": 1,
"to": 9}` (integers), both ends included. The bindings are their cartesian product in a
fixed order (the params in the order given, the last one varying fastest), so binding
number `i` is computed from the params alone (`binding_at`): a stored backfill keeps its
params and how many bindings it has made, never the list of bindings itself.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from stepd.domain.params import Scalar, is_scalar
from stepd.errors import InvalidInput

MAX_BINDINGS = 10_000  # per backfill: beyond it, a 400 (split the range)
DEFAULT_IN_FLIGHT = 4
MAX_IN_FLIGHT = 1_000
RANGE_KEYS = frozenset({"from", "to"})


class BackfillState(enum.StrEnum):
    RUNNING = "running"  # bindings left to make, or tasks of it still active
    DONE = "done"  # every binding made and every task of it ended
    CANCELLED = "cancelled"  # asked to stop: nothing more is made, queued tasks stopped


@dataclass(frozen=True)
class DateRange(Sequence[str]):
    """The days from `first` to `last`, both included, as ISO dates (YYYY-MM-DD)."""

    first: date
    last: date

    def __len__(self) -> int:
        return (self.last - self.first).days + 1

    def __getitem__(self, index: int) -> str:  # type: ignore[override]  # (no slices)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return (self.first + timedelta(days=index)).isoformat()


@dataclass(frozen=True)
class Axis:
    """One param of a backfill and the values it takes, in order."""

    key: str
    values: Sequence[Scalar]


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range(key: str, spec: Mapping[str, object]) -> Sequence[Scalar]:
    field = f"params.{key}"
    unknown = sorted(set(spec) - RANGE_KEYS)
    missing = sorted(RANGE_KEYS - set(spec))
    if unknown or missing:
        raise InvalidInput(
            f'{field}: a range is {{"from": ..., "to": ...}}; '
            + (f"unknown key {unknown[0]!r}" if unknown else f"it lacks {missing[0]!r}"),
            field=field,
        )
    low, high = spec["from"], spec["to"]
    first, last = _date(low), _date(high)
    if first is not None and last is not None:
        if first > last:
            raise InvalidInput(f"{field}: from ({low}) is after to ({high})", field=f"{field}.from")
        return DateRange(first, last)
    if _is_int(low) and _is_int(high):
        assert isinstance(low, int) and isinstance(high, int)
        if low > high:
            raise InvalidInput(f"{field}: from ({low}) is above to ({high})", field=f"{field}.from")
        if high - low >= MAX_BINDINGS:
            raise _too_many(high - low + 1)
        return range(low, high + 1)
    raise InvalidInput(
        f"{field}: a range's from and to are both dates (YYYY-MM-DD) or both integers; "
        f"got {low!r} and {high!r}",
        field=field,
    )


def _values(key: str, spec: object) -> Sequence[Scalar]:
    field = f"params.{key}"
    if isinstance(spec, Mapping):
        return _range(key, spec)
    if isinstance(spec, list):
        if not spec:
            raise InvalidInput(f"{field}: an empty list makes no binding", field=field)
        if len(spec) > MAX_BINDINGS:
            raise _too_many(len(spec))
        for value in spec:
            if value is None or not is_scalar(value):
                raise InvalidInput(
                    f"{field}: a list holds JSON scalars (string, number, true/false); "
                    f"got {value!r}",
                    field=field,
                )
        if len({(type(v), v) for v in spec}) != len(spec):
            raise InvalidInput(f"{field}: the list repeats a value", field=field)
        return tuple(spec)
    if isinstance(spec, (str, int, float, bool)) and is_scalar(spec):
        return (spec,)
    raise InvalidInput(
        f'{field}: give a value, a list of values, or a range {{"from", "to"}} of dates '
        f"(YYYY-MM-DD) or integers; got {spec!r}",
        field=field,
    )


def _too_many(count: int) -> InvalidInput:
    return InvalidInput(
        f"params make {count:,} bindings; a backfill makes at most {MAX_BINDINGS:,} "
        "(split the range into several backfills)",
        field="params",
    )


def parse_axes(params: object) -> tuple[Axis, ...]:
    """The axes of a backfill's `params` (InvalidInput naming the field that is wrong)."""
    if not isinstance(params, Mapping) or not params:
        raise InvalidInput(
            "params must be an object giving each param of the config its values, e.g. "
            '{"date": {"from": "2019-01-01", "to": "2019-01-31"}}',
            field="params",
        )
    axes = tuple(Axis(str(key), _values(str(key), spec)) for key, spec in params.items())
    count = size(axes)
    if count > MAX_BINDINGS:
        raise _too_many(count)
    return axes


def size(axes: Sequence[Axis]) -> int:
    """How many bindings `axes` make."""
    return math.prod(len(axis.values) for axis in axes)


def binding_at(axes: Sequence[Axis], index: int) -> dict[str, Scalar]:
    """Binding number `index` of the product (the last axis varies fastest)."""
    if not 0 <= index < size(axes):
        raise IndexError(index)
    binding: dict[str, Scalar] = {}
    for axis in reversed(axes):
        index, at = divmod(index, len(axis.values))
        binding[axis.key] = axis.values[at]
    return {axis.key: binding[axis.key] for axis in axes}


def bindings(
    axes: Sequence[Axis], start: int = 0, stop: int | None = None
) -> Iterator[dict[str, Scalar]]:
    """Bindings number `start` up to `stop` (excluded; None: to the end), in order."""
    end = size(axes) if stop is None else min(stop, size(axes))
    for index in range(start, end):
        yield binding_at(axes, index)


def parse_in_flight(value: object) -> int:
    if value is None:
        return DEFAULT_IN_FLIGHT
    if not _is_int(value) or not 1 <= value <= MAX_IN_FLIGHT:  # type: ignore[operator]
        raise InvalidInput(
            f"max_in_flight must be an integer from 1 to {MAX_IN_FLIGHT}; got {value!r}",
            field="max_in_flight",
        )
    assert isinstance(value, int)
    return value


@dataclass(frozen=True, kw_only=True)
class Backfill:
    """A stored backfill: what it runs, how far it got, and who asked."""

    id: int
    config_seq: int
    params: Mapping[str, object]  # as given: the axes are parsed from it again
    total: int  # bindings
    made: int  # bindings made into tasks so far (the next one is number `made`)
    max_in_flight: int
    state: BackfillState
    author: str
    request_id: str | None
    created: datetime
    updated: datetime
    ended: datetime | None
    cancelled_by: str | None
    errors: int  # bindings that made no task (a template of the config failed on them)
    last_error: str | None

    @property
    def axes(self) -> tuple[Axis, ...]:
        return parse_axes(self.params)
