"""Dependency matching: the original STEP's cases, the operators, validation, windows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stepd.domain.events import Event, EventState
from stepd.domain.matching import (
    Dependency,
    DependencySpecError,
    Evaluation,
    Firing,
    MatchEvent,
    Mismatch,
    evaluate,
    parse_dependencies,
)
from stepd.domain.params import Params, Scalar, param_text

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class ListLookup:
    """The prior events, filtered as a store's index would; it counts its queries."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events = list(events)
        self.queries: list[tuple[str, dict[str, str]]] = []

    def find(self, name: str, equal: Mapping[str, str]) -> Iterable[MatchEvent]:
        self.queries.append((name, dict(equal)))
        return [
            e
            for e in self.events
            if e.name == name
            and all(k in e.params and param_text(e.params[k]) == v for k, v in equal.items())
        ]


def event(seq: int, name: str, params: Params, *, age_seconds: float = 0) -> Event:
    created = T0 + timedelta(seconds=seq) - timedelta(seconds=age_seconds)
    return Event(seq=seq, name=name, params=params, state=EventState.PROCESSED, created=created)


def deps(*specs: Any) -> tuple[Dependency, ...]:
    return parse_dependencies(list(specs))


def run(
    config: tuple[Dependency, ...], trigger: Event, *prior: Event, window: float | None = None
) -> Evaluation:
    return evaluate(config, trigger, ListLookup(prior), window_seconds=window)


def bindings(result: Evaluation) -> list[dict[str, Scalar]]:
    return [f.binding for f in result.firings]


# --- the original STEP's cases ---------------------------------------------------------


def test_free_param_binds_the_events_value() -> None:
    config = deps({"name": "e", "params": {"param1": "value1", "param2": "~"}})
    result = run(config, event(1, "e", {"param1": "value1", "param2": "value2"}))
    assert result.outcome == "fired"
    assert bindings(result) == [{"param2": "value2"}]


def test_null_is_free_like_tilde() -> None:
    config = deps({"name": "e", "params": {"param2": None}})
    result = run(config, event(1, "e", {"param2": "value2"}))
    assert bindings(result) == [{"param2": "value2"}]


def test_wrong_fixed_value_does_not_fire_and_says_which_param_differed() -> None:
    config = deps({"name": "e", "params": {"param1": "value1", "param2": "~"}})
    result = run(config, event(1, "e", {"param1": "value01", "param2": "value2"}))
    assert result.outcome == "not_matched"
    assert result.mismatches == (
        Mismatch(dep_index=0, key="param1", expected="value1", actual="value01", reason="differs"),
    )


def test_free_param_missing_from_the_event_does_not_match() -> None:
    config = deps({"name": "e", "params": {"param2": "~"}})
    result = run(config, event(1, "e", {"param1": "value1"}))
    assert result.outcome == "not_matched"
    assert [(m.key, m.expected, m.reason) for m in result.mismatches] == [
        ("param2", "~", "missing")
    ]


def test_event_on_another_name_is_not_matched_without_mismatches() -> None:
    result = run(deps({"name": "e", "params": {}}), event(1, "other", {}))
    assert result.outcome == "not_matched"
    assert result.mismatches == ()


def test_two_deps_with_one_missing_wait_for_the_missing_one() -> None:
    config = deps({"name": "a", "params": {"x": "1"}}, {"name": "b", "params": {"y": "2"}})
    result = run(config, event(5, "a", {"x": "1"}), event(1, "b", {"y": "3"}))
    assert result.outcome == "waiting"
    assert result.firings == ()
    assert [(w.binding, w.missing) for w in result.waiting] == [({}, (1,))]


def test_two_deps_joined_on_a_free_param_fire_with_the_joined_binding() -> None:
    config = deps(
        {"name": "a", "params": {"date": "~", "host": "~"}},
        {"name": "b", "params": {"date": "~", "cluster": "~"}},
    )
    prior = event(1, "b", {"date": "2016-01-01", "cluster": "hahn"})
    result = run(config, event(2, "a", {"date": "2016-01-01", "host": "h1"}), prior)
    assert bindings(result) == [{"date": "2016-01-01", "host": "h1", "cluster": "hahn"}]


def test_mapreduce_day_load_closed_for_two_logtypes_joins_on_mrbasename_and_date() -> None:
    name = "mapreduce__day_load_closed"
    config = deps(
        {"name": name, "params": {"logtype": "access-log", "mrbasename": "~", "date": "~"}},
        {"name": name, "params": {"logtype": "redir-log", "mrbasename": "~", "date": "~"}},
    )
    access = event(1, name, {"logtype": "access-log", "mrbasename": "hahn", "date": "2016-01-01"})
    other_day = event(
        2, name, {"logtype": "access-log", "mrbasename": "hahn", "date": "2016-01-02"}
    )
    redir = event(3, name, {"logtype": "redir-log", "mrbasename": "hahn", "date": "2016-01-01"})
    result = run(config, redir, access, other_day)
    assert bindings(result) == [{"mrbasename": "hahn", "date": "2016-01-01"}]
    assert [e.seq for e in result.firings[0].events] == [1, 3]


def test_join_whose_free_values_differ_does_not_fire() -> None:
    config = deps({"name": "a", "params": {"date": "~"}}, {"name": "b", "params": {"date": "~"}})
    result = run(
        config, event(2, "a", {"date": "2016-01-02"}), event(1, "b", {"date": "2016-01-01"})
    )
    assert result.outcome == "waiting"
    assert [(w.binding, w.missing) for w in result.waiting] == [({"date": "2016-01-02"}, (1,))]


def test_several_prior_events_give_several_bindings_and_several_firings() -> None:
    config = deps({"name": "a", "params": {"x": "~"}}, {"name": "b", "params": {"y": "~"}})
    prior = [event(1, "b", {"y": "1"}), event(2, "b", {"y": "2"}), event(3, "b", {"y": "1"})]
    result = run(config, event(4, "a", {"x": "0"}), *prior)
    assert bindings(result) == [{"x": "0", "y": "1"}, {"x": "0", "y": "2"}]


def test_same_binding_from_two_prior_events_fires_once_with_the_newest_event() -> None:
    config = deps({"name": "a", "params": {"d": "~"}}, {"name": "b", "params": {"d": "~"}})
    prior = [event(1, "b", {"d": "1", "n": "old"}), event(2, "b", {"d": "1", "n": "new"})]
    result = run(config, event(3, "a", {"d": "1"}), *prior)
    assert len(result.firings) == 1
    assert [e.seq for e in result.firings[0].events] == [3, 2]


def test_empty_params_match_any_event_of_that_name() -> None:
    config = deps({"name": "e", "params": {}})
    result = run(config, event(1, "e", {"anything": "at all"}))
    assert result.outcome == "fired"
    assert bindings(result) == [{}]


def test_values_compare_by_text_so_the_string_one_equals_the_number_one() -> None:
    config = deps({"name": "a", "params": {"n": 1}}, {"name": "b", "params": {"k": "~"}})
    result = run(config, event(2, "a", {"n": "1"}), event(1, "b", {"k": 7}))
    assert bindings(result) == [{"k": 7}]
    assert result.firings[0].binding_key == '{"k":"7"}'


def test_trigger_may_fill_several_slots_itself() -> None:
    config = deps({"name": "e", "params": {"d": "~"}}, {"name": "e", "params": {"d": "~"}})
    result = run(config, event(1, "e", {"d": "x"}))
    assert bindings(result) == [{"d": "x"}]
    assert [e.seq for e in result.firings[0].events] == [1, 1]


def test_rejoined_binding_by_a_new_event_fires_again_with_the_new_event() -> None:
    config = deps({"name": "a", "params": {"d": "~"}}, {"name": "b", "params": {"d": "~"}})
    prior = [event(1, "a", {"d": "1"}), event(2, "b", {"d": "1"})]
    result = run(config, event(3, "b", {"d": "1"}), *prior)
    assert [e.seq for e in result.firings[0].events] == [1, 3]


def test_lookup_is_queried_once_per_query_and_with_bound_free_params() -> None:
    config = deps(
        {"name": "a", "params": {"d": "~", "k": "v"}},
        {"name": "b", "params": {"d": "~", "s": "OK"}},
        {"name": "b", "params": {"d": "~", "s": "OK"}},
    )
    lookup = ListLookup([event(1, "b", {"d": "1", "s": "OK"})])
    result = evaluate(config, event(2, "a", {"d": "1", "k": "v"}), lookup)
    assert result.outcome == "fired"
    assert lookup.queries == [("a", {"k": "v", "d": "1"}), ("b", {"s": "OK", "d": "1"})]


def test_join_queries_the_store_by_the_bound_value_not_by_scanning_every_event() -> None:
    config = deps(
        {"name": "a", "params": {"date": "~"}},
        {"name": "b", "params": {"date": "~", "status": "OK"}},
    )
    prior = [event(seq, "b", {"date": f"d{seq}", "status": "OK"}) for seq in range(1, 2001)]
    lookup = ListLookup(prior)
    result = evaluate(config, event(3000, "a", {"date": "d1234"}), lookup)
    assert [e.seq for e in result.firings[0].events] == [3000, 1234]
    assert lookup.queries == [("a", {"date": "d1234"}), ("b", {"status": "OK", "date": "d1234"})]


def test_waiting_names_the_dependency_a_three_way_join_lacks() -> None:
    config = deps(
        {"name": "a", "params": {"date": "~"}},
        {"name": "b", "params": {"date": "~", "host": "~"}},
        {"name": "c", "params": {"host": "~"}},
    )
    prior = [event(1, "b", {"date": "d", "host": "h1"}), event(2, "c", {"host": "h2"})]
    result = run(config, event(3, "a", {"date": "d"}), *prior)
    assert [(w.binding, w.missing) for w in result.waiting] == [({"date": "d"}, (2,))]


def test_mismatches_cover_only_dependencies_on_the_triggers_name() -> None:
    config = deps(
        {"name": "a", "params": {"k": "1"}},
        {"name": "b", "params": {"k": "1"}},
        {"name": "a", "params": {"k": {"in": ["2", "3"]}}},
    )
    result = run(config, event(1, "a", {"k": "4"}))
    assert [(m.dep_index, m.reason) for m in result.mismatches] == [
        (0, "differs"),
        (2, "not in list"),
    ]


def test_a_lookup_that_returns_the_trigger_too_changes_nothing() -> None:
    config = deps({"name": "a", "params": {"d": "~"}}, {"name": "a", "params": {"d": "~"}})
    trigger = event(2, "a", {"d": "1"})
    result = evaluate(config, trigger, ListLookup([event(1, "a", {"d": "1"}), trigger]))
    assert len(result.firings) == 1
    assert [e.seq for e in result.firings[0].events] == [2, 2]


def test_with_nothing_newer_the_triggers_own_slot_costs_no_lookup() -> None:
    one = deps({"name": "a", "params": {"d": "~", "k": "v"}})
    lookup = ListLookup([event(1, "a", {"d": "1", "k": "v"})])
    result = evaluate(one, event(2, "a", {"d": "1", "k": "v"}), lookup, nothing_newer=True)
    assert bindings(result) == [{"d": "1"}]
    assert [e.seq for e in result.firings[0].events] == [2]
    assert lookup.queries == []

    two = deps({"name": "a", "params": {"d": "~"}}, {"name": "b", "params": {"d": "~", "s": "OK"}})
    lookup = ListLookup([event(1, "b", {"d": "1", "s": "OK"})])
    result = evaluate(two, event(2, "a", {"d": "1"}), lookup, nothing_newer=True)
    assert [e.seq for e in result.firings[0].events] == [2, 1]
    assert lookup.queries == [("b", {"s": "OK", "d": "1"})]


def test_an_event_evaluated_after_a_newer_one_reports_the_newer_one_for_its_slot() -> None:
    # PostgreSQL commits can land out of seq order: event 2 is evaluated after event 3.
    config = deps({"name": "a", "params": {"d": "~"}}, {"name": "b", "params": {"d": "~"}})
    prior = [event(1, "b", {"d": "1"}), event(3, "a", {"d": "1"})]
    result = run(config, event(2, "a", {"d": "1"}), *prior)
    assert bindings(result) == [{"d": "1"}]
    assert [e.seq for e in result.firings[0].events] == [3, 1]


# --- operators -------------------------------------------------------------------------

OPERATOR_CASES = [
    ({"in": ["a", "b"]}, {"p": "b"}, None),
    ({"in": ["a", 1]}, {"p": "1"}, None),
    ({"in": ["a", "b"]}, {"p": "c"}, "not in list"),
    ({"in": ["a"]}, {}, "missing"),
    ({"prefix": "2016-"}, {"p": "2016-01-01"}, None),
    ({"prefix": "2016-"}, {"p": "2017-01-01"}, "wrong prefix"),
    ({"prefix": "2016-"}, {}, "missing"),
    ({"regex": "[0-9]{4}"}, {"p": "2016"}, None),
    ({"regex": "[0-9]{4}"}, {"p": "2016-01"}, "no regex match"),  # fullmatch, not search
    ({"regex": "1"}, {"p": 1}, None),
    ({"regex": ".*"}, {}, "missing"),
    ({"exists": True}, {"p": None}, None),
    ({"exists": True}, {}, "missing"),
    ({"exists": False}, {}, None),
    ({"exists": False}, {"p": "x"}, "present"),
    ({"not": "FAILURE"}, {"p": "SUCCESS"}, None),
    ({"not": "FAILURE"}, {}, None),
    ({"not": "FAILURE"}, {"p": "FAILURE"}, "equals the excluded value"),
    ({"not": 1}, {"p": "1"}, "equals the excluded value"),
]


@pytest.mark.parametrize(("operator", "params", "reason"), OPERATOR_CASES)
def test_operator_filters_by_param_text(
    operator: dict[str, object], params: Params, reason: str | None
) -> None:
    config = deps({"name": "e", "params": {"p": operator}})
    result = run(config, event(1, "e", params))
    if reason is None:
        assert result.outcome == "fired"
        assert bindings(result) == [{}]  # operators filter, they never bind
    else:
        assert result.outcome == "not_matched"
        assert [(m.key, m.expected, m.reason) for m in result.mismatches] == [
            ("p", operator, reason)
        ]


def test_operators_and_free_params_combine() -> None:
    config = deps({"name": "e", "params": {"status": {"in": ["OK", "WARN"]}, "date": "~"}})
    assert bindings(run(config, event(1, "e", {"status": "WARN", "date": "d"}))) == [{"date": "d"}]


# --- validation ------------------------------------------------------------------------

DATE = "event_deps[0].params.date"


def with_date(condition: object) -> list[object]:
    return [{"name": "e", "params": {"date": condition}}]


BAD_SPECS = [
    ("not a list", "event_deps"),
    ([], "event_deps"),
    (["e"], "event_deps[0]"),
    ([{"params": {}}], "event_deps[0].name"),
    ([{"name": "bad name!", "params": {}}], "event_deps[0].name"),
    ([{"name": "e", "params": []}], "event_deps[0].params"),
    ([{"name": "e", "parmas": {"a": "1"}}], "event_deps[0].parmas"),
    ([{"name": "e", "params": {"a": ["x"]}}], "event_deps[0].params.a"),
    (
        [{"name": "e"}, {"name": "e", "params": {"date": {"between": 1}}}],
        "event_deps[1].params.date",
    ),
    (with_date({"in": ["a"], "prefix": "b"}), DATE),
    (with_date({}), DATE),
    (with_date({"in": "a"}), DATE),
    (with_date({"in": []}), DATE),
    (with_date({"in": [["a"]]}), DATE),
    (with_date({"regex": "(unclosed"}), DATE),
    (with_date({"regex": 5}), DATE),
    (with_date({"prefix": None}), DATE),
    (with_date({"exists": "yes"}), DATE),
    (with_date({"not": {"a": 1}}), DATE),
]


@pytest.mark.parametrize(("spec", "path"), BAD_SPECS)
def test_invalid_spec_error_names_the_field_path(spec: object, path: str) -> None:
    with pytest.raises(DependencySpecError) as caught:
        parse_dependencies(spec)
    assert caught.value.field == path
    assert str(caught.value).startswith(f"{path}: ")


def test_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="exactly one key"):
        Dependency.from_json({"name": "e", "params": {"p": {}}}, path="deps[3]")


def test_dependency_round_trips_through_json() -> None:
    spec = {
        "name": "e",
        "params": {
            "fixed": "v",
            "number": 1,
            "free": "~",
            "null": None,
            "in": {"in": ["a", 2, None]},
            "prefix": {"prefix": "x"},
            "regex": {"regex": "a+"},
            "exists": {"exists": False},
            "not": {"not": "b"},
        },
    }
    dep = Dependency.from_json(spec)
    assert dep.to_json() == spec
    assert Dependency.from_json(dep.to_json()) == dep
    assert dep.fixed == {"fixed": "v", "number": "1"}
    assert dep.free == ("free", "null")


def test_missing_params_match_every_event_of_the_name() -> None:
    dep = Dependency.from_json({"name": "e"})
    assert dep.conditions == ()
    assert dep.bind({"a": "1"}) == {}


def test_bind_returns_none_when_the_event_does_not_satisfy_the_dependency() -> None:
    dep = Dependency.from_json({"name": "e", "params": {"a": "1", "b": "~"}})
    assert dep.bind({"a": "2", "b": "x"}) is None
    assert dep.bind({"a": "1", "b": "x"}) == {"b": "x"}


# --- window ----------------------------------------------------------------------------


def test_window_excludes_an_old_event_from_the_other_slots() -> None:
    config = deps({"name": "a", "params": {"d": "~"}}, {"name": "b", "params": {"d": "~"}})
    old = event(1, "b", {"d": "1"}, age_seconds=3600)
    trigger = event(2, "a", {"d": "1"})
    assert run(config, trigger, old, window=60).outcome == "waiting"
    assert run(config, trigger, old, window=7200).outcome == "fired"
    assert run(config, trigger, old).outcome == "fired"


def test_window_includes_an_event_exactly_at_its_edge() -> None:
    config = deps({"name": "a", "params": {}}, {"name": "b", "params": {}})
    edge = event(1, "b", {}, age_seconds=59)  # created exactly 60 seconds before the trigger
    assert run(config, event(2, "a", {}), edge, window=60).outcome == "fired"


def test_window_keeps_the_newest_event_inside_it() -> None:
    config = deps({"name": "a", "params": {}}, {"name": "b", "params": {}})
    inside = event(1, "b", {}, age_seconds=10)
    result = run(config, event(2, "a", {}), inside, event(0, "b", {}, age_seconds=999), window=60)
    assert [e.seq for e in result.firings[0].events] == [2, 1]


def test_firing_is_a_frozen_value() -> None:
    firing = Firing(binding={"a": 1}, events=())
    with pytest.raises(AttributeError):
        firing.binding = {}  # type: ignore[misc]
