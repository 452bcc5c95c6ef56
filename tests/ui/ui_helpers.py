"""Helpers of the UI tests (not a test module): configs, events and a worker's part, by hand."""

from __future__ import annotations

from typing import Any

from conftest import Api

from stepd.domain.tasks import TaskStatus
from stepd.reactor.reactor import Reactor
from stepd.store import runs
from stepd.store.engine import Store
from stepd.timeutil import utcnow

CRYPTA = "cryptaTaskEvent"
SOUP = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"
HUMAN_MATCHING = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"


def create_config(
    api: Api, name: str, *deps: dict[str, Any], task_type: str = HUMAN_MATCHING, **fields: object
) -> str:
    body = {"name": name, "event_deps": list(deps), "task_type": task_type, **fields}
    response = api.client.post("/api/v1/configs", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    config_id: str = response.json()["id"]
    return config_id


def send(api: Api, name: str, **params: object) -> str:
    response = api.client.post(
        "/api/v1/events", json={"events": [{"name": name, "params": params}]}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    event_id: str = response.json()["ids"][0]
    return event_id


def react(store: Store) -> None:
    """Evaluate every NEW event, as the background reactor would."""
    reactor = Reactor(store)
    while reactor.run_once() > 0:
        pass


def run_one_task(store: Store, log: str, status: TaskStatus = TaskStatus.SUCCESS) -> int:
    """Do a worker's part for the next task: claim it, write `log`, finish it; its id."""
    with store.write() as conn:
        (claimed,) = runs.claim(conn, "ui-test-worker", utcnow(), limit=1, start=True)
        runs.append_log(conn, claimed.id, claimed.attempt, 0, log)
    with store.write() as conn:
        runs.finish(
            conn,
            claimed.id,
            claimed.attempt,
            runs.Outcome(status=status, output={"ok": status == TaskStatus.SUCCESS}),
            runs.StatusEvents(),
            utcnow(),
        )
    return claimed.id
