"""Tokens: writes need one, reads are open unless the server runs with private reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import all_events, assert_error, event, get_event, send, settings_like
from conftest import Api, serving
from fastapi.testclient import TestClient

EVENTS = "/api/v1/events"


def test_post_events_without_a_valid_token_is_401_and_stores_nothing(api: Api) -> None:
    assert_error(api.client.post(EVENTS, json={"events": [event("authz")]}), 401, "token")
    for header in (
        "OAuth not-a-real-token",
        "Bearer not-a-real-token",
        f"OAuth {api.token}x",
        "OAuth",
        "Basic dXNlcjpwYXNz",
        f"Token {api.token}",
    ):
        response = api.client.post(
            EVENTS, json={"events": [event("authz")]}, headers={"Authorization": header}
        )
        assert_error(response, 401)
    assert all_events(api) == []


def test_oauth_and_bearer_tokens_are_both_accepted(api: Api) -> None:
    ids = []
    for scheme in ("OAuth", "Bearer"):
        response = api.client.post(
            EVENTS,
            json={"events": [event("authz", scheme=scheme)]},
            headers={"Authorization": f"{scheme} {api.token}"},
        )
        assert response.status_code == 200, (scheme, response.text)
        ids += response.json()["ids"]
    for event_id in ids:
        assert get_event(api, event_id)["author"] == "robot-crypta"


def test_every_write_refuses_a_missing_or_invalid_token(api: Api) -> None:
    [event_id] = send(api, event("authz"))
    desc = {"name": "authzDesc", "required_fields": ["a"]}
    response = api.client.post("/api/v1/event_desc", json=desc, headers=api.auth)
    assert response.status_code in (200, 201), response.text

    writes = [
        ("POST", EVENTS, {"events": [event("authz")]}),
        ("POST", "/api/v1/reject_event", {"id": event_id}),
        ("POST", "/api/v1/event_desc", {"name": "otherDesc"}),
        ("PUT", "/api/v1/event_desc/authzDesc", {"description": "changed"}),
        ("DELETE", "/api/v1/event_desc/authzDesc", None),
    ]
    for method, url, body in writes:
        for headers in ({}, {"Authorization": "OAuth wrong"}):
            response = api.client.request(method, url, json=body, headers=headers)
            assert_error(response, 401)
    response = api.client.post("/api/v1/reject_event", data={"id": event_id})
    assert_error(response, 401)

    assert [e["_id"] for e in all_events(api)] == [event_id]
    assert get_event(api, event_id)["state"] == "NEW"
    stored = api.client.get("/api/v1/event_desc/authzDesc").json()["result"]
    assert stored["description"] == ""
    assert_error(api.client.get("/api/v1/event_desc/otherDesc"), 404)


def reads(api: Api) -> list[str]:
    """Every read URL, over one stored event and one event description."""
    [event_id] = send(api, event("authz"))
    response = api.client.post("/api/v1/event_desc", json={"name": "authzDesc"}, headers=api.auth)
    assert response.status_code in (200, 201), response.text
    return [
        EVENTS,
        f"{EVENTS}?name=authz",
        f"{EVENTS}/{event_id}",
        "/api/v1/event_desc",
        "/api/v1/event_desc/authzDesc",
    ]


def test_reads_are_open_without_a_token_by_default(api: Api) -> None:
    for url in reads(api):
        assert api.client.get(url).status_code == 200, url


@pytest.fixture
def private(api: Api) -> Iterator[TestClient]:
    """A second app on the same store, run with private reads."""
    settings = settings_like(api, private_reads=True)
    assert settings.private_reads and not settings.reactor
    with serving(settings, api.store) as client:
        yield client


def test_private_reads_need_a_valid_token(api: Api, private: TestClient) -> None:
    bearer = {"Authorization": f"Bearer {api.token}"}
    for url in reads(api):
        assert_error(private.get(url), 401, "token")
        assert_error(private.get(url, headers={"Authorization": "OAuth wrong"}), 401)
        assert private.get(url, headers=api.auth).status_code == 200, url
        assert private.get(url, headers=bearer).status_code == 200, url
    result = private.get(EVENTS, headers=api.auth).json()["result"]
    assert [e["name"] for e in result] == ["authz"]


def test_private_reads_keep_writes_behind_a_token_and_healthz_open(
    api: Api, private: TestClient
) -> None:
    assert_error(private.post(EVENTS, json={"events": [event("authz")]}), 401)
    response = private.post(EVENTS, json={"events": [event("authz")]}, headers=api.auth)
    assert response.status_code == 200, response.text
    health = private.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
