"""Schedules on real servers (`stepd serve` in subprocesses): each tick exactly once across
a killed server's restart, and with two servers on one PostgreSQL database.

The servers' schedule clock runs 30 times faster than the wall clock
(STEPD_SCHEDULE_CLOCK_SPEED, a testing-only setting, from one STEPD_SCHEDULE_CLOCK_EPOCH so
that every server agrees on the time): an every-minute schedule ticks every two seconds.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer, fresh_database, server_token, start_server

SPEED = 30
SERVE = ("--no-clock", "--executor", "none")


@pytest.fixture
def fast_schedules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers started from now on (they inherit the environment) share a fast clock."""
    monkeypatch.setenv("STEPD_SCHEDULE_CLOCK_SPEED", str(SPEED))
    monkeypatch.setenv("STEPD_SCHEDULE_CLOCK_EPOCH", str(time.time()))


def ticks(server: LiveServer, name: str) -> list[str]:
    """The timestamps of schedule `name`'s events, in the order they were stored."""
    answer = httpx.get(
        f"{server.url}/api/v1/events",
        params={"name": "schedule", "params__schedule": name, "limit": 1000},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return [e["params"]["timestamp"] for e in answer.json()["result"]]


def wait_for(server: LiveServer, names: list[str], count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(ticks(server, n)) >= count for n in names):
            return
        time.sleep(0.2)
    pytest.fail(
        f"fewer than {count} ticks of {names} in {timeout} s: {server.log_path.read_text()}"
    )


def assert_each_minute_once(stamps: list[str]) -> None:
    """One tick per minute, none twice and none missing, oldest first."""
    times = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    assert len(set(times)) == len(times), f"a tick was emitted twice: {stamps}"
    assert times == sorted(times), stamps
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps == {timedelta(minutes=1)}, stamps


def create(server: LiveServer, token: str, name: str) -> None:
    answer = httpx.post(
        f"{server.url}/api/v1/schedules",
        json={"name": name, "cron": "* * * * *", "catch_up": 100},
        headers={"Authorization": f"OAuth {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def running() -> Iterator[list[LiveServer]]:
    """The servers a test started, stopped at its end whatever happened."""
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        server.stop()


def serve(running: list[LiveServer], db_url: str, log: Path) -> LiveServer:
    server = start_server(db_url, log, *SERVE)
    running.append(server)
    return server


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_schedule_ticks_once_per_minute_across_a_killed_servers_restart(
    store: str, tmp_path: Path, fast_schedules: None, running: list[LiveServer]
) -> None:
    with fresh_database(store, tmp_path) as db_url:
        first = serve(running, db_url, tmp_path / "first.log")
        create(first, server_token(first), "minutely")
        wait_for(first, ["minutely"], 3)
        first.process.kill()  # mid-round, perhaps: what it had not committed is not stored
        first.process.wait(10)
        second = serve(running, db_url, tmp_path / "second.log")
        wait_for(second, ["minutely"], len(ticks(second, "minutely")) + 3)
        stamps = ticks(second, "minutely")
        second.stop()
    # The downtime's ticks came late (catch_up 100), the rest on time: each minute once.
    assert len(stamps) >= 6
    assert_each_minute_once(stamps)


def test_two_servers_on_one_postgresql_database_emit_each_tick_once(
    tmp_path: Path, fast_schedules: None, running: list[LiveServer]
) -> None:
    names = [f"every-minute-{i}" for i in range(5)]
    with fresh_database("postgres", tmp_path) as db_url:
        one = serve(running, db_url, tmp_path / "one.log")
        serve(running, db_url, tmp_path / "two.log")
        token = server_token(one)
        for name in names:
            create(one, token, name)
        wait_for(one, names, 5)
        found = {name: ticks(one, name) for name in names}
        for server in running:
            server.stop()
    for name in names:
        assert_each_minute_once(found[name])
