"""Helpers shared by the API contract tests (not a test module)."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Api

from stepd.settings import Settings


def post_events(api: Api, *events: dict[str, object], **extra: object) -> httpx.Response:
    """POST a batch with the fixture's token; the raw response."""
    return api.client.post(
        "/api/v1/events", json={"events": list(events), **extra}, headers=api.auth
    )


def send(api: Api, *events: dict[str, object], **extra: object) -> list[str]:
    """POST a batch that must be accepted; its ids."""
    response = post_events(api, *events, **extra)
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["ids"]
    return ids


def event(name: str = "cryptaTaskEvent", **params: object) -> dict[str, object]:
    return {"name": name, "params": params}


def list_events(api: Api, **query: object) -> list[dict[str, Any]]:
    """GET /api/v1/events with `query`; the result list (the call must succeed)."""
    response = api.client.get("/api/v1/events", params=query)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["result"]
    return result


def all_events(api: Api) -> list[dict[str, Any]]:
    """Every stored event, oldest first (the suites store far fewer than 1,000)."""
    return list_events(api, limit=1000)


def get_event(api: Api, event_id: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """`response` is a `status` JSON error {error, message} whose message has every word."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    for word in words:
        assert word.lower() in body["message"].lower(), (word, body)
    return body


def assert_nothing_stored(api: Api) -> None:
    assert all_events(api) == []


def settings_like(api: Api, **changes: object) -> Settings:
    """The settings of the `api` fixture's app (no reactor, clock or workers), changed."""
    settings: Settings = api.client.app.state.stepd.settings  # type: ignore[attr-defined]
    return settings.replace(**changes)
