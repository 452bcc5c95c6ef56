"""The deployment's settings (issue 10): what every process must agree on is stored once.

The failure this fixes: a server started with `--task-event-name cryptaTaskEvent` and a
worker started without it, whose tasks reported `taskEvent`, so the team's configs never
fired. Now the first process told records the name; every worker reports it; a process
started with a contradicting flag refuses to start, naming the stored value."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import assert_error
from conftest import Api, make_token, run_stepd, served, server_token

TASKS = "examples/crypta_tasks.py"


def _wait_for(check: object, what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_started_without_the_flag_reports_the_deployments_name(
    tmp_path: Path,
) -> None:
    with served(
        "sqlite", tmp_path, "--executor", "none", "--no-clock",
        "--task-event-name", "cryptaTaskEvent",
    ) as server:  # fmt: skip
        contradicting = run_stepd(
            "worker", "--db", server.db_url, "--tasks", TASKS, "--task-event-name", "taskEvent"
        )
        assert contradicting.returncode == 1
        assert (
            "--task-event-name 'taskEvent' contradicts the deployment's status_event_name "
            "'cryptaTaskEvent'" in contradicting.stderr
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "stepd", "worker", "--db", server.db_url, "--tasks", TASKS,
             "-c", "1"],
            stdout=(tmp_path / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            auth = {"Authorization": f"OAuth {server_token(server)}"}
            with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
                shown = client.get("/api/v1/settings").json()["result"]
                name = next(s for s in shown if s["key"] == "status_event_name")
                assert name["value"] == "cryptaTaskEvent" and name["stored"] is True
                task = client.post(
                    "/api/v1/tasks", json={"type": "ECHO_DATE", "params": {"date": "2019-01-01"}}
                ).json()["result"]

                def reported() -> list[object]:
                    return client.get(
                        "/api/v1/events",
                        params={"name": "cryptaTaskEvent", "params__taskType": "ECHO_DATE"},
                    ).json()["result"]

                (event,) = _wait_for(reported, "the status event")  # type: ignore[misc]
                assert event["params"]["taskStatus"] == "SUCCESS"
                assert client.get(f"/api/v1/tasks/{task['id']}").json()["result"]["status"] == (
                    "SUCCESS"
                )
        finally:
            worker.terminate()
            worker.wait(30)


def test_settings_are_shown_to_readers_and_changed_by_admins_at_once(api: Api) -> None:
    shown = api.client.get("/api/v1/settings").json()["result"]
    assert [(s["key"], s["value"], s["stored"]) for s in shown] == [
        ("status_event_name", "taskEvent", False),
        ("environment", "stable", False),
        ("heartbeat_timeout_seconds", 30.0, False),
        ("retention", "off", False),
        ("task_retention", "as retention", False),
        ("log_retention", "as task_retention", False),
    ]
    body = {"status_event_name": "cryptaTaskEvent", "heartbeat_timeout_seconds": 60}
    assert_error(api.client.put("/api/v1/settings", json=body), 401)
    refused = api.client.put("/api/v1/settings", json=body, headers=api.auth)
    assert_error(refused, 403, "only an admin")
    admin = {"Authorization": f"OAuth {make_token(api.store, 'alice', admin=True)}"}
    for bad, words in (
        ({"colour": "red"}, "unknown setting 'colour'"),
        ({"status_event_name": "a b"}, "not a valid event name"),
        ({"status_event_name": "ok", "heartbeat_timeout_seconds": 0}, "from 1 to 86400"),
        ({"heartbeat_timeout_seconds": "soon"}, "a number of seconds"),
        ({"heartbeat_timeout_seconds": 10**400}, "a number of seconds"),
        ({"heartbeat_timeout_seconds": "nan"}, "from 1 to 86400"),
        ({"environment": "\n\t"}, "a non-empty string"),
        ({"environment": "line\nbreak"}, "control characters"),
        ({"environment": {"deep": [[[]]]}}, "a non-empty string"),
        ({}, "send an object of the settings"),
        ({"retention": "30m"}, "retention must be at least 1h"),
        ({"status_event_name": "ok", "task_retention": "59m"}, "task_retention must be at"),
        ({"log_retention": "soon"}, "log_retention must be a positive duration"),
        ({"retention": 7}, "retention must be at least 1h"),
    ):
        refused = api.client.put("/api/v1/settings", json=bad, headers=admin)
        error = assert_error(refused, 400, words)
        if "retention" in words:
            assert error["field"] == words.split()[0], error  # the retention it names
    # Nothing half-written: the refused bodies changed nothing.
    assert not any(s["stored"] for s in api.client.get("/api/v1/settings").json()["result"])
    changed = api.client.put("/api/v1/settings", json=body, headers=admin)
    assert changed.status_code == 200, changed.text
    result = {s["key"]: s for s in changed.json()["result"]}
    assert (result["status_event_name"]["value"], result["status_event_name"]["updated_by"]) == (
        "cryptaTaskEvent", "alice",
    )  # fmt: skip
    assert result["heartbeat_timeout_seconds"]["value"] == 60.0
    assert result["environment"]["stored"] is False


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_task_that_ends_reports_the_stored_name_without_a_restart(api: Api) -> None:
    # In-process: the store's value is read in the transaction that reports the status.
    from stepd.domain.lifecycle import StatusEvents
    from stepd.domain.tasks import TaskStatus
    from stepd.store import deployment, runs
    from stepd.store import tasks as task_store
    from stepd.timeutil import utcnow

    with api.store.write() as conn:
        task_id = task_store.insert_task(conn, task_store.NewTask(type="T", params={}, author=None))
        (claimed,) = runs.claim(conn, "w", utcnow(), limit=1, start=True)
        deployment.write(conn, "status_event_name", "cryptaTaskEvent", "test", utcnow())
    with api.store.write() as conn:
        outcome = runs.Outcome(status=TaskStatus.SUCCESS)
        runs.finish(conn, task_id, claimed.attempt, outcome, StatusEvents(), utcnow())
    events = api.client.get("/api/v1/events", params={"name": "cryptaTaskEvent"}).json()
    assert [e["params"]["taskType"] for e in events["result"]] == ["T"]
    assert api.client.get("/api/v1/events", params={"name": "taskEvent"}).json()["result"] == []
