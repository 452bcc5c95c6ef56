"""Who may do what (docs/api.md), through the API on every store: for each write another
user's token gets a 403 naming the owner and nothing changes; the owner and an admin
succeed. Today's configs rule (author or admin) is tested in tests/reactor/test_configs_api.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import assert_error, get_event, send
from conftest import Api, make_token

from stepd.reactor.reactor import Reactor
from stepd.store import runs
from stepd.timeutil import utcnow


class Users:
    """robot-crypta (the fixture's token), alice, bob and an admin."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.tokens = {
            "robot": api.token,
            "alice": make_token(api.store, "alice"),
            "bob": make_token(api.store, "bob"),
            "admin": make_token(api.store, "root", admin=True),
        }

    def call(self, who: str, method: str, url: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"OAuth {self.tokens[who]}"}
        return self.api.client.request(method, url, json=body, headers=headers)

    def ok(self, who: str, method: str, url: str, body: Any = None) -> dict[str, Any]:
        response = self.call(who, method, url, body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
def users(api: Api) -> Users:
    return Users(api)


def ev(name: str, **params: object) -> dict[str, object]:
    return {"name": name, "params": params}


# --- reject an event: its author, the owner of its event description, an admin ---------------


def test_another_users_token_cannot_reject_an_event(users: Users) -> None:
    [event_id] = send(users.api, ev("robots.own", date="2019-01-01"))
    refused = users.call("alice", "POST", "/api/v1/reject_event", {"id": event_id})
    body = assert_error(refused, 403, f"event {event_id} was sent by robot-crypta")
    assert body["error"] == "forbidden"
    assert "only its author" in body["message"] and "or an admin may reject it" in body["message"]
    assert get_event(users.api, event_id)["state"] == "NEW"  # nothing changed

    users.ok("robot", "POST", "/api/v1/reject_event", {"id": event_id})
    assert get_event(users.api, event_id)["state"] == "REJECTED"


def test_the_owner_of_the_event_description_and_an_admin_may_reject(users: Users) -> None:
    users.ok("bob", "POST", "/api/v1/event_desc", {"name": "bobs.feed", "optional_fields": ["d"]})
    first, second = send(users.api, ev("bobs.feed", d="1"), ev("bobs.feed", d="2"))
    refused = users.call("alice", "POST", "/api/v1/reject_event", {"id": first})
    assert_error(refused, 403, "sent by robot-crypta", "the owner of the event description (bob)")
    assert get_event(users.api, first)["state"] == "NEW"

    users.ok("bob", "POST", "/api/v1/reject_event", {"id": first})
    users.ok("admin", "POST", "/api/v1/reject_event", {"id": second})
    assert get_event(users.api, first)["state"] == "REJECTED"
    assert get_event(users.api, second)["state"] == "REJECTED"


def test_the_form_reject_of_the_original_client_is_refused_the_same_way(users: Users) -> None:
    [event_id] = send(users.api, ev("robots.form"))
    refused = users.api.client.post(
        "/api/v1/reject_event",
        data={"id": event_id},
        headers={"Authorization": f"OAuth {users.tokens['alice']}"},
    )
    assert_error(refused, 403, "was sent by robot-crypta")
    assert get_event(users.api, event_id)["state"] == "NEW"


# --- stop or restart a task: its author (or its config's), an admin --------------------------


def task_status(users: Users, task_id: int) -> str:
    status: str = users.ok("robot", "GET", f"/api/v1/tasks/{task_id}")["result"]["status"]
    return status


def test_another_users_token_cannot_stop_or_restart_a_task(users: Users) -> None:
    task = users.ok("robot", "POST", "/api/v1/tasks", {"type": "ECHO"})["result"]
    stop = f"/api/v1/tasks/{task['id']}/stop"
    restart = f"/api/v1/tasks/{task['id']}/restart"
    refused = users.call("alice", "POST", stop)
    assert_error(refused, 403, f"task {task['id']} belongs to robot-crypta", "may stop it")
    assert task_status(users, task["id"]) == "ENQUEUED"

    assert users.ok("robot", "POST", stop)["result"]["status"] == "STOPPED"
    refused = users.call("alice", "POST", restart)
    assert_error(refused, 403, "belongs to robot-crypta", "or an admin may restart it")
    assert task_status(users, task["id"]) == "STOPPED"

    assert users.ok("admin", "POST", restart)["result"]["status"] == "ENQUEUED"
    assert users.ok("admin", "POST", stop)["result"]["status"] == "STOPPED"
    assert users.ok("robot", "POST", restart)["result"]["status"] == "ENQUEUED"


def test_a_task_launched_by_a_config_belongs_to_the_configs_author(users: Users) -> None:
    dep = {"name": "alices.go", "params": {"date": "~"}}
    body = {"name": "alices-echo", "event_deps": [dep], "task_type": "ECHO"}
    users.ok("alice", "POST", "/api/v1/configs", body)
    users.ok("robot", "POST", "/api/v1/events", {"events": [ev("alices.go", date="2019-01-01")]})
    reactor = Reactor(users.api.store)
    while reactor.run_once() > 0:
        pass
    (task,) = users.ok("robot", "GET", "/api/v1/tasks", None)["result"]
    assert task["author"] == "alice"
    assert_error(users.call("robot", "POST", f"/api/v1/tasks/{task['id']}/stop"), 403, "alice")
    assert task_status(users, task["id"]) == "ENQUEUED"
    users.ok("alice", "POST", f"/api/v1/tasks/{task['id']}/stop")


# --- semaphores: the owner, an admin; an unowned one is claimed by one of its users ----------


def semaphore(users: Users, name: str) -> dict[str, Any]:
    found: dict[str, Any] = users.ok("robot", "GET", f"/api/v1/semaphores/{name}")["result"]
    return found


def test_another_users_token_cannot_change_or_delete_a_semaphore(users: Users) -> None:
    made = users.ok("robot", "PUT", "/api/v1/semaphores/yt-hahn", {"capacity": 2})["result"]
    assert made["owner"] == "robot-crypta" and made["auto"] is False
    refused = users.call("alice", "PUT", "/api/v1/semaphores/yt-hahn", {"capacity": 0})
    assert_error(refused, 403, "semaphore 'yt-hahn' belongs to robot-crypta", "may set it")
    refused = users.call("alice", "DELETE", "/api/v1/semaphores/yt-hahn")
    assert_error(refused, 403, "belongs to robot-crypta", "may delete it")
    assert semaphore(users, "yt-hahn")["capacity"] == 2  # nothing changed

    changed = users.ok("admin", "PUT", "/api/v1/semaphores/yt-hahn", {"capacity": 3})["result"]
    assert changed["capacity"] == 3 and changed["owner"] == "robot-crypta"
    users.ok("robot", "DELETE", "/api/v1/semaphores/yt-hahn")
    assert users.call("robot", "GET", "/api/v1/semaphores/yt-hahn").status_code == 404
    users.ok("robot", "PUT", "/api/v1/semaphores/yt-hahn", {"capacity": 1})
    users.ok("admin", "DELETE", "/api/v1/semaphores/yt-hahn")


def test_an_auto_semaphore_is_claimed_by_one_of_its_users(users: Users) -> None:
    use = {"type": "ECHO", "semaphores": [{"name": "shared-db"}]}
    users.ok("robot", "POST", "/api/v1/tasks", use)
    with users.api.store.write() as conn:  # a worker's claim makes it, on first use
        runs.claim(conn, "authz-test-worker", utcnow(), limit=1, start=False)
    auto = semaphore(users, "shared-db")
    assert (auto["auto"], auto["owner"], auto["capacity"]) == (True, None, 1)

    refused = users.call("alice", "PUT", "/api/v1/semaphores/shared-db", {"capacity": 0})
    assert_error(refused, 403, "'shared-db' has no owner yet and is used by robot-crypta")
    assert_error(users.call("alice", "DELETE", "/api/v1/semaphores/shared-db"), 403, "no owner")
    assert semaphore(users, "shared-db") == auto

    claimed = users.ok("robot", "PUT", "/api/v1/semaphores/shared-db", {"capacity": 4})["result"]
    assert (claimed["auto"], claimed["owner"], claimed["capacity"]) == (False, "robot-crypta", 4)
    refused = users.call("alice", "PUT", "/api/v1/semaphores/shared-db", {"capacity": 0})
    assert_error(refused, 403, "belongs to robot-crypta")


def test_a_semaphore_a_config_names_is_not_made_by_someone_else(users: Users) -> None:
    dep = {"name": "robots.go", "params": {"date": "~"}}
    config = {
        "name": "uses-nightly",
        "event_deps": [dep],
        "task_type": "ECHO",
        "semaphores": [{"name": "nightly"}],
    }
    users.ok("robot", "POST", "/api/v1/configs", config)
    refused = users.call("alice", "PUT", "/api/v1/semaphores/nightly", {"capacity": 0})
    assert_error(refused, 403, "'nightly' has no owner yet and is used by robot-crypta")
    assert users.call("robot", "GET", "/api/v1/semaphores/nightly").status_code == 404

    # A name nobody uses may be made by anyone, who owns it.
    mine = users.ok("alice", "PUT", "/api/v1/semaphores/alices-own", {"capacity": 1})["result"]
    assert mine["owner"] == "alice"
    made = users.ok("admin", "PUT", "/api/v1/semaphores/nightly", {"capacity": 2})["result"]
    assert made["owner"] == "root"


# --- event descriptions: the author, an admin; no squatting on a name others send ------------


def test_another_users_token_cannot_change_or_delete_an_event_description(users: Users) -> None:
    body = {"name": "bobs.day", "required_fields": ["date"]}
    users.ok("bob", "POST", "/api/v1/event_desc", body)
    refused = users.call("alice", "PUT", "/api/v1/event_desc/bobs.day", {"required_fields": []})
    assert_error(refused, 403, "event description 'bobs.day' belongs to bob", "may change it")
    refused = users.call("alice", "DELETE", "/api/v1/event_desc/bobs.day")
    assert_error(refused, 403, "belongs to bob", "may delete it")
    stored = users.ok("alice", "GET", "/api/v1/event_desc/bobs.day")["result"]
    assert stored["required_fields"] == ["date"] and stored["author"] == "bob"

    changed = users.ok("admin", "PUT", "/api/v1/event_desc/bobs.day", {"optional_fields": ["n"]})
    assert changed["result"]["optional_fields"] == ["n"]
    users.ok("bob", "PUT", "/api/v1/event_desc/bobs.day", {"description": "a day"})
    users.ok("bob", "DELETE", "/api/v1/event_desc/bobs.day")
    users.ok("bob", "POST", "/api/v1/event_desc", body)
    users.ok("admin", "DELETE", "/api/v1/event_desc/bobs.day")
    assert users.call("bob", "GET", "/api/v1/event_desc/bobs.day").status_code == 404


def test_a_name_others_send_cannot_be_described_by_someone_else(users: Users) -> None:
    send(users.api, ev("robots.daily", date="2019-01-01"))
    squat = {"name": "robots.daily", "required_fields": ["other"]}
    refused = users.call("alice", "POST", "/api/v1/event_desc", squat)
    assert_error(refused, 403, "events named 'robots.daily' are already sent by robot-crypta")
    assert users.call("alice", "GET", "/api/v1/event_desc/robots.daily").status_code == 404
    send(users.api, ev("robots.daily", date="2019-01-02"))  # still accepted

    # The only sender may describe its own name; an admin may describe anyone's.
    users.ok(
        "robot", "POST", "/api/v1/event_desc", {"name": "robots.daily", "optional_fields": ["date"]}
    )
    users.ok("robot", "DELETE", "/api/v1/event_desc/robots.daily")
    users.ok("alice", "POST", "/api/v1/events", {"events": [ev("robots.daily", date="x")]})
    refused = users.call("robot", "POST", "/api/v1/event_desc", {"name": "robots.daily"})
    assert_error(refused, 403, "already sent by alice")
    users.ok(
        "admin", "POST", "/api/v1/event_desc", {"name": "robots.daily", "optional_fields": ["date"]}
    )
