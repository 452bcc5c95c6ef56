"""The event story (fired / waiting / not_matched / disabled), trying a config without
launching anything, and the Crypta-style `task/status` report (issue 3)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Api
from reactor_helpers import (
    CRYPTA,
    HUMAN_MATCHING,
    SOUP,
    config_body,
    config_entry,
    create_config,
    dep,
    react,
    send,
    story,
    task_rows,
    trigger_count,
)
from sqlalchemy import Connection

from stepd.reactor.reactor import Reactor
from stepd.services import story as story_module

SOUP_SUCCESS = {"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable"}
SOUP_DEP = dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date="~")
MISSING_ID = "0" * 8 + "7" + "f" * 15  # well-formed, in the store's range, never issued
BEYOND_RANGE_ID = "f" * 24  # well-formed (24 hex digits) but past a 64-bit sequence


def test_story_lists_every_related_config_as_fired_waiting_not_matched_or_disabled(
    api: Api,
) -> None:
    fired = create_config(api, SOUP_DEP, name="fired")
    waiting = create_config(api, SOUP_DEP, dep("event2", date="~"), name="waiting")
    not_matched = create_config(
        api, dep(CRYPTA, taskType="CRYPTA_OTHER", date="~"), name="not-matched"
    )
    disabled = create_config(api, SOUP_DEP, name="disabled", enabled=False)
    unrelated = create_config(api, dep("event9"), name="unrelated")
    event_id = send(api, CRYPTA, **SOUP_SUCCESS, date="2019-01-01")
    react(api.store)

    told = story(api, event_id)
    outcomes = {c["config_id"]: c["outcome"] for c in told["configs"]}
    assert outcomes == {
        fired: "fired",
        waiting: "waiting",
        not_matched: "not_matched",
        disabled: "disabled",
    }
    assert unrelated not in outcomes
    [task] = told["produced_tasks"]
    assert set(task) >= {"sandbox_task_id", "config_id", "config_name", "task_type", "params",
                         "status"}  # fmt: skip
    assert (task["config_id"], task["config_name"]) == (fired, "fired")
    assert (task["task_type"], task["params"], task["status"]) == (
        HUMAN_MATCHING, {"date": "2019-01-01"}, "ENQUEUED",
    )  # fmt: skip
    assert config_entry(told, fired)["fired"][0]["task_id"] == task["sandbox_task_id"]
    [why] = config_entry(told, not_matched)["not_matched"]
    assert (why["param"], why["expected"], why["actual"]) == ("taskType", "CRYPTA_OTHER", SOUP)
    [wait] = config_entry(told, waiting)["waiting"]
    assert wait["binding"] == {"date": "2019-01-01"}
    assert [m["name"] for m in wait["missing"]] == ["event2"]


def test_story_is_one_consistent_snapshot_even_while_the_reactor_commits(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_config(api, SOUP_DEP, name="fired")
    event_id = send(api, CRYPTA, **SOUP_SUCCESS, date="2019-01-01")
    real_for_event = story_module.trigger_store.for_event

    def reactor_commits_midway(conn: Connection, event_seq: int) -> Any:
        # The story has read the event (still NEW); the reactor now fires and commits.
        assert Reactor(api.store).run_once() == 1
        return real_for_event(conn, event_seq)

    monkeypatch.setattr(story_module.trigger_store, "for_event", reactor_commits_midway)
    told = story(api, event_id)
    monkeypatch.undo()

    # Either before the firing (NEW, no task) or after it (PROCESSED, its task): never a mix.
    state, produced = told["event"]["state"], told["produced_tasks"]
    assert (state, len(produced)) in {("NEW", 0), ("PROCESSED", 1)}, (state, produced)
    assert len(task_rows(api.store)) == 1


def _story_by_post(api: Api, **request: Any) -> dict[str, Any]:
    started = api.client.post("/api/v1/event_story", **request)
    assert started.status_code == 200, started.text
    story_id = started.json()["id"]
    assert isinstance(story_id, str) and story_id
    response = api.client.get(f"/api/v1/event_story/{story_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_event_story_is_started_with_form_data_or_json_and_read_by_its_id(api: Api) -> None:
    create_config(api, SOUP_DEP, name="fired")
    event_id = send(api, CRYPTA, **SOUP_SUCCESS, date="2019-01-01")
    react(api.store)

    # The original's users: curl -X POST .../event_story -d "id=$event_id" (no token).
    by_form = _story_by_post(api, data={"id": event_id})
    by_json = _story_by_post(api, json={"id": event_id})
    for told in (by_form, by_json):
        assert told["event"]["_id"] == event_id
        assert told["event"]["params"] == {**SOUP_SUCCESS, "date": "2019-01-01"}
        assert [t["params"] for t in told["produced_tasks"]] == [{"date": "2019-01-01"}]
    assert by_form["produced_tasks"] == story(api, event_id)["produced_tasks"]


def test_story_of_an_unknown_event_is_404(api: Api) -> None:
    for body in ({"id": MISSING_ID}, {"id": "not-an-id"}):
        response = api.client.post("/api/v1/event_story", json=body)
        assert response.status_code == 404, (body, response.text)
    assert api.client.post("/api/v1/event_story", data={"id": MISSING_ID}).status_code == 404
    assert api.client.get(f"/api/v1/event_story/{MISSING_ID}").status_code == 404
    assert api.client.get(f"/api/v1/events/{MISSING_ID}/story").status_code == 404
    missing_id = api.client.post("/api/v1/event_story", json={})
    assert missing_id.status_code == 400, missing_id.text


def test_story_of_an_id_beyond_the_store_range_is_404_not_500(api: Api) -> None:
    for response in (
        api.client.post("/api/v1/event_story", json={"id": BEYOND_RANGE_ID}),
        api.client.post("/api/v1/event_story", data={"id": BEYOND_RANGE_ID}),
        api.client.get(f"/api/v1/event_story/{BEYOND_RANGE_ID}"),
        api.client.get(f"/api/v1/events/{BEYOND_RANGE_ID}/story"),
    ):
        assert response.status_code == 404, (response.request.url, response.text)


def _trial(api: Api, body: dict[str, object]) -> dict[str, Any]:
    response = api.client.post("/api/v1/configs/test", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def _nothing_launched(api: Api) -> None:
    assert task_rows(api.store) == []
    assert trigger_count(api.store) == 0


def test_trying_a_config_on_a_hypothetical_event_says_what_would_fire_and_launches_nothing(
    api: Api,
) -> None:
    task_params = {"day": "{{ date }}", "up": "{{ deps[0].params.taskType }}"}
    body = config_body(SOUP_DEP, task_params=task_params)
    soup = {"name": CRYPTA, "params": {**SOUP_SUCCESS, "date": "2019-01-01"}}
    result = _trial(api, {"config": body, "event": soup})
    [entry] = result["events"]
    assert entry["outcome"] == "fired"
    [would] = entry["would_fire"]
    assert would["binding"] == {"date": "2019-01-01"}
    assert would["task"]["type"] == HUMAN_MATCHING
    assert would["task"]["params"] == {"date": "2019-01-01", "day": "2019-01-01", "up": SOUP}

    failed = {"name": CRYPTA, "params": {**SOUP_SUCCESS, "taskStatus": "FAILURE"}}
    other = _trial(api, {"config": body, "event": failed})
    [entry] = other["events"]
    assert entry["outcome"] == "not_matched" and entry["would_fire"] == []
    assert [(m["param"], m["expected"], m["actual"]) for m in entry["not_matched"]] == [
        ("taskStatus", "SUCCESS", "FAILURE"),
        ("date", "~", None),
    ]

    _nothing_launched(api)
    assert api.client.get("/api/v1/events").json()["result"] == []  # nothing stored either
    assert api.client.get("/api/v1/configs").json()["result"] == []


def test_trying_a_saved_config_on_stored_events_launches_nothing(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, dep("event2", date="~"),
                              task_params={"day": "{{ deps[1].params.date }}"})  # fmt: skip
    first = send(api, CRYPTA, **SOUP_SUCCESS, date="2019-01-01")
    second = send(api, CRYPTA, **SOUP_SUCCESS, date="2019-01-02")
    joined = send(api, "event2", date="2019-01-01")

    stored = {"name": CRYPTA, "params": {"taskType": SOUP}, "limit": 10}
    result = _trial(api, {"config_id": config_id, "events": stored})
    by_id = {e["event"]["_id"]: e for e in result["events"]}
    assert set(by_id) == {first, second}
    # At its own time `first` had no event2 yet: it waited. `second` has none for its date.
    assert by_id[first]["outcome"] == "waiting"
    assert by_id[second]["outcome"] == "waiting"

    on_joined = _trial(api, {"config_id": config_id, "events": {"name": "event2"}})
    [entry] = on_joined["events"]
    assert entry["event"]["_id"] == joined
    assert entry["outcome"] == "fired"
    [would] = entry["would_fire"]
    assert would["binding"] == {"date": "2019-01-01"}
    assert would["dep_event_ids"] == [first, joined]
    assert would["task"]["params"] == {"date": "2019-01-01", "day": "2019-01-01"}

    event2 = {"name": "event2", "params": {"date": "2019-01-02"}}
    hypothetical = _trial(api, {"config_id": config_id, "event": event2})
    [would] = hypothetical["events"][0]["would_fire"]
    assert would["dep_event_ids"] == [second, None]

    _nothing_launched(api)


def test_task_status_form_report_becomes_a_crypta_task_event_with_the_body_params(
    api: Api,
) -> None:
    create_config(api, SOUP_DEP, name="after-soup")
    bodies = ['{"date": "2019-01-01"}', "{'date': '2019-01-02'}"]  # JSON and Python-dict style
    ids = []
    for body in bodies:
        response = api.client.post(
            "/api/v1/task/status",
            data={"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable",
                  "body": body},
            headers=api.auth,
        )  # fmt: skip
        assert response.status_code == 200, (body, response.text)
        ids.append(response.json()["id"])
    for event_id, date in zip(ids, ["2019-01-01", "2019-01-02"], strict=True):
        got = api.client.get(f"/api/v1/events/{event_id}").json()["result"]
        assert got["name"] == CRYPTA
        assert got["params"] == {**SOUP_SUCCESS, "date": date}

    react(api.store)
    assert [t["params"] for t in task_rows(api.store)] == [
        {"date": "2019-01-01"}, {"date": "2019-01-02"},
    ]  # fmt: skip


def test_task_status_accepts_json_too_and_needs_a_token(api: Api) -> None:
    report = {**SOUP_SUCCESS, "body": {"date": "2019-01-03"}}
    response = api.client.post("/api/v1/task/status", json=report, headers=api.auth)
    assert response.status_code == 200, response.text
    got = api.client.get(f"/api/v1/events/{response.json()['id']}").json()["result"]
    assert got["params"] == {**SOUP_SUCCESS, "date": "2019-01-03"}
    assert api.client.post("/api/v1/task/status", json=report).status_code == 401
