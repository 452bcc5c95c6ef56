"""The schedules' rounds against a real store (both backends), with a fake now: each tick
once across restarts and racing servers, catch-up after downtime, pause, delete."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from stepd.scheduler import Scheduler
from stepd.services.event_descs import EventDescService
from stepd.services.events import EventService
from stepd.services.schedules import ScheduleService
from stepd.store import Store, open_store
from stepd.store import events as event_store
from stepd.store.tokens import Principal
from stepd.timeutil import iso

ALICE = Principal(user="alice", is_admin=False)
MINUTE = timedelta(minutes=1)


def scheduler(store: Store) -> Scheduler:
    return Scheduler(store, EventService(store))


def ticks(store: Store, name: str | None = None) -> list[tuple[str, str]]:
    """(schedule, timestamp) of every `schedule` event stored, oldest first."""
    with store.read() as conn:
        found = event_store.query_events(
            conn, event_store.EventQuery(name="schedule", limit=10_000)
        )
    pairs = [(str(e.params["schedule"]), str(e.params["timestamp"])) for e in found]
    return [p for p in pairs if name is None or p[0] == name]


def make(store: Store, name: str = "every-minute", **body: Any) -> datetime:
    """A schedule (every minute by default); its first tick."""
    schedule = ScheduleService(store).create({"name": name, "cron": "* * * * *", **body}, ALICE)
    return schedule.next_tick


def test_each_tick_is_emitted_once_across_a_restart(store: Store) -> None:
    first = make(store)
    before = scheduler(store)
    assert before.round(first - timedelta(seconds=1)) == 0  # not due yet
    assert before.round(first) == 1
    assert before.round(first + timedelta(seconds=30)) == 0  # the same minute: nothing
    # A restart: another process, another store object, nothing kept in memory.
    again = open_store(store.url)
    try:
        after = scheduler(again)
        assert after.round(first + timedelta(seconds=59)) == 0
        assert after.round(first + MINUTE) == 1
        assert after.round(first + MINUTE) == 0
    finally:
        again.close()
    assert ticks(store) == [("every-minute", iso(first)), ("every-minute", iso(first + MINUTE))]
    [schedule] = ScheduleService(store).list()
    assert schedule.last_tick == first + MINUTE and schedule.next_tick == first + 2 * MINUTE


def test_missed_ticks_are_caught_up_to_the_limit_and_the_older_skipped_with_a_log_line(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    default = make(store, "default")  # catch_up 1
    three = make(store, "three", catch_up=3)
    assert default == three
    caplog.set_level(logging.WARNING, logger="stepd.scheduler")
    # Every server was down for ten minutes after the first tick was due.
    now = default + 10 * MINUTE + timedelta(seconds=5)
    assert scheduler(store).round(now) == 4
    assert ticks(store, "default") == [("default", iso(default + 10 * MINUTE))]
    assert ticks(store, "three") == [
        ("three", iso(default + m * MINUTE)) for m in (8, 9, 10)
    ]  # the latest three, oldest first
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert any(
        f"schedule three: skipped its ticks from {iso(default)} to {iso(default + 7 * MINUTE)}" in m
        for m in skipped
    ), skipped
    # Caught up: the next minute is on time again, one tick each.
    assert scheduler(store).round(now + MINUTE) == 2


def test_a_paused_schedule_does_not_tick_and_owes_nothing_when_enabled_again(
    store: Store,
) -> None:
    first = make(store, catch_up=100)
    service = ScheduleService(store)
    service.update("every-minute", {"enabled": False}, ALICE)
    assert scheduler(store).round(first + 60 * MINUTE) == 0
    resumed = service.update("every-minute", {"enabled": True}, ALICE)
    assert resumed.next_tick <= first + MINUTE  # from now (the real one), not from the pause
    # An hour of fake time later, catch_up (100) bounds what is emitted: never the pause's.
    assert scheduler(store).round(resumed.next_tick + 60 * MINUTE) == 61
    emitted = ticks(store)
    assert emitted[0] == ("every-minute", iso(resumed.next_tick))
    assert len(set(emitted)) == len(emitted) == 61


def test_a_deleted_schedule_ticks_no_more_and_one_made_again_starts_afresh(store: Store) -> None:
    first = make(store)
    service = ScheduleService(store)
    assert scheduler(store).round(first) == 1
    service.delete("every-minute", ALICE)
    assert scheduler(store).round(first + 5 * MINUTE) == 0
    again = make(store, params={"round": "two"})
    # The same name and tick is another schedule's event (its own request_id): stored.
    assert scheduler(store).round(again) == 1
    assert ticks(store) == [("every-minute", iso(first)), ("every-minute", iso(again))]


def test_a_tick_whose_event_is_refused_is_skipped_not_retried_forever(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first = make(store)
    EventDescService(store).create({"name": "schedule", "required_fields": ["team"]}, ALICE)
    caplog.set_level(logging.ERROR, logger="stepd.scheduler")
    assert scheduler(store).round(first) == 0
    assert any("refused and skipped" in r.getMessage() for r in caplog.records)
    skipped = ScheduleService(store).get("every-minute")
    assert skipped.next_tick == first + MINUTE and skipped.last_tick is None
    assert ticks(store) == []


def test_two_servers_racing_emit_each_tick_once(store: Store) -> None:
    """Two rounds on two store objects (two servers' pools) at the same fake moments."""
    names = [f"s{i}" for i in range(10)]
    first = min(make(store, name, catch_up=5) for name in names)
    servers = [open_store(store.url), open_store(store.url)]
    moments = [first + timedelta(seconds=20 * i) for i in range(12)]  # four minutes
    barrier = threading.Barrier(2)
    emitted: list[int] = []
    failures: list[BaseException] = []

    def serve(server: Store) -> None:
        rounds = scheduler(server)
        try:
            for now in moments:
                barrier.wait(10)
                emitted.append(rounds.round(now))
        except BaseException as exc:  # reported below, with the rest
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=serve, args=(s,)) for s in servers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in servers:
            s.close()
    assert not failures, failures
    found = ticks(store)
    assert len(found) == len(set(found)), "a tick was emitted twice"
    expected = {(n, iso(first + m * MINUTE)) for n in names for m in range(4)}
    assert set(found) == expected
    assert sum(emitted) == len(expected)


def test_racing_creates_cannot_pass_the_bound_on_schedules(store: Store) -> None:
    service = ScheduleService(store, max_schedules=5)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def create(i: int) -> None:
        barrier.wait(10)
        try:
            ScheduleService(store, max_schedules=5).create(
                {"name": f"s{i}", "cron": "@daily"}, ALICE
            )
            outcomes.append("made")
        except Exception as exc:  # the refusal, or anything else: both counted below
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["Conflict"] * 3 + ["made"] * 5
    assert len(service.list()) == 5
