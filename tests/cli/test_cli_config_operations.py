"""`stepd configs disable|enable|run` and `stepd tasks restart ID key=value`: the real
command in a subprocess against a real server (running the example task types), on every
store. Setting up and waiting go through the Python client; what is under test goes
through the command.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LiveServer, served, server_token
from conftest import run_stepd as stepd

from stepd.client import Client

TASKS = ("--tasks", "examples/crypta_tasks.py")
FINISHED = {"SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED"}
MATCHING = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with served(request.param, tmp_path_factory.mktemp("ops"), *TASKS) as server:
        yield server


@pytest.fixture(scope="module")
def env(live_server: LiveServer) -> dict[str, str]:
    token = server_token(live_server)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**clean, "STEPD_URL": live_server.url, "STEPD_TOKEN": token}


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[Client]:
    with Client(env["STEPD_URL"], env["STEPD_TOKEN"]) as c:
        yield c


def ok(*args: str, env: dict[str, str]) -> str:
    """The command's stdout; it must succeed and say nothing on stderr."""
    result = stepd(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def unique(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}"


def finished(client: Client, task_id: int, attempts: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task = client.get_task(task_id)
        if task["status"] in FINISHED and task["attempts"] >= attempts:
            return task
        assert time.monotonic() < deadline, f"task {task_id} did not finish: {task}"
        time.sleep(0.1)


def day_config(client: Client, event_name: str) -> str:
    return client.create_config(
        {
            "name": unique("daily"),
            "event_deps": [{"name": event_name, "params": {"date": "~"}}],
            "task_type": MATCHING,
            "task_params": {"limit": "{{ 5 * 2 }}"},
            "priority": 7,
        }
    )


def test_a_paused_config_misses_the_events_of_the_pause_and_fires_after_enable(
    client: Client, env: dict[str, str]
) -> None:
    event_name = unique("dayClosed")
    config_id = day_config(client, event_name)
    said = ok("configs", "disable", config_id, env=env)
    assert said.startswith(f"disabled {config_id}")
    shown = ok("configs", "show", config_id, env=env)
    assert "paused by robot-crypta" in shown
    assert json.loads(ok("configs", "show", config_id, "--json", env=env))["disabled"] is True

    during = client.create_event(event_name, {"date": "2019-01-01"})
    deadline = time.monotonic() + 20
    while client.get_event(during)["state"] == "NEW":
        assert time.monotonic() < deadline, "the event was never evaluated"
        time.sleep(0.05)
    story = ok("story", during, env=env)
    assert "disabled" in story and "paused" in story
    assert ok("configs", "enable", config_id, env=env) == (
        f"enabled {config_id} ({client.get_config(config_id)['name']})\n"
    )
    after = client.create_event(event_name, {"date": "2019-01-02"})
    deadline = time.monotonic() + 20
    while not client.list_tasks(config_id=config_id):
        assert time.monotonic() < deadline, "the config never fired after enable"
        time.sleep(0.05)
    [task] = client.list_tasks(config_id=config_id)
    assert task["params"]["date"] == "2019-01-02"
    assert json.loads(ok("story", after, "--json", env=env))["produced_tasks"]
    history = client.config_history(config_id)
    assert [h["action"] for h in history] == ["created", "disabled", "enabled"]


def test_configs_run_plans_then_makes_the_task_and_tasks_restart_changes_its_params(
    client: Client, env: dict[str, str]
) -> None:
    config_id = day_config(client, unique("dayClosed"))
    planned = ok("configs", "run", config_id, "date=2019-01-01", "--dry-run", env=env)
    assert "would make (dry run)" in planned and MATCHING in planned
    assert "2019-01-01" in planned and "limit" in planned
    assert client.list_tasks(config_id=config_id) == []

    missing = stepd("configs", "run", config_id, env=env)
    assert missing.returncode == 1 and "'date'" in missing.stderr
    assert "Traceback" not in missing.stderr
    extra = stepd("configs", "run", config_id, "date=2019-01-01", "log=x", env=env)
    assert extra.returncode == 1 and "'log'" in extra.stderr

    output = ok("configs", "run", config_id, "date=2019-01-01", env=env)
    task_id = int(output)
    assert output == f"{task_id}\n"  # only the id, for scripts
    first = finished(client, task_id)
    assert first["status"] == "SUCCESS", first
    assert first["params"] == {"date": "2019-01-01", "limit": "10"} and first["priority"] == 7
    shown = ok("tasks", "show", str(task_id), env=env)
    assert "manual: run by robot-crypta" in shown

    said = ok("tasks", "restart", str(task_id), "date=2019-01-05", "limit:=3", env=env)
    assert said.startswith(f"restarted {task_id} (ENQUEUED) with params")
    again = finished(client, task_id, attempts=2)
    assert again["status"] == "SUCCESS", again
    assert again["params"] == {"date": "2019-01-05", "limit": 3}
    assert again["output"]["date"] == "2019-01-05"  # the new attempt ran with them
    ran = [a["params"] for a in again["attempt_history"]]
    assert ran == [{"date": "2019-01-01", "limit": "10"}, {"date": "2019-01-05", "limit": 3}]
    page = ok("tasks", "show", str(task_id), env=env)
    assert "date=2019-01-01" in page and "date=2019-01-05" in page

    bad = stepd("tasks", "restart", str(task_id), "limit=many", env=env)
    assert bad.returncode == 1 and "'limit'" in bad.stderr and "int" in bad.stderr
    assert client.get_task(task_id)["params"]["limit"] == 3  # nothing half-written
