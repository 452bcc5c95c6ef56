"""A config's join is bounded in the reactor and in the story (issue 9: one user's config
never slows or stops stepd for anyone else).

Dependencies that share no free param join every stored event of one with every event of
the others: 3 dependencies of 300 stored events each are 27 million combinations. Without
a bound the reactor evaluated them all (and would have made a task for each) while every
other user's events waited. Each evaluation now has a JoinBudget (rows read, join steps);
past it the evaluation is recorded as the config's failed firing, as any evaluation that
raises is, and the batch goes on. The timeouts below are the test: on the old code the
reactor (or the story) does not come back within them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Api, served, server_token
from reactor_helpers import (
    config_body,
    config_entry,
    create_config,
    dep,
    event_state,
    react,
    send,
    set_event_state,
    story,
    task_rows,
    trigger_count,
)
from sqlalchemy import select

from stepd.domain.events import EventState, parse_event_id
from stepd.reactor.reactor import Reactor
from stepd.store.lookup import JoinBudget
from stepd.store.schema import triggers

TRIGGER = "nightlyDone"
GOOD_TYPE = "GOOD_TASK"
BAD_TYPE = "BAD_TASK"
PER_DEP = 300  # stored events of each other dependency: 300 x 300 combinations per trigger
TOO_LARGE = "the join is too large"


def _send_many(api: Api, name: str, count: int, key: str) -> None:
    events = [{"name": name, "params": {key: str(i)}} for i in range(count)]
    response = api.client.post("/api/v1/events", json={"events": events}, headers=api.auth)
    assert response.status_code == 200, response.text


def _store_parts(api: Api) -> None:
    """PER_DEP stored events for each dependency of `_product_config` the trigger does not
    fill, PROCESSED (no config yet), ready to be joined with."""
    _send_many(api, "partA", PER_DEP, "a")
    _send_many(api, "partB", PER_DEP, "b")
    react(api.store)


def _product_config(api: Api) -> str:
    """A config whose three dependencies share no free param."""
    return create_config(
        api,
        dep(TRIGGER, day="~"),
        dep("partA", a="~"),
        dep("partB", b="~"),
        task_type=BAD_TYPE,
    )


def _errors(api: Api, config_id: str) -> list[dict[str, Any]]:
    with api.store.read() as conn:
        rows = conn.execute(
            select(triggers).where(triggers.c.config_seq == parse_event_id(config_id))
        ).all()
    return [dict(r._mapping) for r in rows]


def _metric(api: Api, name: str) -> float:
    text = api.client.get("/metrics").text
    (line,) = [x for x in text.splitlines() if x.startswith(f"{name} ")]
    return float(line.split()[1])


@pytest.mark.timeout(30)
def test_a_join_past_its_budget_is_recorded_and_the_other_configs_fire(api: Api) -> None:
    _store_parts(api)
    bad = _product_config(api)
    good = create_config(api, dep(TRIGGER), task_type=GOOD_TYPE)
    first = send(api, TRIGGER, day="1")
    second = send(api, TRIGGER, day="2")
    react(api.store)
    assert event_state(api.store, first) == "PROCESSED"
    assert event_state(api.store, second) == "PROCESSED"
    assert [t["type"] for t in task_rows(api.store)] == [GOOD_TYPE, GOOD_TYPE]
    # The bad config's failed firing, once per event, under the empty binding, saying why
    # and how to fix the config.
    recorded = _errors(api, bad)
    assert len(recorded) == 2, recorded
    for row in recorded:
        assert row["task_id"] is None and row["binding"] == "{}", row
        error = row["error"]
        assert error.startswith(f"evaluation failed: {TOO_LARGE}"), error
        assert "join_budget_steps" in error and "`date`" in error and "`window`" in error
    entry = config_entry(story(api, first), bad)
    assert entry["outcome"] == "fired", entry
    (fired,) = entry["fired"]
    assert fired["task_id"] is None and TOO_LARGE in fired["error"], fired
    assert config_entry(story(api, first), good)["fired"][0]["task_id"] is not None
    assert _metric(api, "stepd_trigger_errors_total") == 2


@pytest.mark.timeout(30)
def test_a_join_that_reads_too_many_stored_events_is_recorded(api: Api) -> None:
    # The other bound: rows read. Two dependencies sharing nothing, one fixed param each:
    # the lookup of partA reads every stored partA event.
    _send_many(api, "partA", PER_DEP, "a")
    react(api.store)
    bad = create_config(api, dep(TRIGGER), dep("partA", a="~"), task_type=BAD_TYPE)
    good = create_config(api, dep(TRIGGER), task_type=GOOD_TYPE)
    first = send(api, TRIGGER)
    reactor = Reactor(api.store, join_budget=JoinBudget(rows=PER_DEP - 1))
    while reactor.run_once():
        pass
    assert event_state(api.store, first) == "PROCESSED"
    assert [t["type"] for t in task_rows(api.store)] == [GOOD_TYPE]
    (row,) = _errors(api, bad)
    assert row["task_id"] is None and TOO_LARGE in row["error"], row
    assert f"more than {PER_DEP - 1} stored events (join_budget_rows)" in row["error"], row
    assert config_entry(story(api, first), good)["fired"]


@pytest.mark.timeout(30)
def test_the_story_bounds_its_evaluation_the_same_way(api: Api) -> None:
    # The event was evaluated before the config existed: the story evaluates it afresh,
    # against the stored events before it.
    _store_parts(api)
    first = send(api, TRIGGER, day="1")
    react(api.store)
    bad = _product_config(api)
    entry = config_entry(story(api, first), bad)
    assert entry["outcome"] == "failed", entry
    assert entry["note"].startswith(f"evaluation failed: {TOO_LARGE}"), entry


def test_legitimate_configs_never_come_near_the_budget(api: Api) -> None:
    # A budget of 3 stored events and 3 join steps: one dependency with a free param binds
    # once per event (the trigger fills it, nothing is read), and a join on a shared free
    # param reads the few events of its value; neither depends on how many events the
    # store keeps.
    _send_many(api, "dataReady", 50, "date")
    react(api.store)
    single = create_config(api, dep(TRIGGER, date="~"), task_type="SINGLE")
    joined = create_config(api, dep(TRIGGER, date="~"), dep("dataReady", date="~"), task_type="J")
    sent = [send(api, TRIGGER, date=str(i)) for i in range(20)]
    reactor = Reactor(api.store, join_budget=JoinBudget(rows=3, steps=3))
    while reactor.run_once():
        pass
    # Evaluated again out of seq order (as a late PostgreSQL commit is): the trigger's slot
    # then looks for a newer event of its binding, still within the budget.
    set_event_state(api.store, sent[3], EventState.NEW)
    while reactor.run_once():
        pass
    assert not [r for c in (single, joined) for r in _errors(api, c) if r["error"]]
    made = sorted((t["type"], t["params"]["date"]) for t in task_rows(api.store))
    assert made == sorted(
        [("SINGLE", str(i)) for i in range(20)] + [("J", str(i)) for i in range(20)]
    )
    assert trigger_count(api.store) == 40


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.timeout(120)
def test_serve_gives_its_budget_to_the_reactor_process(store: str, tmp_path: Path) -> None:
    # 30 x 30 combinations: within the default budget, past the one given to `stepd serve`,
    # which reaches the reactor in its own process.
    args = ("--workers", "0", "--no-clock", "--join-budget-steps", "20")
    with served(store, tmp_path, *args) as server:
        headers = {"Authorization": f"OAuth {server_token(server)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for name, key in (("partA", "a"), ("partB", "b")):
                events = [{"name": name, "params": {key: str(i)}} for i in range(30)]
                assert client.post("/api/v1/events", json={"events": events}).status_code == 200
            made = [
                client.post("/api/v1/configs", json=config_body(*deps, task_type=task_type))
                for deps, task_type in (
                    ((dep(TRIGGER, day="~"), dep("partA", a="~"), dep("partB", b="~")), BAD_TYPE),
                    ((dep(TRIGGER),), GOOD_TYPE),
                )
            ]
            assert all(m.status_code in (200, 201) for m in made), [m.text for m in made]
            bad = made[0].json()["id"]
            sent = client.post(
                "/api/v1/events", json={"events": [{"name": TRIGGER, "params": {"day": "1"}}]}
            )
            (trigger,) = sent.json()["ids"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = client.get(f"/api/v1/events/{trigger}").json()["result"]["state"]
                if state == "PROCESSED":
                    break
                time.sleep(0.1)
            assert state == "PROCESSED"
            told = client.get(f"/api/v1/events/{trigger}/story").json()["result"]
            (fired,) = config_entry(told, bad)["fired"]
            assert fired["task_id"] is None, fired
            assert "more than 20 combinations of events (join_budget_steps)" in fired["error"]
            tasks = client.get("/api/v1/tasks", params={"limit": 10}).json()["result"]
            assert [t["type"] for t in tasks] == [GOOD_TYPE], tasks
