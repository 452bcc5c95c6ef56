"""Health and the shape of answers to routes that do not exist."""

from __future__ import annotations

from api_helpers import assert_error
from conftest import Api


def test_healthz_is_200_ok_when_the_store_answers(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def test_unknown_route_is_a_404_json_error_and_wrong_method_a_405(api: Api) -> None:
    for url in ("/api/v1/nothing-here", "/api/v2/events", "/no/such/page"):
        assert_error(api.client.get(url), 404)
    assert_error(api.client.post("/api/v1/nothing-here", json={}, headers=api.auth), 404)
    assert_error(api.client.delete("/api/v1/events", headers=api.auth), 405)
