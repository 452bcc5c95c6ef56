"""Rerunning a task with new params (issue 11): `POST /api/v1/tasks/{id}/restart` with a
`{"params": {...}}` body, on every store and executor. The new attempt runs with the new
params; the earlier attempts keep, and show, the params they ran with; params the task
type cannot take are a 400 that changes nothing; a restart without a body is as before.
"""

from __future__ import annotations

from typing import Any

import httpx
from conftest import make_token

from stepd.store import open_store

from .helpers import RunnerServer, assert_error, unique


def restart(server: RunnerServer, task_id: int, **kwargs: Any) -> httpx.Response:
    return server.http.post(f"/api/v1/tasks/{task_id}/restart", **kwargs)


def test_a_rerun_with_new_params_runs_them_and_keeps_the_old_ones_in_the_history(
    runner_server: RunnerServer,
) -> None:
    label = unique("first")
    first = runner_server.run("T_TYPED", {"count": "3", "label": label})
    assert first["status"] == "SUCCESS" and first["output"]["double"] == 6, first

    response = restart(runner_server, first["id"], json={"params": {"count": 5, "ratio": 2}})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"id": first["id"], "status": "ENQUEUED"}
    again = runner_server.wait(first["id"])

    assert again["status"] == "SUCCESS", again
    assert again["params"] == {"count": 5, "label": label, "ratio": 2}
    assert again["output"]["double"] == 10 and again["output"]["ratio"] == 2.0
    assert [(a["attempt"], a["params"]) for a in again["attempt_history"]] == [
        (1, {"count": "3", "label": label}),
        (2, {"count": 5, "label": label, "ratio": 2}),
    ]
    # Without a body (or with the form body an old client may send) it reruns as it is.
    plain = restart(
        runner_server,
        first["id"],
        content=b"x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert plain.status_code == 200, plain.text
    third = runner_server.wait(first["id"])
    assert third["attempts"] == 3 and third["params"] == again["params"]
    assert third["attempt_history"][0]["params"] == {"count": "3", "label": label}


def test_rerun_params_the_task_type_cannot_take_are_a_400_that_changes_nothing(
    runner_server: RunnerServer,
) -> None:
    task = runner_server.run("T_TYPED", {"count": 1, "label": unique("l")})
    task_id = task["id"]
    body = {"params": {"count": "many"}}
    error = restart(runner_server, task_id, json=body)
    assert_error(error, 400, "'count'", "int")
    assert error.json()["field"] == "params.count"
    assert_error(restart(runner_server, task_id, json={"params": [1]}), 400, "params")
    assert_error(restart(runner_server, task_id, json={"parms": {}}), 400, "parms")
    assert_error(restart(runner_server, task_id, json=[1]), 400, "object")
    assert_error(
        restart(
            runner_server, task_id, content=b"{nope", headers={"Content-Type": "application/json"}
        ),
        400,
    )
    other = open_store(runner_server.db_url, migrate=False)
    try:
        stranger = make_token(other, unique("stranger"))
    finally:
        other.close()
    denied = runner_server.http.post(
        f"/api/v1/tasks/{task_id}/restart",
        json={"params": {"count": 2}},
        headers={"Authorization": f"OAuth {stranger}"},
    )
    assert_error(denied, 403)
    after = runner_server.task(task_id)
    assert after["status"] == "SUCCESS" and after["attempts"] == 1
    assert after["params"] == task["params"]

    # A param the type does not declare is passed on, with a warning (it may take **kwargs).
    warned = restart(runner_server, task_id, json={"params": {"colour": "red"}})
    assert warned.status_code == 200, warned.text
    assert "colour" in warned.json()["warnings"][0]
    assert runner_server.wait(task_id)["params"]["colour"] == "red"
