"""Day-to-day operations on a config (issue 11), through the HTTP API on every store:
pausing and resuming it, and running it now for one binding.

The reactor is driven explicitly (`react`), so "does not fire later" is a fact about the
tables after every pending event was evaluated, not a race against a background loop.
"""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Api, make_token
from reactor_helpers import (
    CRYPTA,
    HUMAN_MATCHING,
    SOUP,
    config_entry,
    create_config,
    dep,
    get_config,
    react,
    send,
    story,
    task_rows,
    trigger_count,
)

DAY_LOAD = "mapreduce__day_load_closed"


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """`response` is a `status` JSON error whose message has every word."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    for word in words:
        assert word.lower() in body["message"].lower(), (word, body)
    return body


JOIN = (
    dep(DAY_LOAD, logtype="access-log", date="~", mrbasename="~"),
    dep(DAY_LOAD, logtype="redir-log", date="~", mrbasename="~"),
)


def post(api: Api, path: str, body: object = None, token: str | None = None) -> httpx.Response:
    headers = api.auth if token is None else {"Authorization": f"OAuth {token}"}
    return api.client.post(f"/api/v1/configs{path}", json=body, headers=headers)


def disable(api: Api, config_id: str) -> dict[str, Any]:
    response = post(api, f"/{config_id}/disable")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def enable(api: Api, config_id: str) -> dict[str, Any]:
    response = post(api, f"/{config_id}/enable")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def soup(date: str) -> dict[str, object]:
    return {"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable", "date": date}


SOUP_DEP = dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", environment="stable", date="~")


# --- pause and resume ------------------------------------------------------------------------


def test_events_sent_while_a_config_is_paused_never_fire_it_and_the_story_says_disabled(
    api: Api,
) -> None:
    config_id = create_config(api, SOUP_DEP, name="paused-soup")
    assert get_config(api, config_id)["disabled"] is False

    paused = disable(api, config_id)
    assert paused["disabled"] is True and paused["disabled_by"] == "robot-crypta"
    assert get_config(api, config_id)["disabled"] is True
    during = send(api, CRYPTA, **soup("2019-01-01"))
    assert react(api.store) == 1
    assert task_rows(api.store) == [] and trigger_count(api.store) == 0
    entry = config_entry(story(api, during), config_id)
    assert entry["outcome"] == "disabled" and "paused" in entry["note"]

    resumed = enable(api, config_id)
    assert resumed["disabled"] is False and resumed["disabled_by"] is None
    react(api.store)
    assert task_rows(api.store) == []  # the event of the pause does not fire it now
    # ...and its story still says why: the config was paused when it arrived
    entry = config_entry(story(api, during), config_id)
    assert entry["outcome"] == "disabled" and "was paused" in entry["note"]

    after = send(api, CRYPTA, **soup("2019-01-02"))
    react(api.store)
    [task] = task_rows(api.store)
    assert task["params"] == {"date": "2019-01-02"}
    assert config_entry(story(api, after), config_id)["outcome"] == "fired"


def test_a_join_completed_after_enable_uses_the_events_from_before_the_pause(api: Api) -> None:
    config_id = create_config(api, *JOIN, task_type="JOINED", name="paused-join")
    before = send(api, DAY_LOAD, logtype="access-log", date="2019-01-01", mrbasename="hahn")
    react(api.store)
    disable(api, config_id)
    # during the pause: a matching event, and one half of another join
    send(api, DAY_LOAD, logtype="redir-log", date="2019-01-01", mrbasename="arnold")
    send(api, DAY_LOAD, logtype="access-log", date="2019-01-02", mrbasename="hahn")
    react(api.store)
    assert task_rows(api.store) == []
    enable(api, config_id)

    completing = send(api, DAY_LOAD, logtype="redir-log", date="2019-01-01", mrbasename="hahn")
    react(api.store)
    [task] = task_rows(api.store)
    assert task["params"] == {"date": "2019-01-01", "mrbasename": "hahn"}
    [fired] = config_entry(story(api, completing), config_id)["fired"]
    assert fired["dep_event_ids"] == [before, completing]
    # A join whose other half arrived during the pause completes after it too
    send(api, DAY_LOAD, logtype="redir-log", date="2019-01-02", mrbasename="hahn")
    react(api.store)
    assert [t["params"] for t in task_rows(api.store)][1] == {
        "date": "2019-01-02",
        "mrbasename": "hahn",
    }


def test_pause_and_resume_are_in_the_history_with_who_and_when_and_keep_the_version(
    api: Api,
) -> None:
    config_id = create_config(api, SOUP_DEP, name="history-soup")
    disable(api, config_id)
    disable(api, config_id)  # already paused: nothing new
    enable(api, config_id)
    history = api.client.get(f"/api/v1/configs/{config_id}/history").json()["result"]
    assert [(h["action"], h["actor"], h["version"]) for h in history] == [
        ("created", "robot-crypta", 1),
        ("disabled", "robot-crypta", 1),
        ("enabled", "robot-crypta", 1),
    ]
    assert history[1]["change"] == {"disabled": {"old": False, "new": True}}
    assert all(h["at"].endswith("Z") for h in history)
    assert get_config(api, config_id)["version"] == 1


def test_a_put_of_the_body_a_get_returned_keeps_the_config_paused(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="put-paused")
    body = disable(api, config_id)
    body["priority"] = 5
    response = api.client.put(f"/api/v1/configs/{config_id}", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    stored = get_config(api, config_id)
    assert stored["priority"] == 5 and stored["disabled"] is True
    listed = api.client.get("/api/v1/configs", params={"disabled": "true"}).json()["result"]
    assert [c["_id"] for c in listed] == [config_id]


def test_only_the_author_or_an_admin_may_pause_or_resume_and_unknown_ids_are_404(
    api: Api,
) -> None:
    config_id = create_config(api, SOUP_DEP, name="guarded")
    other = make_token(api.store, "someone-else")
    for action in ("disable", "enable"):
        assert_error(post(api, f"/{config_id}/{action}", token=other), 403, "robot-crypta")
        response = api.client.post(f"/api/v1/configs/{config_id}/{action}")
        assert_error(response, 401, "token")
        assert_error(post(api, f"/ffffffffffffffffffffffff/{action}"), 404, "no config")
        assert_error(post(api, f"/not-an-id/{action}"), 404, "no config")
    assert get_config(api, config_id)["disabled"] is False
    admin = make_token(api.store, "the-admin", admin=True)
    assert post(api, f"/{config_id}/disable", token=admin).status_code == 200
    assert get_config(api, config_id)["disabled_by"] == "the-admin"


# --- run now ---------------------------------------------------------------------------------

TEMPLATED = {
    "task_params": {"day": "{{ date }}", "where": "{{ binding.mrbasename }}", "fixed": 7},
    "semaphores": [{"name": "run-now-sem", "weight": 1}],
    "priority": 42,
    "max_retries": 3,
    "kill_timeout": 600,
}


def run(api: Api, config_id: str, body: object, token: str | None = None) -> httpx.Response:
    return post(api, f"/{config_id}/run", body, token)


def test_run_now_makes_the_task_a_firing_with_that_binding_makes(api: Api) -> None:
    fired_id = create_config(api, *JOIN, task_type="JOINED", name="by-event", **TEMPLATED)
    manual_id = create_config(api, *JOIN, task_type="JOINED", name="by-hand", **TEMPLATED)
    disable(api, manual_id)  # so that only `by-event` fires on the events
    send(api, DAY_LOAD, logtype="access-log", date="2019-01-01", mrbasename="hahn")
    send(api, DAY_LOAD, logtype="redir-log", date="2019-01-01", mrbasename="hahn")
    react(api.store)
    enable(api, manual_id)

    response = run(api, manual_id, {"params": {"date": "2019-01-01", "mrbasename": "hahn"}})
    assert response.status_code == 200, response.text
    made = response.json()
    assert made["result"]["id"] == made["id"]
    by_event, by_hand = task_rows(api.store)
    copied = ("type", "params", "author", "priority", "semaphores", "kill_timeout", "max_retries")
    assert {k: by_hand[k] for k in copied} == {k: by_event[k] for k in copied}
    assert by_hand["params"] == {
        "date": "2019-01-01",
        "mrbasename": "hahn",
        "day": "2019-01-01",
        "where": "hahn",
        "fixed": 7,
    }
    assert by_hand["id"] == made["id"] and by_hand["event_seq"] is None
    assert by_hand["config_seq"] is not None and by_hand["status"] == "ENQUEUED"

    detail = api.client.get(f"/api/v1/tasks/{made['id']}").json()["result"]
    assert detail["trigger"] == {
        "kind": "manual",
        "by": "robot-crypta",
        "binding": {"date": "2019-01-01", "mrbasename": "hahn"},
        "event_id": None,
        "dep_event_ids": [],
        "backfill_id": None,
    }
    assert detail["config_id"] == manual_id
    # the task the event fired says so, as it always did
    fired = api.client.get(f"/api/v1/tasks/{by_event['id']}").json()["result"]
    assert fired["trigger"]["kind"] == "event" and fired["trigger"]["by"] is None
    assert fired["config_id"] == fired_id


def test_a_run_needs_every_free_param_and_refuses_others_naming_them(api: Api) -> None:
    config_id = create_config(api, *JOIN, task_type="JOINED", name="strict-run")
    body = assert_error(run(api, config_id, {"params": {"date": "2019-01-01"}}), 400, "mrbasename")
    assert body["field"] == "params.mrbasename"
    assert_error(run(api, config_id, {}), 400, "'date', 'mrbasename'")
    body = assert_error(
        run(api, config_id, {"params": {"date": "d", "mrbasename": "m", "logtype": "x"}}),
        400,
        "logtype",
        "does not bind",
    )
    assert body["field"] == "params.logtype"
    assert_error(run(api, config_id, {"params": {"date": [1], "mrbasename": "m"}}), 400, "date")
    assert_error(run(api, config_id, {"params": "date=1"}), 400, "params")
    assert_error(run(api, config_id, {"params": {}, "dry_run": "yes"}), 400, "dry_run")
    assert_error(run(api, config_id, {"parms": {}}), 400, "parms")
    assert task_rows(api.store) == []


def test_a_dry_run_answers_the_task_and_writes_nothing(api: Api) -> None:
    config_id = create_config(api, *JOIN, task_type="JOINED", name="dry", **TEMPLATED)
    body = {"params": {"date": "2019-01-01", "mrbasename": "hahn"}, "dry_run": True}
    response = run(api, config_id, body)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["dry_run"] is True
    task = result["task"]
    assert task["type"] == "JOINED" and task["priority"] == 42 and task["max_retries"] == 3
    assert task["params"]["day"] == "2019-01-01" and task["params"]["where"] == "hahn"
    assert task["semaphores"] == [{"name": "run-now-sem", "weight": 1}]
    assert task["trigger"] == {"kind": "manual", "by": "robot-crypta", "binding": body["params"]}
    assert task_rows(api.store) == []
    assert api.client.get("/api/v1/tasks").json()["result"] == []


def test_running_a_disabled_config_is_a_409_saying_so(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="run-paused")
    disable(api, config_id)
    for dry_run in (False, True):
        body = {"params": {"date": "2019-01-01"}, "dry_run": dry_run}
        assert_error(run(api, config_id, body), 409, "disabled", "paused")
    off = create_config(api, SOUP_DEP, name="run-off", enabled=False)
    assert_error(run(api, off, {"params": {"date": "2019-01-01"}}), 409, "disabled")
    assert task_rows(api.store) == []


def test_only_the_author_or_an_admin_may_run_a_config(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="run-guarded")
    body = {"params": {"date": "2019-01-01"}}
    other = make_token(api.store, "someone-else")
    assert_error(run(api, config_id, body, token=other), 403, "robot-crypta")
    assert_error(api.client.post(f"/api/v1/configs/{config_id}/run", json=body), 401, "token")
    assert_error(run(api, "ffffffffffffffffffffffff", body), 404, "no config")
    assert task_rows(api.store) == []
    admin = make_token(api.store, "the-admin", admin=True)
    response = run(api, config_id, body, token=admin)
    assert response.status_code == 200, response.text
    [task] = task_rows(api.store)
    assert task["author"] == "robot-crypta"  # the config's, as a firing's is
    detail = api.client.get(f"/api/v1/tasks/{task['id']}").json()["result"]
    assert detail["trigger"]["kind"] == "manual" and detail["trigger"]["by"] == "the-admin"


def test_a_template_that_reads_the_trigger_event_is_a_400_on_a_run(api: Api) -> None:
    config_id = create_config(
        api, SOUP_DEP, name="reads-event", task_params={"from": "{{ event.params.date }}"}
    )
    body = assert_error(run(api, config_id, {"params": {"date": "2019-01-01"}}), 400, "task_params")
    assert body["field"] == "task_params.from"
    assert task_rows(api.store) == []


def test_a_config_without_free_params_runs_with_no_params(api: Api) -> None:
    config_id = create_config(
        api, dep(CRYPTA, taskType=SOUP), name="no-free", task_type=HUMAN_MATCHING
    )
    assert_error(run(api, config_id, {"params": {"date": "x"}}), 400, "binds no params")
    response = run(api, config_id, {})
    assert response.status_code == 200, response.text
    [task] = task_rows(api.store)
    assert task["params"] == {} and task["type"] == HUMAN_MATCHING
