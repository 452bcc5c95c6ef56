"""Events: insert, lookup, query, reject, the param index, request ids, the reactor's view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stepd.domain.events import EventState

from .contract import T0, Contract, Duplicate


def test_inserted_events_get_increasing_seqs_in_batch_order(c: Contract) -> None:
    first = c.add_events([("a", {}), ("b", {}), ("c", {})])
    second = c.add_events([("d", {})])
    assert first == sorted(first) and len(set(first)) == 3
    assert second[0] > first[-1]


def test_an_event_reads_back_with_every_field(c: Contract) -> None:
    (seq,) = c.add_events(
        [("done", {"date": "2026-12-01", "n": 3, "ok": True, "x": 1.5, "none": None})],
        author="alice",
        request_id="r1",
        source_type="task",
        source="42",
    )
    e = c.event(seq)
    assert e is not None
    assert (e.seq, e.name, e.state) == (seq, "done", EventState.NEW)
    assert e.params == {"date": "2026-12-01", "n": 3, "ok": True, "x": 1.5, "none": None}
    assert (e.author, e.request_id, e.source_type, e.source) == ("alice", "r1", "task", "42")
    assert e.created == T0 and e.created.tzinfo is not None


def test_non_ascii_params_keep_their_text(c: Contract) -> None:
    (seq,) = c.add_events([("ev", {"city": "Zürich", "emoji": "☃"})])
    e = c.event(seq)
    assert e is not None and e.params == {"city": "Zürich", "emoji": "☃"}
    assert c.query(name="ev", params={"city": "Zürich"}) == [seq]


def test_a_missing_event_is_none_and_get_events_skips_it(c: Contract) -> None:
    seqs = c.add_events([("a", {}), ("b", {})])
    assert c.event(seqs[-1] + 100) is None
    found = c.events([*seqs, seqs[-1] + 100])
    assert sorted(found) == seqs
    assert {e.name for e in found.values()} == {"a", "b"}


def test_a_query_by_name_lists_oldest_first_or_newest_first(c: Contract) -> None:
    seqs = c.add_events([("a", {}), ("b", {}), ("a", {}), ("a", {})])
    mine = [seqs[0], seqs[2], seqs[3]]
    assert c.query(name="a") == mine
    assert c.query(name="a", newest_first=True) == mine[::-1]
    assert c.query() == seqs


def test_a_query_pages_with_skip_and_limit(c: Contract) -> None:
    seqs = c.add_events([("a", {"k": "v"}) for _ in range(7)])
    assert c.query(name="a", skip=2, limit=3) == seqs[2:5]
    assert c.query(name="a", params={"k": "v"}, skip=2, limit=3) == seqs[2:5]
    assert c.query(name="a", params={"k": "v"}, newest_first=True, limit=2) == seqs[:-3:-1]


def test_a_query_by_params_needs_every_param_to_match(c: Contract) -> None:
    seqs = c.add_events(
        [
            ("a", {"date": "d1", "kind": "x"}),
            ("a", {"date": "d1", "kind": "y"}),
            ("a", {"date": "d2", "kind": "x"}),
            ("b", {"date": "d1", "kind": "x"}),
        ]
    )
    assert c.query(name="a", params={"date": "d1"}) == seqs[:2]
    assert c.query(name="a", params={"date": "d1", "kind": "x"}) == [seqs[0]]
    assert c.query(params={"date": "d1", "kind": "x"}) == [seqs[0], seqs[3]]
    assert c.query(name="a", params={"date": "d3"}) == []


def test_params_are_indexed_by_their_canonical_text(c: Contract) -> None:
    seqs = c.add_events([("a", {"n": 1}), ("a", {"n": "1"}), ("a", {"b": True}), ("a", {"f": 2.5})])
    assert c.query(name="a", params={"n": "1"}) == seqs[:2]  # "1" equals 1
    assert c.query(name="a", params={"b": "true"}) == [seqs[2]]
    assert c.query(name="a", params={"f": "2.5"}) == [seqs[3]]
    assert c.query(name="a", params={"n": "01"}) == []


def test_a_null_param_is_not_indexed(c: Contract) -> None:
    (seq,) = c.add_events([("a", {"gone": None, "k": "v"})])
    assert c.query(name="a", params={"gone": "null"}) == []
    assert c.query(name="a", params={"gone": "None"}) == []
    assert c.query(name="a", params={"k": "v"}) == [seq]


def test_a_long_param_value_is_found_by_its_exact_text(c: Contract) -> None:
    long = "x" * 5000
    seqs = c.add_events([("a", {"blob": long}), ("a", {"blob": long[:-1] + "y"})])
    assert c.query(name="a", params={"blob": long}) == [seqs[0]]
    assert c.query(params={"blob": long}) == [seqs[0]]
    e = c.event(seqs[0])
    assert e is not None and e.params["blob"] == long


def test_a_query_by_state_sees_new_processed_and_rejected(c: Contract) -> None:
    seqs = c.add_events([("a", {"k": "v"}) for _ in range(3)])
    c.mark_processed([seqs[0]])
    assert c.reject(seqs[1])
    assert c.query(name="a", state=EventState.NEW) == [seqs[2]]
    assert c.query(name="a", state=EventState.PROCESSED) == [seqs[0]]
    assert c.query(state=EventState.REJECTED) == [seqs[1]]
    assert c.query(name="a", params={"k": "v"}, state=EventState.REJECTED) == [seqs[1]]


def test_set_state_with_only_from_moves_only_an_event_in_that_state(c: Contract) -> None:
    (seq,) = c.add_events([("a", {})])
    assert not c.set_state(seq, EventState.PROCESSED, only_from=EventState.REJECTED)
    assert c.set_state(seq, EventState.PROCESSED, only_from=EventState.NEW)
    e = c.event(seq)
    assert e is not None and e.state is EventState.PROCESSED
    assert not c.set_state(seq + 100, EventState.REJECTED)


def test_events_may_be_stored_already_rejected(c: Contract) -> None:
    (seq,) = c.add_events([("a", {})], state=EventState.REJECTED)
    assert c.new_events() == []
    assert c.query(state=EventState.REJECTED) == [seq]


def test_a_request_id_is_remembered_with_its_ids_and_digest(c: Contract) -> None:
    assert c.find_request("r1") is None
    c.record_request("r1", ["10", "11"], "d" * 64)
    assert c.find_request("r1") == (["10", "11"], "d" * 64)


def test_a_request_id_is_recorded_once(c: Contract) -> None:
    c.record_request("r1", ["1"], "digest")
    with pytest.raises(Duplicate):
        c.record_request("r1", ["2"], "other")
    assert c.find_request("r1") == (["1"], "digest")


def test_a_repeated_request_stores_nothing_and_returns_the_first_ids(c: Contract) -> None:
    first = c.submit_once("req", [("a", {"n": 1}), ("b", {})], "dg")
    again = c.submit_once("req", [("a", {"n": 1}), ("b", {})], "dg")
    assert again == first
    assert len(c.query()) == 2


def test_a_batch_whose_request_id_was_taken_meanwhile_leaves_nothing_behind(
    c: Contract,
) -> None:
    c.submit_once("taken", [("first", {})], "dg")
    with pytest.raises(Duplicate):
        c.submit_once("taken", [("a", {"k": "v"})], "dg", look_first=False)
    assert c.query(name="a") == []
    assert c.query(name="a", params={"k": "v"}) == []
    assert len(c.query()) == 1


# ------------------------------------------------------------------ the reactor's view


def test_new_events_are_handed_out_oldest_first_up_to_the_limit(c: Contract) -> None:
    seqs = c.add_events([("a", {"i": i}) for i in range(5)])
    batch = c.new_events(limit=3)
    assert [(s, n, p) for s, n, p in batch] == [(seqs[i], "a", {"i": i}) for i in range(3)]


def test_marking_processed_removes_events_from_the_new_ones(c: Contract) -> None:
    seqs = c.add_events([("a", {}) for _ in range(4)])
    assert c.newest_processed() == 0
    c.mark_processed(seqs[:2])
    assert [s for s, _n, _p in c.new_events()] == seqs[2:]
    assert c.newest_processed() == seqs[1]
    assert c.count_new(seqs[0], seqs[-1]) == 2


def test_marking_a_whole_range_processed_leaves_rejected_events_rejected(c: Contract) -> None:
    seqs = c.add_events([("a", {}) for _ in range(4)])
    assert c.reject(seqs[1])
    c.mark_processed(seqs, whole_range=True)
    states = {s: e.state for s, e in c.events(seqs).items()}
    assert states[seqs[1]] is EventState.REJECTED
    assert [states[s] for s in (seqs[0], seqs[2], seqs[3])] == [EventState.PROCESSED] * 3
    assert c.any_rejected(seqs) and not c.any_rejected([seqs[0], seqs[2]])
    assert c.newest_processed() == seqs[3]


def test_the_reactor_sees_only_processed_events_as_prior(c: Contract) -> None:
    seqs = c.add_events([("dep", {"date": "d1", "x": i}) for i in range(3)])
    c.mark_processed([seqs[0], seqs[1]])
    assert c.reject(seqs[1])
    found = c.prior("dep", {"date": "d1"})
    assert [(f.seq, f.params) for f in found] == [(seqs[0], {"date": "d1", "x": 0})]
    assert found[0].created == T0


def test_a_story_sees_every_earlier_unrejected_event_as_prior(c: Contract) -> None:
    seqs = c.add_events([("dep", {"date": "d1"}) for _ in range(4)])
    assert c.reject(seqs[1])
    found = c.prior("dep", {"date": "d1"}, before_seq=seqs[3])
    assert [f.seq for f in found] == [seqs[0], seqs[2]]
    assert c.newest_prior("dep", {"date": "d1"}, before_seq=seqs[3]) == seqs[2]


def test_the_newest_prior_event_is_found_past_many_older_ones(c: Contract) -> None:
    seqs = c.add_events([("dep", {"date": "d1", "i": i}) for i in range(40)])
    other = c.add_events([("dep", {"date": "d2"})])
    c.mark_processed([*seqs, *other])
    assert c.newest_prior("dep", {"date": "d1"}) == seqs[-1]
    assert c.newest_prior("dep", {"date": "d1", "i": "3"}) == seqs[3]
    assert c.newest_prior("dep", {}) == other[0]
    assert c.newest_prior("dep", {"date": "d9"}) is None


def test_prior_events_match_params_by_canonical_text(c: Contract) -> None:
    seqs = c.add_events([("dep", {"n": 7, "k": "a"}), ("dep", {"n": "7", "k": "b"})])
    c.mark_processed(seqs)
    assert [f.seq for f in c.prior("dep", {"n": "7"})] == seqs
    assert [f.seq for f in c.prior("dep", {"n": "7", "k": "b"})] == [seqs[1]]


def test_an_events_created_time_keeps_its_microseconds(c: Contract) -> None:
    when = T0 + timedelta(microseconds=1)
    (seq,) = c.add_events([("a", {})], created=when)
    e = c.event(seq)
    assert e is not None and e.created == when
    c.mark_processed([seq])
    (found,) = c.prior("a", {})
    assert found.created == when
