"""The clock: aligned slots per scale, one event per (scale, slot) however many clocks run
and however often they restart, and after downtime the latest slot of each scale sent once.

Time is the clock's injected `now`; the events go through the real EventService into the
real store (SQLite and PostgreSQL), where the request_id makes a repeat a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stepd.clock import EVENT_NAME, SCALES, Clock, aligned, due
from stepd.domain.events import Event
from stepd.services.events import EventService
from stepd.store import Store
from stepd.store import events as event_store

NOW = datetime(2026, 12, 1, 8, 7, 42, 123456, tzinfo=UTC)


def at(when: datetime) -> Callable[[], datetime]:
    return lambda: when


def clock_events(store: Store) -> list[Event]:
    with store.read() as conn:
        return event_store.query_events(conn, event_store.EventQuery(name=EVENT_NAME, limit=1000))


def slots(store: Store) -> list[tuple[str, str]]:
    """(scale, timestamp) of every stored clock event, in the order stored."""
    return [(str(e.params["scale"]), str(e.params["timestamp"])) for e in clock_events(store)]


@pytest.mark.parametrize(
    ("scale", "start"),
    [
        ("1m", datetime(2026, 12, 1, 8, 7, tzinfo=UTC)),
        ("5m", datetime(2026, 12, 1, 8, 5, tzinfo=UTC)),
        ("15m", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("1h", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("1d", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_a_slot_starts_at_a_multiple_of_its_scale(scale: str, start: datetime) -> None:
    assert aligned(NOW, SCALES[scale]) == start
    assert aligned(start, SCALES[scale]) == start  # a slot's start is in that slot
    just_before = start - timedelta(microseconds=1)
    assert aligned(just_before, SCALES[scale]) == start - SCALES[scale]


def test_slots_are_aligned_in_utc_whatever_the_zone_of_now() -> None:
    moscow = NOW.astimezone(timezone(timedelta(hours=3)))  # 11:07:42+03:00
    assert aligned(moscow, SCALES["1d"]) == datetime(2026, 12, 1, tzinfo=UTC)
    assert aligned(moscow, SCALES["1h"]) == datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_due_lists_every_scale_whose_slot_was_not_sent() -> None:
    assert [s for s, _slot in due(NOW, {})] == list(SCALES)
    sent = {name: aligned(NOW, length) for name, length in SCALES.items()}
    assert due(NOW, sent) == []
    assert due(NOW + timedelta(minutes=1), sent) == [
        ("1m", datetime(2026, 12, 1, 8, 8, tzinfo=UTC))
    ]


def test_a_tick_sends_one_event_per_scale_with_its_slot(store: Store) -> None:
    clock = Clock(EventService(store=store), now=at(NOW))
    assert clock.tick() == 5
    assert slots(store) == [
        ("1m", "2026-12-01T08:07:00Z"),
        ("5m", "2026-12-01T08:05:00Z"),
        ("15m", "2026-12-01T08:00:00Z"),
        ("1h", "2026-12-01T08:00:00Z"),
        ("1d", "2026-12-01T00:00:00Z"),
    ]
    e = clock_events(store)[0]
    assert (e.request_id, e.author, e.source_type, e.source) == (
        "clock:1m:2026-12-01T08:07:00Z",
        "stepd",
        "clock",
        "stepd",
    )
    assert e.params == {"scale": "1m", "timestamp": "2026-12-01T08:07:00Z"}


def test_ticks_within_a_slot_send_nothing_more(store: Store) -> None:
    now = NOW
    clock = Clock(EventService(store=store), now=lambda: now)
    clock.tick()
    now = NOW + timedelta(seconds=10)
    assert clock.tick() == 0
    assert len(slots(store)) == 5


def test_the_next_minute_sends_only_the_scales_whose_slot_changed(store: Store) -> None:
    now = datetime(2026, 12, 1, 8, 14, 59, tzinfo=UTC)
    clock = Clock(EventService(store=store), now=lambda: now)
    clock.tick()
    now = datetime(2026, 12, 1, 8, 15, 0, tzinfo=UTC)
    assert clock.tick() == 3
    assert slots(store)[5:] == [
        ("1m", "2026-12-01T08:15:00Z"),
        ("5m", "2026-12-01T08:15:00Z"),
        ("15m", "2026-12-01T08:15:00Z"),
    ]


def test_two_clocks_on_one_store_store_each_slot_once(store: Store) -> None:
    first = Clock(EventService(store=store), now=at(NOW))
    second = Clock(EventService(store=store), now=at(NOW + timedelta(seconds=3)))
    first.tick()
    assert second.tick() == 5  # it asks, and the request_id makes it a no-op
    assert len(slots(store)) == 5
    assert len(set(slots(store))) == 5


def test_a_restarted_clock_does_not_send_its_slots_again(store: Store) -> None:
    Clock(EventService(store=store), now=at(NOW)).tick()
    Clock(EventService(store=store), now=at(NOW + timedelta(seconds=10))).tick()  # a restart
    assert len(slots(store)) == 5


def test_after_downtime_the_latest_slot_of_each_scale_is_sent_late_once(store: Store) -> None:
    Clock(EventService(store=store), now=at(NOW)).tick()  # 08:07:42
    back = datetime(2026, 12, 1, 10, 32, 5, tzinfo=UTC)  # down for 2 h 24 min
    late = Clock(EventService(store=store), now=at(back))
    assert late.tick() == 5
    # Only the current slot of each scale, not every one missed; the day was sent already.
    assert slots(store)[5:] == [
        ("1m", "2026-12-01T10:32:00Z"),
        ("5m", "2026-12-01T10:30:00Z"),
        ("15m", "2026-12-01T10:30:00Z"),
        ("1h", "2026-12-01T10:00:00Z"),
    ]
    assert late.tick() == 0
    Clock(EventService(store=store), now=at(back + timedelta(seconds=30))).tick()
    assert len(slots(store)) == 9


def test_a_running_clock_sends_its_events_and_stops(store: Store) -> None:
    clock = Clock(EventService(store=store), interval_seconds=0.01, now=at(NOW))
    clock.start()
    try:
        deadline = time.monotonic() + 10
        while len(slots(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        clock.stop()
    assert clock._loop is not None and not clock._loop.alive
    assert len(slots(store)) == 5


def test_a_failing_tick_is_tried_again(store: Store) -> None:
    service = EventService(store=store)
    real_submit = service.submit
    calls = {"n": 0}

    def flaky(batch: object, *, author: str | None) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the database went away for a moment")
        return real_submit(batch, author=author)  # type: ignore[arg-type]

    service.submit = flaky  # type: ignore[method-assign]
    clock = Clock(service, interval_seconds=0.01, now=at(NOW))
    clock.start()
    try:
        deadline = time.monotonic() + 10
        while len(slots(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        clock.stop()
    assert len(slots(store)) == 5
