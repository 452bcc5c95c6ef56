"""evaluate() against a brute-force oracle that tries every combination of events."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stepd.domain.events import Event, EventState
from stepd.domain.matching import Evaluation, MatchEvent, evaluate, parse_dependencies
from stepd.domain.params import Scalar, param_text

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NAMES = ["a", "b"]
KEYS = ["k1", "k2", "k3"]
VALUES: list[Scalar] = ["x", "y", "1", 1, None]  # "1" and 1 are equal as text; None is null
WINDOW_SECONDS = 50.0


class ListLookup:
    """A store's index in miniature: prior events filtered by name and `equal` only."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events = list(events)

    def find(self, name: str, equal: Mapping[str, str]) -> Iterable[MatchEvent]:
        return [
            e
            for e in self.events
            if e.name == name
            and all(k in e.params and param_text(e.params[k]) == v for k, v in equal.items())
        ]


class NewestListLookup(ListLookup):
    """The same, able to hand out the newest accepted event only (as the store does)."""

    def newest(
        self, name: str, equal: Mapping[str, str], accept: Callable[[MatchEvent], bool]
    ) -> MatchEvent | None:
        found = [e for e in self.find(name, equal) if accept(e)]
        return max(found, key=lambda e: e.seq, default=None)


# --- generators ------------------------------------------------------------------------

fixed_values = st.sampled_from(["x", "y", 1, "1"])
conditions = st.one_of(
    fixed_values,
    st.sampled_from(["~", None]),
    st.builds(lambda vs: {"in": vs}, st.lists(st.sampled_from(VALUES), min_size=1, max_size=2)),
    st.builds(lambda p: {"prefix": p}, st.sampled_from(["", "x", "1"])),
    st.builds(lambda r: {"regex": r}, st.sampled_from(["[xy]", "1|x", ".*"])),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda v: {"not": v}, st.sampled_from(VALUES)),
)
dep_specs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(NAMES),
        # free params are frequent, so that joins are common
        "params": st.dictionaries(
            st.sampled_from(KEYS),
            st.one_of(st.just("~"), st.just("~"), fixed_values, conditions),
            max_size=3,
        ),
    }
)
# mostly "x" and "y", so that free params often agree and joins succeed
event_values = st.one_of(st.sampled_from(["x", "y"]), st.sampled_from(VALUES))
event_params = st.dictionaries(st.sampled_from(KEYS), event_values, min_size=2, max_size=3)


@st.composite
def events_near(draw: st.DrawFn, specs: list[Any]) -> tuple[str, dict[str, Scalar]]:
    """A name and params, usually shaped after one of `specs` so that it often matches."""
    name = draw(st.sampled_from(NAMES))
    params = dict(draw(event_params))
    if draw(st.integers(0, 3)) > 0:
        spec = draw(st.sampled_from(specs))
        name = spec["name"]
        for key, cond in spec["params"].items():
            if cond == "~" or cond is None:
                params.setdefault(key, draw(event_values))
            elif not isinstance(cond, dict):
                params[key] = cond
    return name, params


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Any], list[Event], Event, float | None, bool]:
    """Dependencies, prior events, a trigger, a window, and whether the lookup sees the trigger."""
    # sizes drawn explicitly: hypothesis favours tiny lists, and joins need company
    specs: list[Any] = draw(
        st.lists(dep_specs, min_size=draw(st.sampled_from([2, 3, 1])), max_size=3)
    )
    if draw(st.booleans()):  # one dependency of free params only: several bindings arise
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True))
        specs[-1] = {**specs[-1], "params": dict.fromkeys(keys, "~")}
    if draw(st.booleans()):  # every dependency joined on a shared free param
        join_key = draw(st.sampled_from(KEYS))
        specs = [{**s, "params": {**s["params"], join_key: "~"}} for s in specs]
    count = draw(st.sampled_from([8, 5, 10, 3, 1, 0]))
    prior = []
    for seq in range(1, count + 1):
        name, params = draw(events_near(specs))
        age = draw(st.sampled_from([0, 100]))  # 100 is outside WINDOW_SECONDS
        created = T0 + timedelta(seconds=seq - age)
        prior.append(
            Event(seq=seq, name=name, params=params, state=EventState.PROCESSED, created=created)
        )
    name, params = draw(events_near(specs))
    created = T0 + timedelta(seconds=count + 1)
    trigger = Event(seq=count + 1, name=name, params=params, state=EventState.NEW, created=created)
    window = draw(st.sampled_from([None, WINDOW_SECONDS]))
    lookup_sees_trigger = draw(st.booleans())  # a store may already hold the trigger
    return specs, prior, trigger, window, lookup_sees_trigger


# --- the oracle: written from the spec's JSON, independent of the matcher --------------


def satisfies(spec: dict[str, Any], e: Event) -> bool:
    if e.name != spec["name"]:
        return False
    for key, cond in spec["params"].items():
        present = key in e.params
        text = param_text(e.params[key]) if present else None
        if cond == "~" or cond is None:
            ok = present
        elif not isinstance(cond, dict):
            ok = present and text == param_text(cond)
        elif "in" in cond:
            ok = present and text in {param_text(v) for v in cond["in"]}
        elif "prefix" in cond:
            ok = text is not None and text.startswith(cond["prefix"])
        elif "regex" in cond:
            ok = text is not None and re.fullmatch(cond["regex"], text) is not None
        elif "exists" in cond:
            ok = present == cond["exists"]
        else:
            ok = not present or text != param_text(cond["not"])
        if not ok:
            return False
    return True


def free_keys(spec: dict[str, Any]) -> list[str]:
    return [k for k, c in spec["params"].items() if c == "~" or c is None]


def canonical(binding: Mapping[str, Scalar]) -> frozenset[tuple[str, str | None]]:
    return frozenset((k, param_text(v)) for k, v in binding.items())


def consistent(spec: dict[str, Any], e: Event, binding: Mapping[str, Scalar]) -> bool:
    return all(param_text(e.params[k]) == param_text(binding[k]) for k in free_keys(spec))


def oracle(
    specs: list[Any], prior: list[Event], trigger: Event, window: float | None
) -> tuple[set[frozenset[tuple[str, str | None]]], list[Event]]:
    earliest = None if window is None else trigger.created - timedelta(seconds=window)
    pool = [e for e in prior if earliest is None or e.created >= earliest] + [trigger]
    per_slot = [[e for e in pool if satisfies(s, e)] for s in specs]
    found = set()
    for combo in itertools.product(*per_slot):
        if trigger not in combo:
            continue
        binding: dict[str, Scalar] = {}
        agree = True
        for spec, e in zip(specs, combo, strict=True):
            for key in free_keys(spec):
                if key in binding and param_text(binding[key]) != param_text(e.params[key]):
                    agree = False
                binding.setdefault(key, e.params[key])
        if agree:
            found.add(canonical(binding))
    return found, pool


# --- the properties --------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_evaluate_finds_exactly_the_bindings_of_every_combination(scenario: Any) -> None:
    specs, prior, trigger, window, lookup_sees_trigger = scenario
    deps = parse_dependencies(specs)
    stored = [*prior, trigger] if lookup_sees_trigger else prior
    result = evaluate(deps, trigger, ListLookup(stored), window_seconds=window)
    expected, pool = oracle(specs, prior, trigger, window)

    check_against_oracle(specs, result, expected, pool)

    # Every prior event is older than the trigger: the caller may say so, and the
    # evaluation skips the lookups of the trigger's own slots without changing anything.
    quick = evaluate(deps, trigger, ListLookup(stored), window_seconds=window, nothing_newer=True)
    assert quick == result
    # A lookup that walks newest first gives the same evaluation, explanations included.
    walked = evaluate(deps, trigger, NewestListLookup(stored), window_seconds=window)
    assert walked == result
    # What the reactor asks for: the same firings, without the story's explanations.
    firing_only = evaluate(deps, trigger, ListLookup(stored), window_seconds=window, explain=False)
    assert firing_only.firings == result.firings
    assert (firing_only.waiting, firing_only.mismatches) == ((), ())


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(min_value=1, max_value=10))
def test_an_event_evaluated_out_of_seq_order_still_gets_the_newest_events(
    scenario: Any, position: int
) -> None:
    # PostgreSQL commits can land out of seq order, so the reactor may evaluate an event
    # after newer ones: the trigger takes a seq in the middle of the prior events.
    specs, prior, trigger, window, _ = scenario
    seq = min(position, len(prior) + 1)
    prior = [dataclasses.replace(e, seq=e.seq + 1) if e.seq >= seq else e for e in prior]
    trigger = dataclasses.replace(trigger, seq=seq)
    deps = parse_dependencies(specs)
    result = evaluate(deps, trigger, ListLookup(prior), window_seconds=window)
    expected, pool = oracle(specs, prior, trigger, window)
    check_against_oracle(specs, result, expected, pool)
    assert evaluate(deps, trigger, NewestListLookup(prior), window_seconds=window) == result


def check_against_oracle(
    specs: list[Any], result: Evaluation, expected: set[Any], pool: list[Event]
) -> None:
    assert {canonical(f.binding) for f in result.firings} == expected
    assert len({f.binding_key for f in result.firings}) == len(result.firings)
    for firing in result.firings:
        assert len(firing.events) == len(specs)
        for spec, chosen in zip(specs, firing.events, strict=True):
            fits = [e for e in pool if satisfies(spec, e) and consistent(spec, e, firing.binding)]
            assert chosen.seq == max(e.seq for e in fits)
        assert set(firing.binding) == {k for s in specs for k in free_keys(s)}


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_outcome_explains_why_nothing_fired(scenario: Any) -> None:
    specs, prior, trigger, window, _ = scenario
    deps = parse_dependencies(specs)
    result = evaluate(deps, trigger, ListLookup(prior), window_seconds=window)
    filled = [i for i, s in enumerate(specs) if satisfies(s, trigger)]
    if result.firings:
        assert result.outcome == "fired"
    elif filled:
        assert result.outcome == "waiting"
        assert result.mismatches == ()
        for waiting in result.waiting:
            assert waiting.missing, "a waiting binding names a dependency it waits for"
    else:
        assert result.outcome == "not_matched"
        named = {i for i, s in enumerate(specs) if s["name"] == trigger.name}
        assert {m.dep_index for m in result.mismatches} == named


@settings(max_examples=200, deadline=None)
@given(dep_specs)
def test_dependency_json_round_trips(spec: Any) -> None:
    (dep,) = parse_dependencies([spec])
    assert dep.to_json() == spec
    assert parse_dependencies([dep.to_json()]) == (dep,)
