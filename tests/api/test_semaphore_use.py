"""`GET /api/v1/semaphores/{name}` names the tasks holding a semaphore and those waiting for
it, on every store; the list keeps its old shape."""

from __future__ import annotations

from typing import Any

from conftest import Api

from stepd.store import runs
from stepd.timeutil import utcnow


def _task(api: Api, semaphore: str, priority: int = 0, type_: str = "HOLD_TASK") -> int:
    response = api.client.post(
        "/api/v1/tasks",
        json={"type": type_, "priority": priority, "semaphores": [{"name": semaphore}]},
        headers=api.auth,
    )
    assert response.status_code == 200, response.text
    task_id: int = response.json()["result"]["id"]
    return task_id


def _claim(api: Api, limit: int = 10) -> list[int]:
    with api.store.write() as conn:  # a worker's claim: the holders hold, the rest wait
        return [c.id for c in runs.claim(conn, "use-test-worker", utcnow(), limit=limit)]


def _get(api: Api, name: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/semaphores/{name}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_a_semaphore_names_its_holders_and_its_waiters_in_the_order_they_get_room(
    api: Api,
) -> None:
    put = api.client.put("/api/v1/semaphores/yt-use", json={"capacity": 1}, headers=api.auth)
    assert put.status_code == 200, put.text
    holder = _task(api, "yt-use", type_="HOLDER")
    assert _claim(api) == [holder]
    older = _task(api, "yt-use")
    urgent = _task(api, "yt-use", priority=5, type_="URGENT")
    assert _claim(api) == []  # both wait for room

    body = _get(api, "yt-use")
    assert body["used"] == 1 and body["holder_count"] == 1
    (held,) = body["holders"]
    assert held["task_id"] == holder and held["type"] == "HOLDER"
    assert held["status"] == "EXECUTING" and held["weight"] == 1 and held["since"]
    assert body["waiting_count"] == 2 and body["waiting_at_least"] is False
    assert [w["task_id"] for w in body["waiting"]] == [urgent, older]  # priority, then age
    assert body["waiting"][0]["type"] == "URGENT" and body["waiting"][0]["priority"] == 5


def test_a_semaphore_nobody_uses_has_empty_holders_and_waiters(api: Api) -> None:
    api.client.put("/api/v1/semaphores/idle-use", json={"capacity": 3}, headers=api.auth)
    body = _get(api, "idle-use")
    assert body["holders"] == [] and body["holder_count"] == 0
    assert body["waiting"] == [] and body["waiting_count"] == 0


def test_the_holders_of_one_semaphore_are_not_anothers(api: Api) -> None:
    for name in ("use-a", "use-b"):
        api.client.put(f"/api/v1/semaphores/{name}", json={"capacity": 1}, headers=api.auth)
    a = _task(api, "use-a")
    _claim(api)
    b_waits = _task(api, "use-a")
    _claim(api)
    assert _get(api, "use-b")["holders"] == [] and _get(api, "use-b")["waiting"] == []
    assert [w["task_id"] for w in _get(api, "use-a")["waiting"]] == [b_waits]
    assert [h["task_id"] for h in _get(api, "use-a")["holders"]] == [a]
    # The list keeps its shape: no holders there.
    every = api.client.get("/api/v1/semaphores").json()["result"]
    assert all("holders" not in s for s in every)


def test_an_unknown_semaphore_is_a_404_naming_it(api: Api) -> None:
    response = api.client.get("/api/v1/semaphores/no-such-use")
    assert response.status_code == 404 and "no-such-use" in response.text
