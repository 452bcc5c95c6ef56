"""Helpers shared by the reactor contract tests (issue 3); not a test module.

Every helper goes through the HTTP API (the `api` fixture's TestClient) except
where a test must look under it: the reactor is driven explicitly with
`Reactor(store).run_once()`, and tasks/triggers are counted in the tables,
because the reactor is what makes them and no API lists them all.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
from conftest import Api
from sqlalchemy import func, select, update

from stepd.domain.events import EventState, parse_event_id
from stepd.reactor.reactor import Reactor
from stepd.store.engine import Store
from stepd.store.schema import events, tasks, triggers

CRYPTA = "cryptaTaskEvent"
SOUP = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"
HUMAN_MATCHING = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"


def dep(name: str, **params: object) -> dict[str, object]:
    return {"name": name, "params": params}


def config_body(
    *deps: dict[str, object], task_type: str = HUMAN_MATCHING, **fields: object
) -> dict[str, object]:
    return {"event_deps": list(deps), "task_type": task_type, **fields}


def post_config(api: Api, body: dict[str, object], token: str | None = None) -> httpx.Response:
    headers = api.auth if token is None else {"Authorization": f"OAuth {token}"}
    return api.client.post("/api/v1/configs", json=body, headers=headers)


def create_config(
    api: Api, *deps: dict[str, object], token: str | None = None, **fields: object
) -> str:
    """POST a config that must be accepted; its id."""
    response = post_config(api, config_body(*deps, **fields), token)
    assert response.status_code in (200, 201), response.text
    config_id: str = response.json()["id"]
    return config_id


def get_config(api: Api, config_id: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/configs/{config_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def send(api: Api, name: str, **params: object) -> str:
    """POST one event that must be accepted; its id."""
    response = api.client.post(
        "/api/v1/events", json={"events": [{"name": name, "params": params}]}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["ids"]
    assert len(ids) == 1, ids
    return ids[0]


def react(store: Store) -> int:
    """Evaluate every NEW event, as the background reactor would; how many were evaluated."""
    total = 0
    reactor = Reactor(store)
    while (n := reactor.run_once()) > 0:
        total += n
    return total


def story(api: Api, event_id: str) -> dict[str, Any]:
    """`GET /api/v1/events/<id>/story`: the story's result."""
    response = api.client.get(f"/api/v1/events/{event_id}/story")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def config_entry(told: dict[str, Any], config_id: str) -> dict[str, Any]:
    """The story's entry for one config (exactly one must be there)."""
    found = [c for c in told["configs"] if c["config_id"] == config_id]
    assert len(found) == 1, (config_id, told["configs"])
    return found[0]


def task_rows(store: Store) -> list[dict[str, Any]]:
    """Every task row, oldest first, with params decoded."""
    with store.read() as conn:
        rows = conn.execute(select(tasks).order_by(tasks.c.id)).all()
    return [{**r._mapping, "params": json.loads(r.params)} for r in rows]


def trigger_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(triggers)).scalar_one())


def event_state(store: Store, event_id: str) -> str:
    with store.read() as conn:
        state: str = conn.execute(
            select(events.c.state).where(events.c.seq == parse_event_id(event_id))
        ).scalar_one()
    return state


def set_event_state(store: Store, event_id: str, state: EventState) -> None:
    """Rewrite an event's state directly in the table (what a crash or an operator leaves)."""
    with store.write() as conn:
        conn.execute(
            update(events).where(events.c.seq == parse_event_id(event_id)).values(state=state.value)
        )


def set_event_created(store: Store, event_id: str, created: datetime) -> None:
    """Back-date an event directly in the table (the API always stamps `now`)."""
    with store.write() as conn:
        conn.execute(
            update(events).where(events.c.seq == parse_event_id(event_id)).values(created=created)
        )
