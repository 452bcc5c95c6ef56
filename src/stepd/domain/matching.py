"""Dependency matching (SPEC section 2): which events satisfy a config's `event_deps`.

Pure: `evaluate` takes the dependencies, the new (trigger) event and a lookup of
prior events, and returns bindings and explanations; the caller does the I/O.
Values compare by `param_text`; `"~"`/null params are free and bind; operator
objects (`in`, `prefix`, `regex`, `exists`, `not`) filter without binding.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal, Protocol, cast

from stepd.domain.events import MAX_PARAM_KEY_LENGTH, MAX_PARAMS, name_problem
from stepd.domain.params import Params, Scalar, is_scalar, param_text
from stepd.domain.regex import RegexRefused, UserRegex
from stepd.errors import InvalidInput

FREE = "~"
"""The value of a free param in a dependency (JSON null means the same)."""

ConditionKind = Literal["eq", "free", "in", "prefix", "regex", "exists", "not"]
OPERATORS = ("in", "prefix", "regex", "exists", "not")
NOT_A_CONDITION = 'must be a JSON scalar, "~" or null (free), or an operator such as {"in": [...]}'
NOT_AN_OPERATOR = "an operator is an object with exactly one key: in, prefix, regex, exists or not"


class SearchLimitReached(Exception):
    """A join search took more than its `max_steps` (see `evaluate`)."""


class RegexNotRunnable(InvalidInput):
    """A stored config's regex that RE2 refuses (saved before regexes ran in RE2): its
    evaluation fails with this error, which names the param, rather than match wrongly."""


class DependencySpecError(ValueError):
    """A dependency spec is invalid; `field` is its path, e.g. `event_deps[1].params.date`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    """Why an event's params do not satisfy one dependency."""

    dep_index: int  # which dependency, in the config's order
    key: str  # the param that failed
    expected: object  # the condition as the user wrote it: "SUCCESS", "~", {"in": [...]}
    actual: Scalar  # the event's value (None when missing: see `reason`)
    reason: str  # "differs", "missing", "not in list", "wrong prefix", ...


@dataclass(frozen=True, kw_only=True)
class ParamCondition:
    """One param of a dependency: a fixed value, a free param or an operator."""

    key: str  # the event param it constrains
    kind: ConditionKind  # how it is compared
    value: Scalar | tuple[Scalar, ...]  # the operand ("~"/None when free, a tuple for `in`)
    # compiled once, because one config is checked against many events; by RE2, so that
    # no pattern can take more than linear time in the value (see stepd.domain.regex)
    pattern: UserRegex | None = field(default=None, init=False, repr=False, compare=False)
    # why RE2 refused the pattern (then `pattern` is None): see `parse_dependencies(stored=)`
    refused: str | None = field(default=None, init=False, repr=False, compare=False)
    # the texts an `eq`, `in` or `not` compares with, so all agree with `param_text`
    texts: frozenset[str | None] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "regex":
            try:
                object.__setattr__(self, "pattern", UserRegex(str(self.value)))
            except RegexRefused as exc:
                object.__setattr__(self, "refused", str(exc))
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        object.__setattr__(self, "texts", frozenset(param_text(v) for v in values))

    @property
    def spec(self) -> object:
        """The condition as JSON, as the user wrote it."""
        if self.kind in ("eq", "free"):
            return self.value
        return {self.kind: list(self.value) if isinstance(self.value, tuple) else self.value}

    def failure(self, params: Params) -> str | None:
        """Why `params` fails this condition, or None when it holds."""
        present = self.key in params
        text = param_text(params[self.key]) if present else None
        if self.kind == "exists":
            return None if present == self.value else ("missing" if self.value else "present")
        if self.kind == "not":
            return "equals the excluded value" if present and text in self.texts else None
        if not present:
            return "missing"
        if self.kind == "eq":
            return None if text in self.texts else "differs"
        if self.kind == "in":
            return None if text in self.texts else "not in list"
        if self.kind == "prefix":
            found = text is not None and text.startswith(str(self.value))
            return None if found else "wrong prefix"
        if self.kind == "regex":
            if self.pattern is None:
                raise RegexNotRunnable(
                    f"the regex of param {self.key!r} cannot run: {self.refused}; it was stored"
                    " before regexes ran in RE2: change it and save the config again",
                    field=self.key,
                )
            # fullmatch: a pattern says what the whole value looks like, as `eq` does
            found = text is not None and self.pattern.fullmatch(text)
            return None if found else "no regex match"
        return None  # free: any present value matches


@dataclass(frozen=True, kw_only=True)
class Dependency:
    """One entry of a config's `event_deps`: an event name and param conditions."""

    name: str  # the event name it waits for
    conditions: tuple[ParamCondition, ...]  # in the order the user wrote them

    @classmethod
    def from_json(
        cls, obj: object, *, path: str = "event_deps[0]", stored: bool = False
    ) -> Dependency:
        """Validate and build a dependency from `{name, params}`.

        `params` may be omitted (it then matches every event of that name); any
        other key is an error, since a misspelt `params` would match everything.
        `stored`: see `parse_dependencies`.
        """
        if not isinstance(obj, dict):
            raise DependencySpecError(path, "a dependency must be an object {name, params}")
        for key in obj:
            if key not in ("name", "params"):
                raise DependencySpecError(f"{path}.{key}", "unknown key: use name and params")
        problem = name_problem(obj.get("name"))
        if problem is not None:
            raise DependencySpecError(f"{path}.name", problem)
        params = obj.get("params", {})
        if not isinstance(params, dict):
            raise DependencySpecError(f"{path}.params", "params must be an object")
        if len(params) > MAX_PARAMS:
            raise DependencySpecError(f"{path}.params", f"more than {MAX_PARAMS} params")
        conditions = tuple(
            _parse_condition(key, value, f"{path}.params.{key}", stored=stored)
            for key, value in params.items()
        )
        return cls(name=obj["name"], conditions=conditions)

    def to_json(self) -> dict[str, object]:
        """The dependency as `{name, params}`; `from_json` of it gives it back."""
        return {"name": self.name, "params": {c.key: c.spec for c in self.conditions}}

    @cached_property  # cached: the join search asks for it in its inner loop
    def fixed(self) -> Mapping[str, str]:
        """Param key -> text of every fixed (`eq`) condition: what a store can index."""
        return {
            c.key: t for c in self.conditions if c.kind == "eq" for t in c.texts if t is not None
        }

    @cached_property
    def free(self) -> tuple[str, ...]:
        """The keys of the free params, which bind the event's values."""
        return tuple(c.key for c in self.conditions if c.kind == "free")

    def check(self, params: Params, *, dep_index: int = 0) -> list[Mismatch]:
        """Why `params` does not satisfy this dependency (empty when it does; joins aside)."""
        failures = ((c, c.failure(params)) for c in self.conditions)
        return [
            Mismatch(
                dep_index=dep_index, key=c.key, expected=c.spec, actual=params.get(c.key), reason=r
            )
            for c, r in failures
            if r is not None
        ]

    def matches(self, params: Params) -> bool:
        """True when `params` satisfies every condition (joins aside)."""
        return all(c.failure(params) is None for c in self.conditions)

    def bind(self, params: Params) -> dict[str, Scalar] | None:
        """The free params' values when `params` satisfies this dependency, else None."""
        if not self.matches(params):
            return None
        return {key: params[key] for key in self.free}


def _parse_condition(
    key: object, value: object, path: str, *, stored: bool = False
) -> ParamCondition:
    if not isinstance(key, str) or not key or len(key) > MAX_PARAM_KEY_LENGTH:
        raise DependencySpecError(path, f"a param key must be 1 to {MAX_PARAM_KEY_LENGTH} chars")
    if value is None or value == FREE:
        return ParamCondition(key=key, kind="free", value=value)
    if isinstance(value, str | int | float | bool):  # None is free, above
        return ParamCondition(key=key, kind="eq", value=value)
    if not isinstance(value, dict):
        raise DependencySpecError(path, NOT_A_CONDITION)
    if len(value) != 1 or next(iter(value)) not in OPERATORS:
        raise DependencySpecError(path, NOT_AN_OPERATOR)
    ((op, operand),) = value.items()
    if op == "in":
        if not isinstance(operand, list) or not operand or not all(map(is_scalar, operand)):
            raise DependencySpecError(path, '"in" takes a non-empty list of JSON scalars')
        return ParamCondition(key=key, kind="in", value=tuple(operand))  # tuple: hashable
    if op in ("prefix", "regex") and not isinstance(operand, str):
        raise DependencySpecError(path, f'"{op}" takes a string')
    if op == "regex":
        condition = ParamCondition(key=key, kind="regex", value=operand)  # compiles it
        if condition.refused is not None and not stored:
            raise DependencySpecError(path, f"regex: {condition.refused}")
        return condition
    if op == "exists" and not isinstance(operand, bool):
        raise DependencySpecError(path, '"exists" takes true or false')
    if op == "not" and not is_scalar(operand):
        raise DependencySpecError(path, '"not" takes a JSON scalar')
    return ParamCondition(key=key, kind=cast(ConditionKind, op), value=operand)


def parse_dependencies(
    obj: object, *, path: str = "event_deps", stored: bool = False
) -> tuple[Dependency, ...]:
    """Validate a config's `event_deps`: a non-empty list of dependencies.

    `stored`: the dependencies of a config read back from the store. A regex that RE2
    refuses (a config saved before regexes ran in RE2) is then taken, so that the config
    still loads, lists and can be fixed; evaluating it raises RegexNotRunnable.
    """
    if not isinstance(obj, list) or not obj:
        raise DependencySpecError(path, "must be a non-empty list of {name, params}")
    return tuple(
        Dependency.from_json(d, path=f"{path}[{i}]", stored=stored) for i, d in enumerate(obj)
    )


class MatchEvent(Protocol):
    """What the matcher needs of an event (`stepd.domain.events.Event` has it)."""

    @property
    def seq(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> Params: ...
    @property
    def created(self) -> datetime: ...


class EventLookup(Protocol):
    """Where the matcher finds prior events; the store implements it with an index."""

    def find(self, name: str, equal: Mapping[str, str]) -> Iterable[MatchEvent]:
        """Prior, non-rejected events named `name` whose `param_text(params[k]) == v`
        for every `k, v` in `equal`. Extra events are harmless: all is re-checked."""
        ...


class NewestLookup(EventLookup, Protocol):
    """A lookup that can also walk its events newest first (the store's index can)."""

    def newest(
        self, name: str, equal: Mapping[str, str], accept: Callable[[MatchEvent], bool]
    ) -> MatchEvent | None:
        """The newest event `find(name, equal)` would return that `accept`s, or None."""
        ...


def binding_key(binding: Mapping[str, Scalar]) -> str:
    """Canonical JSON of a binding (sorted keys, text values): equal bindings, equal keys."""
    text = {k: param_text(v) for k, v in binding.items()}
    return json.dumps(text, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, kw_only=True)
class Firing:
    """One distinct binding the trigger completed: the config fires once for it."""

    binding: dict[str, Scalar]  # every free param -> the event's value (the task's event_params)
    events: tuple[MatchEvent, ...]  # per dependency, the newest event consistent with binding

    @cached_property  # the reactor asks twice per firing; a frozen value cannot change
    def binding_key(self) -> str:
        """Canonical text of the binding, unique per distinct binding."""
        return binding_key(self.binding)


@dataclass(frozen=True, kw_only=True)
class Waiting:
    """The trigger filled a dependency, but the others could not be completed."""

    binding: dict[str, Scalar]  # the free params the trigger bound
    missing: tuple[int, ...]  # indexes of the dependencies no event could fill


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """What one trigger event does to one config."""

    firings: tuple[Firing, ...]  # sorted by binding_key
    waiting: tuple[Waiting, ...]  # per dependency slot the trigger filled without firing
    mismatches: tuple[Mismatch, ...]  # when the trigger filled no slot: why, per dep of its name

    @property
    def outcome(self) -> Literal["fired", "waiting", "not_matched"]:
        """The summary the event story shows."""
        if self.firings:
            return "fired"
        return "waiting" if self.waiting else "not_matched"


def evaluate(
    deps: Sequence[Dependency],
    trigger: MatchEvent,
    lookup: EventLookup,
    *,
    window_seconds: float | None = None,
    nothing_newer: bool = False,
    explain: bool = True,
    max_steps: int | None = None,
) -> Evaluation:
    """Every distinct binding that `trigger` completes for a config with `deps`.

    A binding counts when one event per dependency, the trigger in at least one
    slot and prior events (or the trigger) in the others, satisfies every
    dependency and agrees on shared free params. With `window_seconds`, prior
    events created longer than that before the trigger are ignored.

    `nothing_newer` is the caller's promise that `lookup` holds no event with a
    higher seq than the trigger (a story's lookup of events before it; the reactor
    when it evaluated nothing after it). The newest event of the trigger's own
    slots is then the trigger itself, and those slots cost no lookup: for a config
    with one dependency, no lookup at all.

    With `explain=False` (the reactor, which only fires) the evaluation leaves out what
    it would tell a story: `waiting` and `mismatches` are empty.

    `max_steps` bounds the join search (partial bindings tried): configs whose dependencies
    share no free param join every event of one with every event of the others, a product
    that grows with the store. Past it, SearchLimitReached. None (the reactor): unbounded.
    """
    if nothing_newer and len(deps) == 1 and deps[0].name == trigger.name:
        # One dependency, filled by the trigger, the newest event there is: the general
        # search below would find exactly this firing (or, unmatched, fall through).
        (dep,) = deps
        if dep.matches(trigger.params):
            binding = {key: trigger.params[key] for key in dep.free}
            return Evaluation(
                firings=(Firing(binding=binding, events=(trigger,)),), waiting=(), mismatches=()
            )
    search = _Search(deps, trigger, lookup, window_seconds, max_steps)
    slots = [i for i, d in enumerate(deps) if d.name == trigger.name and d.matches(trigger.params)]
    if not slots:
        if not explain:
            return Evaluation(firings=(), waiting=(), mismatches=())
        named = [(i, d) for i, d in enumerate(deps) if d.name == trigger.name]
        why = tuple(m for i, d in named for m in d.check(trigger.params, dep_index=i))
        return Evaluation(firings=(), waiting=(), mismatches=why)
    # Distinct bindings by their texts: the same test as equal binding keys, without
    # encoding JSON for each (a firing encodes its key once, when it is asked).
    firings: dict[tuple[tuple[str, str | None], ...], Firing] = {}
    waiting: dict[tuple[tuple[tuple[str, str | None], ...], tuple[int, ...]], Waiting] = {}
    for i in slots:
        start = {key: trigger.params[key] for key in deps[i].free}
        # the trigger's own slot also reports the newest event consistent with the binding:
        # a later one can exist when events were evaluated out of seq order (PostgreSQL
        # commits land out of order), unless the caller says there is none
        # (newest() finds one at least: the trigger fills its own slot)
        own = trigger if nothing_newer else search.newest(i, start) or trigger
        search.dead = set()
        found = list(search.complete(start, {i: own}, frozenset(range(len(deps))) - {i}))
        for binding, chosen in found:
            if (key := _texts(binding)) not in firings:
                events = tuple(chosen[j] for j in range(len(deps)))
                firings[key] = Firing(binding=binding, events=events)
        if not found and explain:
            missing = tuple(sorted(search.dead))
            if (waits := (_texts(start), missing)) not in waiting:
                waiting[waits] = Waiting(binding=start, missing=missing)
    ordered = tuple(sorted(firings.values(), key=lambda f: f.binding_key))
    return Evaluation(firings=ordered, waiting=tuple(waiting.values()), mismatches=())


def _texts(binding: Mapping[str, Scalar]) -> tuple[tuple[str, str | None], ...]:
    """A binding as sorted (key, text) pairs: equal exactly when the binding keys are."""
    return tuple(sorted((k, param_text(v)) for k, v in binding.items()))


Query = tuple[tuple[str, str], ...]
Partial = tuple[dict[str, Scalar], dict[int, MatchEvent]]  # a binding, and the slots' events


class _Search:
    """One evaluation's join search; it caches lookups so that each query runs once."""

    def __init__(
        self,
        deps: Sequence[Dependency],
        trigger: MatchEvent,
        lookup: EventLookup,
        window: float | None,
        max_steps: int | None = None,
    ) -> None:
        self.deps, self.trigger, self.lookup = deps, trigger, lookup
        self.steps, self.max_steps = 0, max_steps  # calls of complete(), and their bound
        self.earliest = None if window is None else trigger.created - timedelta(seconds=window)
        self.found: dict[tuple[str, Query], list[MatchEvent]] = {}  # lookup results, by query
        self.valid: dict[tuple[int, Query], list[MatchEvent]] = {}  # those satisfying dep j
        self.dead: set[int] = set()  # slots that no event could fill: what a Waiting misses

    def candidates(self, j: int, binding: Mapping[str, Scalar]) -> list[MatchEvent]:
        """Events that fill slot `j` consistently with `binding` (the trigger included)."""
        dep = self.deps[j]
        bound = {k: param_text(binding[k]) for k in dep.free if k in binding}
        # a null binding cannot be queried by text; it is filtered below like the rest
        equal = {**dep.fixed, **{k: t for k, t in bound.items() if t is not None}}
        query = tuple(sorted(equal.items()))
        if (dep.name, query) not in self.found:
            self.found[(dep.name, query)] = [
                e
                for e in self.lookup.find(dep.name, equal)
                if e.seq != self.trigger.seq
                and (self.earliest is None or e.created >= self.earliest)
            ]
        if (j, query) not in self.valid:
            pool = [*self.found[(dep.name, query)], self.trigger]
            self.valid[(j, query)] = [
                e for e in pool if e.name == dep.name and dep.matches(e.params)
            ]
        valid = self.valid[(j, query)]
        return [e for e in valid if all(param_text(e.params[k]) == t for k, t in bound.items())]

    def newest(self, j: int, binding: Mapping[str, Scalar]) -> MatchEvent | None:
        """The newest of `candidates(j, binding)` (None when there is none), for a slot
        whose free params `binding` all binds. With a lookup that walks newest first, the
        others are never read: their number grows with every event the store keeps."""
        walk = getattr(self.lookup, "newest", None)
        if walk is None:
            return max(self.candidates(j, binding), key=lambda e: e.seq, default=None)
        dep, trigger, earliest = self.deps[j], self.trigger, self.earliest
        bound = {k: param_text(binding[k]) for k in dep.free if k in binding}
        # a null binding cannot be queried by text; `fills` checks it like the rest
        equal = {**dep.fixed, **{k: t for k, t in bound.items() if t is not None}}

        def fills(e: MatchEvent) -> bool:  # what candidates() keeps
            return (
                e.name == dep.name
                and dep.matches(e.params)
                and all(param_text(e.params[k]) == t for k, t in bound.items())
            )

        def accept(e: MatchEvent) -> bool:  # a stored event: not the trigger, in the window
            return e.seq != trigger.seq and (earliest is None or e.created >= earliest) and fills(e)

        found: MatchEvent | None = walk(dep.name, equal, accept)
        if fills(trigger) and (found is None or trigger.seq > found.seq):
            found = trigger
        return found

    def complete(
        self, binding: dict[str, Scalar], chosen: dict[int, MatchEvent], open_slots: frozenset[int]
    ) -> Iterator[Partial]:
        """Every way to fill `open_slots` consistently with `binding` (backtracking)."""
        self.steps += 1
        if self.max_steps is not None and self.steps > self.max_steps:
            raise SearchLimitReached(f"a join search of more than {self.max_steps} steps")
        if not open_slots:
            yield binding, chosen
            return
        j = min(open_slots, key=lambda s: self._rank(s, binding))
        new_keys = [k for k in self.deps[j].free if k not in binding]
        # only distinct values of the new keys make distinct bindings; keep the newest event
        groups: dict[tuple[str | None, ...], MatchEvent] = {}
        if not new_keys and hasattr(self.lookup, "newest"):
            # One distinct binding at most: the newest event that fills the slot.
            if (only := self.newest(j, binding)) is not None:
                groups[()] = only
        else:
            for e in self.candidates(j, binding):
                values = tuple(param_text(e.params[k]) for k in new_keys)
                if values not in groups or e.seq > groups[values].seq:
                    groups[values] = e
        if not groups:
            self.dead.add(j)
        for e in groups.values():
            extended = {**binding, **{k: e.params[k] for k in new_keys}}
            yield from self.complete(extended, {**chosen, j: e}, open_slots - {j})

    def _rank(self, j: int, binding: Mapping[str, Scalar]) -> tuple[bool, int, int, int]:
        # Slots whose free params are all bound only check; then those sharing the
        # most bound params (the most selective queries); then the most fixed params.
        free = self.deps[j].free
        bound = sum(k in binding for k in free)
        return (bound < len(free), -bound, -len(self.deps[j].fixed), j)
