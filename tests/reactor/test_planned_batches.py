"""On SQLite the reactor evaluates a batch in a read snapshot and writes what it fires in a
short write transaction. Whatever changes in between (a rejection, another reactor, a
config) makes it evaluate again under the write lock: the result is always what an
evaluation under the lock would give."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Api
from reactor_helpers import create_config, dep, react, send, set_event_state, task_rows

from stepd.domain.events import EventState
from stepd.reactor.reactor import Reactor


def _between_plan_and_write(monkeypatch: pytest.MonkeyPatch, api: Api, act: Any) -> list[int]:
    """Run `act()` after each plan is made and before it is written; count plans.

    PostgreSQL evaluates under its lock, with no plan: there `act()` runs first.
    """
    plans: list[int] = []
    if not api.store.is_sqlite:
        act()
        return plans
    original = Reactor._plan

    def plan_then_act(self: Reactor, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        plans.append(len(made.firings))
        act()
        return made

    monkeypatch.setattr(Reactor, "_plan", plan_then_act)
    return plans


def test_a_dependency_rejected_after_the_plan_fires_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_config(api, dep("load_done", date="~"), dep("check_done", date="~"))
    check = send(api, "check_done", date="2026-11-29")
    send(api, "unrelated", date="2026-11-29")  # the newest PROCESSED event stays the same
    react(api.store)
    send(api, "load_done", date="2026-11-29")
    plans = _between_plan_and_write(
        monkeypatch, api, lambda: set_event_state(api.store, check, EventState.REJECTED)
    )
    react(api.store)
    assert api.store.is_sqlite is (plans == [1])  # SQLite planned one firing, then dropped it
    assert task_rows(api.store) == []


def test_an_unchanged_store_writes_the_plan(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    create_config(api, dep("load_done", date="~"), dep("check_done", date="~"))
    send(api, "check_done", date="2026-11-29")
    send(api, "load_done", date="2026-11-29")
    plans = _between_plan_and_write(monkeypatch, api, lambda: None)
    react(api.store)
    assert api.store.is_sqlite is (plans == [1])
    [task] = task_rows(api.store)
    assert task["params"] == {"date": "2026-11-29"}


def test_an_event_of_the_batch_rejected_after_the_plan_is_not_evaluated(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_config(api, dep("load_done", date="~"))
    rejected = send(api, "load_done", date="2026-11-28")
    kept = send(api, "load_done", date="2026-11-29")
    _between_plan_and_write(
        monkeypatch, api, lambda: set_event_state(api.store, rejected, EventState.REJECTED)
    )
    react(api.store)
    assert [t["params"] for t in task_rows(api.store)] == [{"date": "2026-11-29"}]
    assert kept
