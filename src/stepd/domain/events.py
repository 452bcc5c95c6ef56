"""Events: what clients report, stored and evaluated against action configs."""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from stepd.domain.params import Params, Scalar, is_scalar, param_text
from stepd.timeutil import iso

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]+$")
MAX_NAME_LENGTH = 200
MAX_PARAM_KEY_LENGTH = 200
MAX_PARAMS = 100
MAX_SOURCE_LENGTH = 1000  # characters of a string source
MAX_SOURCE_BYTES = 4096  # of an object source, as compact JSON

Source = str | dict[str, Scalar]
"""Which client, host or task sent a batch: free text, or a flat object of JSON scalars
such as the original client's `{"task_id": 123}` (stored and returned as sent)."""


class EventState(enum.StrEnum):
    """Where an event is in its life."""

    NEW = "NEW"  # stored, not yet evaluated by the reactor
    PROCESSED = "PROCESSED"  # evaluated: it counts as a dependency
    REJECTED = "REJECTED"  # rejected by a person: it never counts again


ID_WIDTH = 24
MAX_SEQ = 2**63 - 1


def format_event_id(seq: int) -> str:
    """The public `_id` of the event with store sequence `seq`.

    Fixed-width hex of a store sequence: opaque to clients, yet it sorts as text
    in creation order, across restarts and across API replicas on one database.
    """
    return f"{seq:0{ID_WIDTH}x}"


_ID_FORMAT = f"{{:0{ID_WIDTH}x}}".format


def format_event_ids(seqs: Iterable[int]) -> list[str]:
    """`format_event_id` of each of `seqs` (a batch's ids at C speed)."""
    return list(map(_ID_FORMAT, seqs))


def parse_event_id(event_id: str) -> int | None:
    """The store sequence behind a public `_id`, or None if it cannot be one."""
    if len(event_id) != ID_WIDTH:
        return None
    try:
        seq = int(event_id, 16)
    except ValueError:
        return None
    # Beyond a signed 64-bit key no stored row can have it (and the database would refuse it).
    return seq if 0 < seq <= MAX_SEQ else None


@dataclass(frozen=True, kw_only=True)
class Event:
    """A stored event."""

    seq: int  # store sequence: the evaluation and sort order
    name: str  # e.g. "cryptaTaskEvent"
    params: Params  # flat map of string keys to JSON scalars
    state: EventState
    created: datetime  # when the store accepted it, UTC
    author: str | None = None  # the token's user that sent it
    request_id: str | None = None  # the client's idempotency key for its batch
    source_type: str | None = None  # free-form: "api", "cli", "task", "luigi", ...
    source: Source | None = None  # which client, host or task sent it
    extra: dict[str, object] = field(default_factory=dict)  # reserved

    @property
    def id(self) -> str:
        return format_event_id(self.seq)

    def to_json(self) -> dict[str, object]:
        """The event as the API returns it."""
        return {
            "_id": self.id,
            "name": self.name,
            "params": dict(self.params),
            "state": self.state.value,
            "created": iso(self.created),
            "author": self.author,
            "request_id": self.request_id,
            "source_type": self.source_type,
            "source": self.source,
        }


def name_problem(name: object, what: str = "name") -> str | None:
    """Why `name` is not a valid event name, or None when it is."""
    if not isinstance(name, str):
        return f"{what} must be a string"
    if not name:
        return f"{what} must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"{what} is longer than {MAX_NAME_LENGTH} characters"
    if not NAME_PATTERN.match(name):
        return f"{what} {name!r} may only use the characters A-Z a-z 0-9 _ . : -"
    return None


def params_problem(params: object) -> str | None:
    """Why `params` is not a valid parameter map, or None when it is."""
    try:
        param_texts(params)
    except ParamsProblem as exc:
        return str(exc)
    return None


class ParamsProblem(ValueError):
    """A parameter map breaks a rule; the message says which and how."""


def param_texts(params: object) -> list[tuple[str, str]]:
    """Check `params` and return (key, `param_text`) of each non-null param, in one pass.

    Storing an event needs both the check and the texts (its index rows); walking the
    map once, dispatching on the exact type, halves the cost of doing it in two steps.
    Raises ParamsProblem with the message `params_problem` returns.
    """
    if not isinstance(params, dict):
        raise ParamsProblem("params must be an object of string keys to JSON scalars")
    if len(params) > MAX_PARAMS:
        raise ParamsProblem(f"params has more than {MAX_PARAMS} keys")
    texts: list[tuple[str, str]] = []
    for key, value in params.items():
        if not key or len(key) > MAX_PARAM_KEY_LENGTH:
            raise ParamsProblem(f"param key {key!r} must be 1 to {MAX_PARAM_KEY_LENGTH} characters")
        kind = type(value)
        if kind is str:
            texts.append((key, value))
        elif value is None:
            continue
        elif kind is bool:
            texts.append((key, "true" if value else "false"))
        elif kind is int or (kind is float and math.isfinite(value)):
            texts.append((key, repr(value)))  # what json.dumps (so param_text) writes
        elif is_scalar(value):  # a subclass of str, int or float
            texts.append((key, param_text(value)))  # type: ignore[arg-type]
        else:
            raise ParamsProblem(
                f"param {key!r} must be a JSON scalar (string, number, boolean or null), "
                f"not {type(value).__name__}"
            )
    return texts


def source_texts(source: object) -> list[tuple[str, str]]:
    """Check a batch's `source`; the (key, param_text) of an object's non-null values to
    index (none for a string). Raises ParamsProblem saying what is wrong with it."""
    if isinstance(source, str):
        if len(source) > MAX_SOURCE_LENGTH:
            raise ParamsProblem(f"source is longer than {MAX_SOURCE_LENGTH} characters")
        return []
    if not isinstance(source, dict):
        raise ParamsProblem(
            "source must be a string or an object of string keys to JSON scalars, "
            f"not {type(source).__name__}"
        )
    texts: list[tuple[str, str]] = []
    for key, value in source.items():
        if not key or len(key) > MAX_PARAM_KEY_LENGTH:
            raise ParamsProblem(
                f"source key {key!r} must be 1 to {MAX_PARAM_KEY_LENGTH} characters"
            )
        if not is_scalar(value):
            raise ParamsProblem(
                f"source.{key} must be a JSON scalar (string, number, boolean or null), "
                f"not {type(value).__name__}"
            )
        if (text := param_text(value)) is not None:
            texts.append((key, text))
    encoded = json.dumps(source, ensure_ascii=False, separators=(",", ":")).encode()
    if len(encoded) > MAX_SOURCE_BYTES:
        raise ParamsProblem(
            f"source is {len(encoded)} bytes as JSON; an object source may have {MAX_SOURCE_BYTES}"
        )
    return texts
