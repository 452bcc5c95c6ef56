"""Against a real `stepd serve` with its background reactor on: an event fires a task by
itself, and the original users' curl/jq walkthrough passes (issue 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import IN_CI, LiveServer, make_token
from reactor_helpers import CRYPTA, HUMAN_MATCHING, SOUP, config_body, dep

from stepd.store import open_store

# shared/ lies beside the repository (in CI too: a copy beside the clone).
WALKTHROUGH = Path(__file__).resolve().parents[3] / "shared" / "scenarios" / "seed-walkthrough.sh"
if not WALKTHROUGH.exists():
    WALKTHROUGH = Path("/work/shared/scenarios/seed-walkthrough.sh")
STORY_TIMEOUT_SECONDS = 5.0


def token_for(server: LiveServer, user: str = "robot-crypta") -> str:
    store = open_store(server.db_url)
    try:
        return make_token(store, user)
    finally:
        store.close()


def _event_fires_a_task_within_5_seconds(server: LiveServer, token: str) -> None:
    headers = {"Authorization": f"OAuth {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        body = config_body(dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date="~"),
                           name="live-after-soup", task_params={"day": "{{ date }}"})  # fmt: skip
        created = client.post("/api/v1/configs", json=body)
        assert created.status_code in (200, 201), created.text
        config_id = created.json()["id"]
        sent = client.post("/api/v1/events", json={"events": [{"name": CRYPTA, "params": {
            "taskType": SOUP, "taskStatus": "SUCCESS", "date": "2019-01-01"}}]})  # fmt: skip
        assert sent.status_code == 200, sent.text
        [event_id] = sent.json()["ids"]

        told: dict[str, Any] = {}
        deadline = time.monotonic() + STORY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            response = client.get(f"/api/v1/events/{event_id}/story")
            assert response.status_code == 200, response.text
            told = response.json()["result"]
            if told["produced_tasks"]:
                break
            time.sleep(0.05)
        # Asked again once the task exists: its firing has committed, so the event has too.
        # (Whether one story is a consistent snapshot is test_story_and_trial's business.)
        again = client.get(f"/api/v1/events/{event_id}/story").json()["result"]
    assert told.get("produced_tasks"), (
        f"no task within {STORY_TIMEOUT_SECONDS} s: {told}\n{server.log_path.read_text()}"
    )
    [task] = told["produced_tasks"]
    assert task["config_id"] == config_id
    assert task["task_type"] == HUMAN_MATCHING
    assert task["params"] == {"date": "2019-01-01", "day": "2019-01-01"}
    assert again["event"]["state"] == "PROCESSED"

    # The same firing (the task's status may move on: the server's workers run it; and
    # `waiting` is said only while no live worker runs its type, as while they start).
    def firing(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in t.items() if k not in ("status", "waiting")} for t in tasks]

    assert firing(again["produced_tasks"]) == firing(told["produced_tasks"])


def _seed_walkthrough_passes(server: LiveServer, token: str) -> None:
    env = {**os.environ, "STEPD_URL": server.url, "STEPD_TOKEN": token}
    done = subprocess.run(
        ["bash", str(WALKTHROUGH)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n"
        f"--- server log\n{server.log_path.read_text()}"
    )
    assert "ok: event" in done.stdout


# One test per backend, because starting `stepd serve` is most of its cost.
def test_live_reactor_fires_tasks_by_itself_and_the_seed_walkthrough_passes(
    live_server: LiveServer,
) -> None:
    missing = [tool for tool in ("jq", "curl") if shutil.which(tool) is None]
    token = token_for(live_server)
    _event_fires_a_task_within_5_seconds(live_server, token)
    if missing:
        if IN_CI:  # CI must run the users' own recipe: a missing tool is a failure there
            pytest.fail(f"the walkthrough needs {missing} installed")
        pytest.skip(f"the walkthrough needs {missing} installed")
    _seed_walkthrough_passes(live_server, token)
