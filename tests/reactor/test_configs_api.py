"""`/api/v1/configs`: create, read, replace, delete, filters, ownership, history, bad input."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Api, make_token
from reactor_helpers import (
    CRYPTA,
    HUMAN_MATCHING,
    SOUP,
    config_body,
    create_config,
    dep,
    get_config,
    post_config,
)

SOUP_DEP = dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", environment="stable", date="~")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"OAuth {token}"}


def listed(api: Api, **filters: str) -> list[dict[str, Any]]:
    response = api.client.get("/api/v1/configs", params=filters)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["result"]
    return result


def names(configs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((c["author"], c["name"]) for c in configs)


def assert_400_naming(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, (field, response.status_code, response.text)
    body = response.json()
    assert body.get("field") == field, (field, body)
    assert isinstance(body.get("message"), str) and body["message"], body


def test_config_is_created_read_back_with_defaults_and_its_author(api: Api) -> None:
    made = api.client.put("/api/v1/semaphores/yt", json={"capacity": 2}, headers=api.auth)
    assert made.status_code == 200, made.text
    config_id = create_config(
        api,
        SOUP_DEP,
        name="human-matching-after-soup",
        description="runs after the soup",
        task_params={"day": "{{ date }}"},
        action_params={"action_id": "act-1"},
        semaphores=[{"name": "yt", "weight": 2}],
        priority=5,
        kill_timeout=3600,
        max_retries=2,
        window="7d",
    )
    got = get_config(api, config_id)
    assert got["_id"] == config_id
    assert got["author"] == "robot-crypta"
    assert got["version"] == 1
    assert got["name"] == "human-matching-after-soup"
    assert got["description"] == "runs after the soup"
    assert got["enabled"] is True  # the default
    assert got["action_type"] == "SANDBOX_TASK"  # the default
    assert got["task_type"] == HUMAN_MATCHING
    assert got["event_deps"] == [SOUP_DEP]
    assert got["task_params"] == {"day": "{{ date }}"}
    assert got["action_params"] == {"action_id": "act-1"}
    assert got["semaphores"] == [{"name": "yt", "weight": 2}]
    assert (got["priority"], got["kill_timeout"], got["max_retries"]) == (5, 3600, 2)
    assert got["window"] == "7d"
    assert got["created"] and got["updated"]
    assert [c["_id"] for c in listed(api)] == [config_id]


def test_post_config_without_a_token_is_401_and_stores_nothing(api: Api) -> None:
    response = api.client.post("/api/v1/configs", json=config_body(SOUP_DEP))
    assert response.status_code == 401, response.text
    assert listed(api) == []


def test_name_is_unique_per_author_409_but_free_for_another_author(api: Api) -> None:
    create_config(api, SOUP_DEP, name="same")
    again = post_config(api, config_body(SOUP_DEP, name="same", task_type="OTHER"))
    assert again.status_code == 409, again.text
    assert again.json().get("field") == "name"

    alice = make_token(api.store, "alice")
    create_config(api, SOUP_DEP, name="same", token=alice)
    assert names(listed(api)) == [("alice", "same"), ("robot-crypta", "same")]


def test_put_renaming_onto_an_existing_name_is_409(api: Api) -> None:
    create_config(api, SOUP_DEP, name="first")
    second = create_config(api, SOUP_DEP, name="second")
    response = api.client.put(
        f"/api/v1/configs/{second}", json=config_body(SOUP_DEP, name="first"), headers=api.auth
    )
    assert response.status_code == 409, response.text
    assert get_config(api, second)["name"] == "second"


def test_another_users_put_and_delete_are_403_and_change_nothing(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="mine", priority=1)
    alice = make_token(api.store, "alice")
    url = f"/api/v1/configs/{config_id}"

    put = api.client.put(url, json=config_body(SOUP_DEP, name="mine", priority=9),
                         headers=auth(alice))  # fmt: skip
    assert put.status_code == 403, put.text
    delete = api.client.delete(url, headers=auth(alice))
    assert delete.status_code == 403, delete.text

    got = get_config(api, config_id)
    assert (got["priority"], got["version"]) == (1, 1)


def test_an_admin_may_change_and_delete_another_users_config(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="mine", priority=1)
    admin = make_token(api.store, "admin", admin=True)
    url = f"/api/v1/configs/{config_id}"

    put = api.client.put(url, json=config_body(SOUP_DEP, name="mine", priority=9),
                         headers=auth(admin))  # fmt: skip
    assert put.status_code == 200, put.text
    got = get_config(api, config_id)
    assert (got["priority"], got["version"], got["author"]) == (9, 2, "robot-crypta")

    delete = api.client.delete(url, headers=auth(admin))
    assert delete.status_code == 200, delete.text
    assert api.client.get(url).status_code == 404
    assert listed(api) == []


def test_the_author_deletes_a_config_and_it_is_gone(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP)
    url = f"/api/v1/configs/{config_id}"
    response = api.client.delete(url, headers=api.auth)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == config_id
    assert api.client.get(url).status_code == 404
    assert api.client.delete(url, headers=api.auth).status_code == 404


def test_unknown_config_id_is_404_for_get_put_delete_and_history(api: Api) -> None:
    for config_id in ("0" * 23 + "9", "not-an-id"):
        url = f"/api/v1/configs/{config_id}"
        assert api.client.get(url).status_code == 404
        assert api.client.get(f"{url}/history").status_code == 404
        put = api.client.put(url, json=config_body(SOUP_DEP), headers=api.auth)
        assert put.status_code == 404, put.text
        assert api.client.delete(url, headers=api.auth).status_code == 404


def test_config_id_beyond_the_store_range_is_404_not_500(api: Api) -> None:
    url = f"/api/v1/configs/{'f' * 24}"  # 24 hex digits, like an id, past a 64-bit sequence
    assert api.client.get(url).status_code == 404
    assert api.client.put(url, json=config_body(SOUP_DEP), headers=api.auth).status_code == 404
    assert api.client.delete(url, headers=api.auth).status_code == 404


def test_every_change_bumps_the_version_and_the_history_says_who_and_what(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="h", priority=0)
    url = f"/api/v1/configs/{config_id}"
    admin = make_token(api.store, "admin", admin=True)

    r1 = api.client.put(url, json=config_body(SOUP_DEP, name="h", priority=5), headers=api.auth)
    assert r1.status_code == 200, r1.text
    assert r1.json()["result"]["version"] == 2
    r2 = api.client.put(url, json=config_body(SOUP_DEP, name="h", priority=5, enabled=False),
                        headers=auth(admin))  # fmt: skip
    assert r2.status_code == 200, r2.text
    assert get_config(api, config_id)["version"] == 3

    response = api.client.get(f"{url}/history")
    assert response.status_code == 200, response.text
    history = response.json()["result"]
    assert [(h["version"], h["actor"], h["action"]) for h in history] == [
        (1, "robot-crypta", "created"),
        (2, "robot-crypta", "updated"),
        (3, "admin", "updated"),
    ]
    assert history[1]["change"] == {"priority": {"old": 0, "new": 5}}
    assert history[2]["change"] == {"enabled": {"old": True, "new": False}}
    assert all(h["at"] for h in history)


def test_put_with_the_body_of_a_get_is_accepted(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="round-trip", action_params={"action_id": "a"})
    url = f"/api/v1/configs/{config_id}"
    body = get_config(api, config_id)
    assert {"_id", "author", "version", "created", "updated"} <= set(body)

    same = api.client.put(url, json=body, headers=api.auth)
    assert same.status_code == 200, same.text
    assert get_config(api, config_id)["version"] == 1  # nothing changed, nothing bumped

    changed = api.client.put(url, json={**body, "priority": 3}, headers=api.auth)
    assert changed.status_code == 200, changed.text
    got = get_config(api, config_id)
    assert (got["priority"], got["version"], got["_id"]) == (3, 2, config_id)
    assert got["action_params"] == {"action_id": "a"}


def test_configs_are_filtered_by_nested_fields_and_an_unknown_filter_is_400(api: Api) -> None:
    assert_400_naming(api.client.get("/api/v1/configs", params={"colour": "red"}), "colour")
    alice = make_token(api.store, "alice")
    create_config(api, SOUP_DEP, name="a", task_type="T1", action_params={"action_id": "act-1"})
    create_config(api, dep("event1"), dep("event2", date="~"), name="b", task_type="T2",
                  action_params={"action_id": "act-2"})  # fmt: skip
    create_config(api, dep("event2"), name="a", task_type="T1", token=alice)
    mine, hers = ("robot-crypta", "a"), ("alice", "a")

    assert names(listed(api, author="robot-crypta")) == [mine, ("robot-crypta", "b")]
    assert names(listed(api, author="alice")) == [hers]
    assert names(listed(api, task_type="T1")) == [hers, mine]
    assert names(listed(api, name="a")) == [hers, mine]
    assert names(listed(api, name="a", author="alice")) == [hers]
    assert names(listed(api, action_params__action_id="act-2")) == [("robot-crypta", "b")]
    assert names(listed(api, event_deps__name="event2")) == [hers, ("robot-crypta", "b")]
    assert names(listed(api, event_deps__name=CRYPTA)) == [mine]
    assert listed(api, task_type="NOPE") == []


def test_each_bad_config_is_400_naming_the_field_and_stores_nothing(api: Api) -> None:
    response = api.client.post(
        "/api/v1/event_desc",
        json={"name": CRYPTA, "description": "", "required_fields": ["taskType", "taskStatus"],
              "optional_fields": ["environment", "date"], "public": True, "list_in_idm": False},
        headers=api.auth,
    )  # fmt: skip
    assert response.status_code in (200, 201), response.text
    cases: list[tuple[str, dict[str, object], str]] = [
        ("no deps at all", {"task_type": "T"}, "event_deps"),
        ("an empty deps list", config_body(), "event_deps"),
        ("a dep with no name", config_body({"params": {"a": "b"}}), "event_deps[0].name"),
        ("an unknown operator",
         config_body(dep("event1", date={"between": ["a", "b"]})), "event_deps[0].params.date"),
        ("an invalid regex",
         config_body(dep("e0"), dep("event1", date={"regex": "(["})), "event_deps[1].params.date"),
        ("a template that does not parse",
         config_body(SOUP_DEP, task_params={"day": "{{ date "}), "task_params.day"),
        ("an unknown field", {**config_body(SOUP_DEP), "colour": "red"}, "colour"),
        ("a window that is not a duration", config_body(SOUP_DEP, window="7 days"), "window"),
        ("a dep param the event description does not know",
         config_body(dep(CRYPTA, taskType=SOUP, day="~")), "event_deps[0].params.day"),
    ]  # fmt: skip
    for label, body, field in cases:
        response = post_config(api, body)
        assert response.status_code == 400, (label, response.status_code, response.text)
        assert response.json().get("field") == field, (label, response.json())
    assert listed(api) == []
    # POST /configs/validate refuses the same configs for the same reasons, storing nothing.
    heavy = config_body(SOUP_DEP, name="heavy", semaphores=[{"name": "never-made", "weight": 2}])
    good = config_body(SOUP_DEP, name="good")
    bodies = [body for _, body, _ in cases] + [heavy, good]
    response = api.client.post("/api/v1/configs/validate", json={"configs": bodies})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert [(r["index"], r["ok"], r.get("field")) for r in result] == [
        *[(i, False, field) for i, (_, _, field) in enumerate(cases)],
        (len(cases), False, "semaphores"),
        (len(cases) + 1, True, None),
    ]
    assert all(r["error"] == "invalid_input" and r["message"] for r in result[:-1])
    assert listed(api) == []


def test_validate_needs_a_list_of_configs(api: Api) -> None:
    for body in ({}, {"configs": {"name": "x"}}, {"configs": [{}] * 1001}):
        response = api.client.post("/api/v1/configs/validate", json=body)
        assert_400_naming(response, "configs")


def test_bad_put_is_400_and_leaves_the_config_as_it_was(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="keep", window="7d")
    response = api.client.put(
        f"/api/v1/configs/{config_id}",
        json=config_body(SOUP_DEP, name="keep", window="7 days"),
        headers=api.auth,
    )
    assert_400_naming(response, "window")
    got = get_config(api, config_id)
    assert (got["window"], got["version"]) == ("7d", 1)


def test_a_semaphore_weight_no_capacity_could_grant_is_refused_naming_it(api: Api) -> None:
    body = {
        "name": "heavy",
        "event_deps": [{"name": "e", "params": {}}],
        "task_type": "T",
        "semaphores": [{"name": "never-made", "weight": 2}],
    }
    response = api.client.post("/api/v1/configs", json=body, headers=api.auth)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "semaphores"
    assert "never-made" in response.json()["message"]
    assert api.client.get("/api/v1/configs").json()["result"] == []
