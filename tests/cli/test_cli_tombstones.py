"""History that never forgets (issue 11): a config deleted by `stepd configs sync --prune`
stays named in the stories of the events it fired, in its tasks and at its own address;
the real command in a subprocess against a real server, on every store."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, served, server_token
from conftest import run_stepd as stepd

from stepd.client import Client

TASKS = ("--tasks", "examples/crypta_tasks.py")
SOUP = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"
MATCHING = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"
MODULE = f"""\
from stepd.configs_as_code import FREE, config, dep

CONFIGS = [
    config(
        "matching-after-soup",
        task_type={MATCHING!r},
        deps=[dep("cryptaTaskEvent", taskType={SOUP!r}, taskStatus="SUCCESS", date=FREE)],
    ),
]
"""
EMPTY = "CONFIGS = []\n"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    flags = (*TASKS, "--task-event-name", "cryptaTaskEvent")
    with served(request.param, tmp_path_factory.mktemp("tomb"), *flags) as server:
        yield server


@pytest.fixture
def env(live_server: LiveServer) -> dict[str, str]:
    # A user of this test alone: configs as code are managed per author.
    user = f"robot-{uuid.uuid4().hex[:8]}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**clean, "STEPD_URL": live_server.url, "STEPD_TOKEN": server_token(live_server, user)}


def ok(*args: str, env: dict[str, str]) -> str:
    result = stepd(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sync(tmp_path: Path, text: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    path = tmp_path / f"configs_{uuid.uuid4().hex[:6]}.py"
    path.write_text(text)
    answer: dict[str, Any] = json.loads(ok("configs", "sync", str(path), "--json", *args, env=env))
    return answer


def fired_task(client: Client, event_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        told = client.story(event_id)
        if told["produced_tasks"]:
            task: dict[str, Any] = told["produced_tasks"][0]
            return task
        time.sleep(0.1)
    raise AssertionError(f"event {event_id} fired nothing in 30 s")


def test_a_config_pruned_by_sync_still_names_itself_in_old_stories_and_tasks(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with Client(env["STEPD_URL"], env["STEPD_TOKEN"]) as client:
        user = str(client.whoami()["user"])
        created = sync(tmp_path, MODULE, env=env)
        config_id = str(created["configs"][0]["id"])
        params = {"taskType": SOUP, "taskStatus": "SUCCESS", "date": "2019-01-01"}
        event_id = client.create_event("cryptaTaskEvent", params)
        task = fired_task(client, event_id)

        pruned = sync(tmp_path, EMPTY, "--prune", env=env)
        assert [(c["id"], c["action"]) for c in pruned["configs"]] == [(config_id, "deleted")]

        told = json.loads(ok("story", event_id, "--json", env=env))
        [produced] = told["produced_tasks"]
        name = "matching-after-soup"
        assert (produced["config_id"], produced["config_name"]) == (config_id, name)
        [entry] = told["configs"]
        assert entry["config_id"] == config_id
        assert (entry["config_name"], entry["author"], entry["outcome"]) == (
            "matching-after-soup", user, "fired",
        )  # fmt: skip
        assert entry["deleted"] is True
        assert entry["fired"][0]["config_version"] == 1
        assert entry["fired"][0]["task_id"] == task["sandbox_task_id"]
        # (--depth 0: the event its task emitted has no config, and says so)
        tree = ok("story", event_id, "--depth", "0", env=env)
        assert "no config depends on" not in tree
        assert "matching-after-soup" in tree and "deleted" in tree

        shown = client.get_task(task["sandbox_task_id"])
        assert shown["config"] == {
            "id": config_id, "name": "matching-after-soup", "author": user,
            "version": 1, "deleted": True,
        }  # fmt: skip

        # Its own address answers 404, saying it was deleted and what it was.
        answer = httpx.get(f"{env['STEPD_URL']}/api/v1/configs/{config_id}")
        assert answer.status_code == 404
        body = answer.json()
        assert body["deleted"] is True
        assert (body["result"]["name"], body["result"]["author"]) == ("matching-after-soup", user)
        assert body["result"]["version"] == 1 and body["result"]["deleted_by"] == user
        assert config_id not in {c["_id"] for c in client.list_configs(author=user)}
        gone = client.list_configs(author=user, deleted=1)
        assert [c["_id"] for c in gone] == [config_id]
        listed = ok("configs", "list", "--deleted", "--author", user, env=env)
        assert config_id in listed and f"deleted by {user}" in listed
        assert "no configs match" in ok("configs", "list", "--author", user, env=env)

        # Configs as code: the same name again is a new config, which fires as usual.
        again = sync(tmp_path, MODULE, env=env)
        assert again["configs"][0]["action"] == "created"
        new_id = str(again["configs"][0]["id"])
        assert new_id != config_id
        second = client.create_event("cryptaTaskEvent", {**params, "date": "2019-01-02"})
        assert fired_task(client, second)["config_id"] == new_id
        told_again = client.story(second)
        assert [c["config_id"] for c in told_again["configs"]] == [new_id]
