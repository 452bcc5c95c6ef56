"""ConfigIndex: which configs to evaluate for an event, without scanning them all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stepd.domain.config_index import ConfigIndex
from stepd.domain.events import Event, EventState
from stepd.domain.matching import MatchEvent, evaluate, parse_dependencies
from stepd.domain.params import Params, param_text

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class ListLookup:
    def __init__(self, events: Iterable[Event]) -> None:
        self.events = list(events)

    def find(self, name: str, equal: Mapping[str, str]) -> Iterable[MatchEvent]:
        return [
            e
            for e in self.events
            if e.name == name
            and all(k in e.params and param_text(e.params[k]) == v for k, v in equal.items())
        ]


def index_of(configs: dict[str, list[Any]]) -> ConfigIndex[str]:
    index: ConfigIndex[str] = ConfigIndex()
    for key, specs in configs.items():
        index.add(key, key, parse_dependencies(specs))
    return index


def event(seq: int, name: str, params: Params) -> Event:
    created = T0 + timedelta(seconds=seq)
    return Event(seq=seq, name=name, params=params, state=EventState.PROCESSED, created=created)


def test_candidates_are_the_configs_whose_dependency_the_event_satisfies() -> None:
    index = index_of(
        {
            "ok": [{"name": "e", "params": {"status": "SUCCESS", "date": "~"}}],
            "failed": [{"name": "e", "params": {"status": "FAILURE"}}],
            "any": [{"name": "e", "params": {}}],
            "other": [{"name": "f", "params": {"status": "SUCCESS"}}],
            "join": [
                {"name": "f", "params": {}},
                {"name": "e", "params": {"status": {"in": ["SUCCESS"]}}},
            ],
        }
    )
    assert index.candidates("e", {"status": "SUCCESS", "date": "d"}) == ["ok", "any", "join"]
    assert index.candidates("e", {"status": "FAILURE"}) == ["failed", "any"]
    assert index.candidates("e", {"date": "d"}) == ["any"]
    assert index.candidates("g", {"status": "SUCCESS"}) == []


def test_by_name_lists_every_config_on_the_name_matching_or_not() -> None:
    index = index_of(
        {
            "a": [{"name": "e", "params": {"status": "SUCCESS"}}],
            "b": [{"name": "f", "params": {}}],
            "c": [{"name": "f", "params": {}}, {"name": "e", "params": {"x": "~"}}],
        }
    )
    assert index.by_name("e") == ["a", "c"]
    assert index.by_name("f") == ["b", "c"]
    assert index.by_name("g") == []


def test_numbers_and_their_text_land_in_the_same_bucket() -> None:
    index = index_of({"n": [{"name": "e", "params": {"n": 1}}]})
    assert index.candidates("e", {"n": "1"}) == ["n"]
    assert index.candidates("e", {"n": 1.5}) == []


def test_remove_forgets_the_config_everywhere() -> None:
    index = index_of({"a": [{"name": "e", "params": {"k": "v"}}, {"name": "f", "params": {}}]})
    index.remove("a")
    index.remove("never added")
    assert "a" not in index
    assert len(index) == 0
    assert index.candidates("e", {"k": "v"}) == []
    assert index.by_name("f") == []


def test_adding_a_key_again_replaces_the_config_and_moves_it_last() -> None:
    index = index_of({"a": [{"name": "e", "params": {}}], "b": [{"name": "e", "params": {}}]})
    index.add("a", "a2", parse_dependencies([{"name": "e", "params": {"k": "v"}}]))
    assert index.candidates("e", {"k": "v"}) == ["b", "a2"]
    assert index.candidates("e", {}) == ["b"]
    assert len(index) == 2


def test_a_config_with_two_deps_on_the_same_name_is_returned_once() -> None:
    index = index_of(
        {"a": [{"name": "e", "params": {"k": "1"}}, {"name": "e", "params": {"j": "2"}}]}
    )
    assert index.candidates("e", {"k": "1", "j": "2"}) == ["a"]
    assert index.by_name("e") == ["a"]


def test_buckets_spread_over_the_most_discriminating_fixed_param() -> None:
    index: ConfigIndex[int] = ConfigIndex()
    for day in range(100):
        deps = parse_dependencies([{"name": "e", "params": {"status": "OK", "day": str(day)}}])
        index.add(day, day, deps)
    # every config shares status=OK, so all but the first are filed under their day
    assert max(len(bucket) for bucket in index._buckets.values()) == 1
    assert index.candidates("e", {"status": "OK", "day": "42"}) == [42]


# --- properties ------------------------------------------------------------------------

NAMES = ["a", "b", "c"]
KEYS = ["k1", "k2"]
VALUES = ["x", "y", 1, "1", None]
conditions = st.one_of(
    st.sampled_from(["x", "y", 1, "~"]),
    st.builds(lambda vs: {"in": vs}, st.lists(st.sampled_from(VALUES), min_size=1, max_size=2)),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda v: {"not": v}, st.sampled_from(VALUES)),
)
dep_specs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(NAMES),
        "params": st.dictionaries(st.sampled_from(KEYS), conditions, max_size=2),
    }
)
configs = st.dictionaries(
    st.integers(0, 30), st.lists(dep_specs, min_size=1, max_size=3), max_size=8
)
event_params = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@settings(max_examples=300, deadline=None)
@given(
    configs,
    st.lists(st.tuples(st.sampled_from(NAMES), event_params), max_size=4),
    st.sampled_from(NAMES),
    event_params,
    st.lists(st.integers(0, 30), max_size=3),
)
def test_candidates_never_miss_a_config_that_evaluate_would_fire_or_keep_waiting(
    specs_by_key: dict[int, list[Any]],
    prior_specs: list[tuple[str, Params]],
    name: str,
    params: Params,
    removed: list[int],
) -> None:
    index: ConfigIndex[int] = ConfigIndex()
    for key, specs in specs_by_key.items():
        index.add(key, key, parse_dependencies(specs))
    for key in removed:
        index.remove(key)
    live = {k: parse_dependencies(s) for k, s in specs_by_key.items() if k not in removed}
    prior = [event(seq, n, p) for seq, (n, p) in enumerate(prior_specs, start=1)]
    trigger = event(len(prior) + 1, name, params)

    found = index.candidates(name, params)
    assert len(found) == len(set(found))
    assert found == [k for k in live if k in found]  # insertion order
    assert index.by_name(name) == [
        k for k, deps in live.items() if any(d.name == name for d in deps)
    ]
    for key, deps in live.items():
        outcome = evaluate(deps, trigger, ListLookup(prior)).outcome
        assert (key in found) == (outcome != "not_matched")
        if key in found:
            assert any(d.name == name for d in deps)
