"""The schedule rules (pure): ticks in the schedule's zone, kept in UTC, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stepd.domain.schedules import ScheduleSpec, due, first_after, spec_from, tick_params
from stepd.errors import InvalidInput


def spec(cron: str, timezone: str = "UTC", catch_up: int = 1) -> ScheduleSpec:
    return ScheduleSpec(
        name="s", cron=cron, timezone=timezone, params={}, enabled=True, catch_up=catch_up
    )


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


def test_a_daily_tick_stays_at_local_time_across_a_dst_change() -> None:
    berlin = spec("0 6 * * *", "Europe/Berlin")
    # Berlin moves from UTC+1 to UTC+2 on 2026-03-29 at 02:00.
    assert first_after(berlin, at(2026, 3, 28, 0, 0)) == at(2026, 3, 28, 5, 0)
    assert first_after(berlin, at(2026, 3, 28, 6, 0)) == at(2026, 3, 29, 4, 0)
    # And back to UTC+1 on 2026-10-25.
    assert first_after(berlin, at(2026, 10, 25, 0, 0)) == at(2026, 10, 25, 5, 0)


def test_a_tick_in_the_skipped_hour_of_spring_comes_at_the_first_moment_after_it() -> None:
    new_york = spec("30 2 * * *", "America/New_York")
    # 2026-03-08 02:00 EST becomes 03:00 EDT: 02:30 does not exist that day.
    assert first_after(new_york, at(2026, 3, 8, 5, 0)) == at(2026, 3, 8, 7, 0)  # 03:00 EDT


def test_weekdays_are_read_in_the_schedules_zone() -> None:
    moscow = spec("0 6 * * 1-5", "Europe/Moscow")
    # Friday 2026-12-04 after 06:00 Moscow: the next is Monday 06:00 MSK = 03:00 UTC.
    assert first_after(moscow, at(2026, 12, 4, 10, 0)) == at(2026, 12, 7, 3, 0)


def test_due_gives_the_latest_catch_up_ticks_and_the_range_it_skipped() -> None:
    every = spec("*/15 * * * *", catch_up=2)
    found = due(every, at(2026, 1, 1, 0, 0), at(2026, 1, 1, 1, 20))
    assert found.ticks == [at(2026, 1, 1, 1, 0), at(2026, 1, 1, 1, 15)]
    assert found.skipped == (at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 45))
    assert found.next_tick == at(2026, 1, 1, 1, 15) + timedelta(minutes=15)


def test_due_at_the_tick_itself_emits_it_and_a_year_of_downtime_costs_few_steps() -> None:
    minute = spec("* * * * *")
    on_time = due(minute, at(2026, 1, 1, 6, 0), at(2026, 1, 1, 6, 0))
    assert on_time.ticks == [at(2026, 1, 1, 6, 0)] and on_time.skipped is None
    late = due(minute, at(2025, 1, 1, 0, 0), at(2026, 1, 1, 0, 0, 30))
    assert late.ticks == [at(2026, 1, 1, 0, 0)]
    assert late.skipped == (at(2025, 1, 1, 0, 0), at(2025, 12, 31, 23, 59))


def test_a_ticks_params_name_the_schedule_and_the_tick_in_utc() -> None:
    s = ScheduleSpec(
        name="n", cron="@daily", timezone="Asia/Tokyo", params={"a": "b"}, enabled=True, catch_up=1
    )
    assert tick_params(s, at(2026, 1, 1, 15, 0)) == {
        "schedule": "n",
        "timestamp": "2026-01-01T15:00:00Z",
        "a": "b",
    }


def test_a_change_keeps_what_it_does_not_carry() -> None:
    base = spec("0 6 * * *", "Europe/Moscow", catch_up=4)
    changed = spec_from({"cron": "0 7 * * *"}, base, at(2026, 1, 1, 0, 0))
    assert (changed.cron, changed.timezone, changed.catch_up) == ("0 7 * * *", "Europe/Moscow", 4)
    with pytest.raises(InvalidInput) as refused:
        spec_from({"name": "n"}, None, at(2026, 1, 1, 0, 0))
    assert refused.value.field == "cron"


def test_a_fixed_time_in_the_hour_repeated_in_autumn_ticks_once_but_every_15_minutes_twice() -> (
    None
):
    # 2026-11-01 02:00 EDT becomes 01:00 EST: 01:00-01:59 happens twice in New York.
    daily = spec("30 1 * * *", "America/New_York", catch_up=10)
    assert first_after(daily, at(2026, 11, 1, 5, 0)) == at(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert first_after(daily, at(2026, 11, 1, 5, 30)) == at(2026, 11, 2, 6, 30)  # next day
    late = due(daily, at(2026, 10, 31, 5, 30), at(2026, 11, 2, 7, 0))
    assert late.ticks == [at(2026, 10, 31, 5, 30), at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)]
    quarter = spec("*/15 * * * *", "America/New_York", catch_up=100)
    both = due(quarter, at(2026, 11, 1, 5, 0), at(2026, 11, 1, 6, 59))
    assert len(both.ticks) == 8  # 01:00-01:45 EDT and again EST: two real hours
