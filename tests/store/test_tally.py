"""store/tally.py on every store: the counts of stored facts behind /metrics, kept up
incrementally, agree between servers (Tally instances) and across a restart, fold label
values past the cap into `other`, and count a PostgreSQL commit that lands below a key
already read."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fresh_database

from stepd.store import Store, dbapi, metrics, open_store, tally
from stepd.store import events as event_store
from stepd.timeutil import utcnow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store_events(store: Store, *source_types: str | None) -> None:
    with store.write() as conn:
        event_store.insert_events(conn, [_new(s) for s in source_types])


def _new(source_type: str | None) -> event_store.NewEvent:
    return event_store.NewEvent(
        name="soup", params={"date": "2019-01-01"}, created=utcnow(), source_type=source_type
    )


def _read(store: Store, t: tally.Tally) -> tally.Facts:
    with store.read() as conn:
        newest = metrics.read(conn).events_stored
        return t.read(dbapi.raw(conn), newest)


def test_counts_follow_new_events_and_a_second_tally_agrees(store: Store) -> None:
    clock = Clock()
    first = tally.Tally(store, clock=clock)
    assert _read(store, first).events == {}
    _store_events(store, "api", "api", None)
    assert _read(store, first).events == {"api": 2, "none": 1}
    _store_events(store, "task", "api")
    clock.now += 2 * tally.SETTLE_SECONDS  # (PostgreSQL) what was read settles
    assert _read(store, first).events == {"api": 3, "none": 1, "task": 1}
    _store_events(store, "clock")
    expected = {"api": 3, "none": 1, "task": 1, "clock": 1}
    assert _read(store, first).events == expected
    # Another server, or this one restarted: it counts the store, so it says the same.
    assert _read(store, tally.Tally(store, clock=clock)).events == expected
    assert _read(store, first).firings == {"task": 0, "error": 0}


def test_label_values_past_the_cap_count_as_other(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tally, "MAX_LABEL_VALUES", 2)
    _store_events(store, "a", "b", "c")
    t = tally.Tally(store)
    assert _read(store, t).events == {"a": 1, "b": 1, "other": 1}
    _store_events(store, "d", "a")
    assert _read(store, t).events == {"a": 2, "b": 1, "other": 2}


def test_a_commit_that_lands_below_a_key_already_read_is_counted(tmp_path: Path) -> None:
    # PostgreSQL only (SQLite's writers take turns: keys are committed in order), on a
    # store of its own rather than a skip of the SQLite case.
    with fresh_database("postgres", tmp_path) as url:
        store = open_store(url)
        try:
            assert not store.writers_take_turns
            _late_commit_is_counted(store)
        finally:
            store.close()


def _late_commit_is_counted(store: Store) -> None:
    clock = Clock()
    t = tally.Tally(store, clock=clock)
    _read(store, t)
    with store.write() as late:
        event_store.insert_events(late, [_new("late")])  # takes a seq, commits last
        _store_events(store, "early")
        assert _read(store, t).events == {"early": 1}
        clock.now += tally.SETTLE_SECONDS / 2
    assert _read(store, t).events == {"early": 1, "late": 1}
    clock.now += 2 * tally.SETTLE_SECONDS
    assert _read(store, t).events == {"early": 1, "late": 1}
    _store_events(store, "early")
    assert _read(store, t).events == {"early": 2, "late": 1}
