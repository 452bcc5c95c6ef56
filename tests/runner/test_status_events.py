"""A finished task reports itself as an event, so configs on that event chain tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .helpers import RunnerServer, dep, unique, wait_until, when


def test_status_events_chain_a_then_b_then_c_for_the_same_date_and_the_story_shows_it(
    runner_server: RunnerServer,
) -> None:
    start = unique("chainStart")
    date = unique("2030-01-01")
    config_a = runner_server.create_config("T_CHAIN_A", dep(start, date="~"))
    config_b = runner_server.create_config(
        "T_CHAIN_B", dep("taskEvent", taskType="T_CHAIN_A", taskStatus="SUCCESS", date="~")
    )
    config_c = runner_server.create_config(
        "T_CHAIN_C", dep("taskEvent", taskType="T_CHAIN_B", taskStatus="SUCCESS", date="~")
    )

    event_id = runner_server.send_event(start, date=date)

    def one_task(task_type: str) -> dict[str, Any] | None:
        found = [t for t in runner_server.tasks(type=task_type) if t["params"].get("date") == date]
        assert len(found) <= 1, found
        return found[0] if found and found[0]["status"] == "SUCCESS" else None

    c = wait_until(lambda: one_task("T_CHAIN_C"), timeout=30, what="task C to succeed")
    a, b = one_task("T_CHAIN_A"), one_task("T_CHAIN_B")
    assert a is not None and b is not None
    for task, config in ((a, config_a), (b, config_b), (c, config_c)):
        assert task["params"] == {"date": date}, task
        assert task["status"] == "SUCCESS", task
        assert task["config_id"] == config, task
    assert a["event_id"] == event_id
    assert when(a["finished"]) <= when(b["started"])
    assert when(b["finished"]) <= when(c["started"])

    # A's status event: the default name and environment, A's params, what it was.
    [a_event_id] = runner_server.task(a["id"])["emitted_event_ids"]
    a_event = runner_server.event(a_event_id)
    assert a_event["name"] == "taskEvent"
    assert a_event["params"] == {
        "date": date,
        "taskType": "T_CHAIN_A",
        "taskStatus": "SUCCESS",
        "taskId": str(a["id"]),
        "environment": "stable",
    }
    assert b["event_id"] == a_event_id

    told = runner_server.story(event_id)
    assert [t["sandbox_task_id"] for t in told["produced_tasks"]] == [a["id"]]
    [after_a] = told["chain"]
    assert after_a["task_id"] == a["id"]
    assert after_a["event"]["_id"] == a_event_id
    assert [t["sandbox_task_id"] for t in after_a["produced_tasks"]] == [b["id"]]
    [after_b] = after_a["chain"]
    assert after_b["task_id"] == b["id"]
    assert [(t["task_type"], t["params"]) for t in after_b["produced_tasks"]] == [
        ("T_CHAIN_C", {"date": date})
    ]
    assert [t["sandbox_task_id"] for t in after_b["produced_tasks"]] == [c["id"]]


def test_status_events_take_the_name_and_environment_the_server_was_given(
    start_runner_server: Callable[..., RunnerServer],
) -> None:
    server = start_runner_server("--task-event-name", "cryptaTaskEvent", "--environment", "testing")
    marker = unique("m")

    task = server.run("T_ECHO", {"marker": marker, "n": 3, "nested": {"a": 1}})

    assert task["status"] == "SUCCESS", task
    [emitted] = server.task(task["id"])["emitted_event_ids"]
    event = server.event(emitted)
    assert event["name"] == "cryptaTaskEvent"
    assert event["params"] == {
        "marker": marker,
        "n": 3,
        "taskType": "T_ECHO",
        "taskStatus": "SUCCESS",
        "taskId": str(task["id"]),
        "environment": "testing",
    }
    listed = server.http.get(
        "/api/v1/events", params={"name": "cryptaTaskEvent", "params__marker": marker}
    )
    assert [e["_id"] for e in listed.json()["result"]] == [emitted], listed.text
    assert server.http.get("/api/v1/events", params={"name": "taskEvent"}).json()["result"] == []
