"""Events posted to the API are stamped by the store's clock: on PostgreSQL the
database's, so replicas whose clocks disagree still stamp one timeline for join windows;
on SQLite (one machine) the host's, which every process writing it shares."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import Api
from sqlalchemy import text

import stepd.services.events
import stepd.timeutil
from stepd.store import events as event_store

AHEAD = timedelta(hours=1)


def _clock_ahead(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """This (the API's) process's clock runs an hour ahead; returns the time it says."""
    real = stepd.timeutil.utcnow

    def ahead() -> datetime:
        return real() + AHEAD

    monkeypatch.setattr(stepd.timeutil, "utcnow", ahead)
    for module in (stepd.services.events, event_store):  # those that took it by name
        monkeypatch.setattr(module, "utcnow", ahead, raising=False)
    return ahead()


def _db_now(api: Api) -> datetime:
    with api.store.read() as conn:
        value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    assert isinstance(value, datetime)
    return value


def _created(api: Api, ids: list[str]) -> list[datetime]:
    with api.store.read() as conn:
        found = event_store.get_events(conn, [int(i, 16) for i in ids])
    return [found[int(i, 16)].created for i in ids]


def _post(api: Api, events: list[dict[str, object]]) -> list[str]:
    r = api.client.post(
        "/api/v1/events",
        json={"events": events},
        headers=api.auth,
    )
    assert r.status_code == 200, r.text
    ids: list[str] = r.json()["ids"]
    return ids


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_on_postgresql_an_events_created_is_the_databases_time_not_the_hosts(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_time = _clock_ahead(monkeypatch)
    before = _db_now(api)
    single = _post(api, [{"name": "day_closed", "params": {"day": "2026-12-01"}}])
    batch = _post(api, [{"name": "part", "params": {"n": n}} for n in range(5)])
    after = _db_now(api)
    stamps = _created(api, single + batch)
    for created in stamps:
        assert before <= created <= after, (before, created, after)
        assert created < host_time - AHEAD / 2  # not the API host's clock
    assert len(set(stamps[1:])) == 1  # one batch, one time, as before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_an_events_created_is_the_one_hosts_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_time = _clock_ahead(monkeypatch)
    (created,) = _created(api, _post(api, [{"name": "day_closed", "params": {}}]))
    assert abs(created - host_time) < timedelta(minutes=5)
