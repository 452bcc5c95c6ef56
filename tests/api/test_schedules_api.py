"""`/api/v1/schedules` on every store: create, read, change, delete, who may, bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from api_helpers import all_events, assert_error
from conftest import Api, make_token

from stepd.reactor.reactor import Reactor
from stepd.scheduler import Scheduler
from stepd.timeutil import utcnow

NIGHTLY = {
    "name": "nightly",
    "cron": "0 6 * * 1-5",
    "timezone": "Europe/Moscow",
    "params": {"environment": "stable"},
}


def create(api: Api, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"OAuth {token}"} if token else api.auth
    return api.client.post("/api/v1/schedules", json=body, headers=headers)


def created(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = create(api, body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def assert_no_schedules(api: Api) -> None:
    assert api.client.get("/api/v1/schedules").json() == {"result": []}


def test_a_schedule_is_created_listed_changed_and_deleted(api: Api) -> None:
    before = utcnow()
    schedule = created(api, NIGHTLY)
    assert schedule["name"] == "nightly"
    assert schedule["cron"] == "0 6 * * 1-5"
    assert schedule["timezone"] == "Europe/Moscow"
    assert schedule["params"] == {"environment": "stable"}
    assert schedule["enabled"] is True and schedule["catch_up"] == 1
    assert schedule["author"] == "robot-crypta"
    assert schedule["last_tick"] is None
    # 06:00 in Moscow (UTC+3) is 03:00 UTC, on a weekday, after now.
    assert schedule["next_tick"].endswith("T03:00:00Z")
    assert schedule["next_tick"] > before.isoformat()

    assert api.client.get("/api/v1/schedules").json()["result"] == [schedule]
    assert api.client.get("/api/v1/schedules/nightly").json()["result"] == schedule

    changed = api.client.put(
        "/api/v1/schedules/nightly",
        json={"cron": "30 7 * * *", "timezone": "UTC", "catch_up": 3},
        headers=api.auth,
    )
    assert changed.status_code == 200, changed.text
    result = changed.json()["result"]
    assert (result["cron"], result["timezone"], result["catch_up"]) == ("30 7 * * *", "UTC", 3)
    assert result["params"] == {"environment": "stable"}  # not sent: kept
    assert result["next_tick"].endswith("T07:30:00Z")

    paused = api.client.put(
        "/api/v1/schedules/nightly", json={"enabled": False}, headers=api.auth
    ).json()["result"]
    assert paused["enabled"] is False and paused["next_tick"] is None

    deleted = api.client.delete("/api/v1/schedules/nightly", headers=api.auth)
    assert deleted.status_code == 200 and deleted.json() == {"name": "nightly"}
    assert_error(api.client.get("/api/v1/schedules/nightly"), 404, "no schedule")
    assert_no_schedules(api)


def test_a_second_schedule_of_the_same_name_is_a_409(api: Api) -> None:
    created(api, NIGHTLY)
    assert_error(create(api, {**NIGHTLY, "cron": "* * * * *"}), 409, "exists")
    assert api.client.get("/api/v1/schedules/nightly").json()["result"]["cron"] == "0 6 * * 1-5"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"cron": "* * * * * *"}, "cron", ["five", "seconds"]),
        ({"cron": "*/10 * * * * * *"}, "cron", ["five"]),
        ({"cron": "61 * * * *"}, "cron", ["does not parse"]),
        ({"cron": "every day"}, "cron", ["columns"]),
        ({"cron": "@reboot"}, "cron", ["shorthands"]),
        ({"cron": "0 0 31 2 *"}, "cron", ["never ticks"]),
        ({"cron": 5}, "cron", ["cron expression"]),
        ({"cron": "H * * * *"}, "cron", ["does not parse"]),
        ({"timezone": "Mars/Olympus"}, "timezone", ["time zone"]),
        ({"timezone": "../../etc/passwd"}, "timezone", ["time zone"]),
        ({"timezone": ""}, "timezone", ["time zone"]),
        ({"name": "has space"}, "name", ["name must be"]),
        ({"name": "x" * 101}, "name", ["name must be"]),
        ({"name": "-dash"}, "name", ["name must be"]),
        ({"params": {"n": 3}}, "params.n", ["string"]),
        ({"params": {"n": "x" * 1001}}, "params.n", ["1000"]),
        ({"params": {"schedule": "other"}}, "params.schedule", ["set by every tick"]),
        ({"params": {"timestamp": "now"}}, "params.timestamp", ["set by every tick"]),
        ({"params": {f"k{i}": "v" for i in range(51)}}, "params", ["more than 50"]),
        ({"params": ["a"]}, "params", ["object"]),
        ({"enabled": "yes"}, "enabled", ["true or false"]),
        ({"catch_up": 0}, "catch_up", ["1 to 1000"]),
        ({"catch_up": 1001}, "catch_up", ["1 to 1000"]),
        ({"catch_up": True}, "catch_up", ["whole number"]),
        ({"every": "minute"}, "every", ["unknown fields"]),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    api: Api, change: dict[str, Any], field: str, words: list[str]
) -> None:
    body = assert_error(create(api, {**NIGHTLY, **change}), 400, *words)
    assert body["field"] == field
    assert_no_schedules(api)


def test_a_schedule_without_a_cron_or_with_a_body_not_an_object_is_a_400(api: Api) -> None:
    assert assert_error(create(api, {"name": "x"}), 400, "cron is required")["field"] == "cron"
    assert_error(api.client.post("/api/v1/schedules", json=["x"], headers=api.auth), 400, "object")
    assert_no_schedules(api)


def test_a_bad_change_is_a_400_and_changes_nothing(api: Api) -> None:
    schedule = created(api, NIGHTLY)
    for change, field in (
        ({"cron": "* * * * * *"}, "cron"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"name": "other"}, "name"),
        ({"params": {"schedule": "x"}}, "params.schedule"),
    ):
        response = api.client.put("/api/v1/schedules/nightly", json=change, headers=api.auth)
        assert assert_error(response, 400)["field"] == field
    assert api.client.get("/api/v1/schedules/nightly").json()["result"] == schedule
    missing = api.client.put("/api/v1/schedules/absent", json={"enabled": False}, headers=api.auth)
    assert_error(missing, 404, "no schedule")


def test_writes_need_a_token_and_only_the_author_or_an_admin_may_change(api: Api) -> None:
    assert_error(api.client.post("/api/v1/schedules", json=NIGHTLY), 401, "token")
    assert_no_schedules(api)
    created(api, NIGHTLY)
    assert_error(api.client.put("/api/v1/schedules/nightly", json={"enabled": False}), 401)
    assert_error(api.client.delete("/api/v1/schedules/nightly"), 401)

    other = {"Authorization": f"OAuth {make_token(api.store, 'someone-else')}"}
    refused = api.client.put("/api/v1/schedules/nightly", json={"enabled": False}, headers=other)
    assert_error(refused, 403, "robot-crypta")
    assert_error(api.client.delete("/api/v1/schedules/nightly", headers=other), 403)
    assert api.client.get("/api/v1/schedules/nightly").json()["result"]["enabled"] is True

    admin = {"Authorization": f"OAuth {make_token(api.store, 'root', admin=True)}"}
    allowed = api.client.put("/api/v1/schedules/nightly", json={"enabled": False}, headers=admin)
    assert allowed.status_code == 200, allowed.text
    assert api.client.delete("/api/v1/schedules/nightly", headers=admin).status_code == 200
    assert_no_schedules(api)


def test_a_deployment_holds_at_most_max_schedules(api: Api) -> None:
    api.client.app.state.stepd.schedules.max_schedules = 2  # type: ignore[attr-defined]
    created(api, {**NIGHTLY, "name": "a"})
    created(api, {**NIGHTLY, "name": "b"})
    assert_error(create(api, {**NIGHTLY, "name": "c"}), 409, "delete one first")
    assert [s["name"] for s in api.client.get("/api/v1/schedules").json()["result"]] == ["a", "b"]


def test_the_story_of_a_tick_says_which_schedule_and_tick_it_was(api: Api) -> None:
    created(api, {**NIGHTLY, "cron": "*/5 * * * *", "timezone": "UTC"})
    config = {
        "name": "on-nightly",
        "event_deps": [{"name": "schedule", "params": {"schedule": "nightly", "timestamp": "~"}}],
        "action_type": "SANDBOX_TASK",
        "task_type": "NIGHTLY_REPORT",
        "task_params": {},
    }
    response = api.client.post("/api/v1/configs", json=config, headers=api.auth)
    assert response.status_code == 200, response.text
    schedule = api.client.get("/api/v1/schedules/nightly").json()["result"]
    context = api.client.app.state.stepd  # type: ignore[attr-defined]
    tick_at = utcnow().replace(microsecond=0) + timedelta(minutes=5)
    assert Scheduler(context.store, context.events).round(tick_at) == 1

    [tick] = all_events(api)
    assert tick["name"] == "schedule"
    assert tick["params"] == {
        "schedule": "nightly",
        "timestamp": schedule["next_tick"],
        "environment": "stable",
    }
    assert tick["source_type"] == "schedule" and tick["source"] == "nightly"
    story = api.client.get(f"/api/v1/events/{tick['_id']}/story")
    assert story.status_code == 200, story.text
    told = story.json()["result"]
    assert told["event"]["params"]["schedule"] == "nightly"
    assert told["event"]["params"]["timestamp"] == schedule["next_tick"]
    assert "on-nightly" in story.text  # the config that depends on it is in the story
    # The reactor fires the config on the tick like on any event, binding the tick.
    reactor = Reactor(context.store)
    while reactor.run_once() > 0:
        pass
    fired = api.client.get(f"/api/v1/events/{tick['_id']}/story").json()["result"]
    [task] = fired["produced_tasks"]
    assert task["config_name"] == "on-nightly" and task["task_type"] == "NIGHTLY_REPORT"
    assert schedule["next_tick"] in json.dumps(fired["configs"])  # the binding: the tick
