"""Bad tokens are limited per client address: a burst, then 429 with Retry-After; good
tokens and other addresses are not affected."""

from __future__ import annotations

from api_helpers import all_events, assert_error, event
from conftest import Api
from fastapi.testclient import TestClient

from stepd.services.ratelimit import BURST, BadTokenLimit

EVENTS = "/api/v1/events"
BAD = {"Authorization": "OAuth stepd_not-a-token"}


def client_at(api: Api, address: str) -> TestClient:
    """A client of the same app (same server process) from another address."""
    return TestClient(api.client.app, client=(address, 40000), raise_server_exceptions=False)


def test_a_burst_of_bad_tokens_from_one_address_then_429_good_tokens_and_others_unaffected(
    api: Api,
) -> None:
    attacker = client_at(api, "127.0.0.2")
    for _ in range(BURST):
        assert_error(attacker.post(EVENTS, json={"events": [event("x")]}, headers=BAD), 401)
    refused = attacker.post(EVENTS, json={"events": [event("x")]}, headers=BAD)
    assert_error(refused, 429, "too many bad tokens")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])
    # Reads with a bad token, and whoami, are refused the same way.
    assert_error(attacker.get(EVENTS, headers=BAD), 429)
    assert_error(attacker.get("/api/v1/whoami", headers=BAD), 429)
    # A good token from the same address still works; so does a read without one.
    good = attacker.post(EVENTS, json={"events": [event("ok")]}, headers=api.auth)
    assert good.status_code == 200, good.text
    assert attacker.get("/api/v1/whoami", headers=api.auth).json()["result"]["user"]
    assert attacker.get(EVENTS).status_code == 200
    # Another address still gets its plain 401 for a bad token.
    assert_error(client_at(api, "127.0.0.3").get(EVENTS, headers=BAD), 401)
    assert [e["name"] for e in all_events(api)] == ["ok"]


def test_the_limit_opens_again_after_its_window_and_tracks_a_bounded_number_of_addresses() -> None:
    now = [1000.0]
    limit = BadTokenLimit(burst=2, window_seconds=60, max_addresses=3, clock=lambda: now[0])
    assert limit.failed("a") is None and limit.failed("a") is None
    now[0] += 15
    assert limit.failed("a") == 45  # the window began with the first bad token
    now[0] += 45
    assert limit.failed("a") is None  # a new minute, a new burst
    for n in range(100):
        limit.failed(f"client-{n}")
    assert limit.tracked() == 3
