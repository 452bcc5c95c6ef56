"""Event descriptions (`/api/v1/event_desc`) and the validation of events against them."""

from __future__ import annotations

from typing import Any

from api_helpers import all_events, assert_error, event, list_events, post_events, send
from conftest import Api

DESC: dict[str, Any] = {
    "name": "cryptaTaskEvent",
    "description": "a Crypta task changed status",
    "required_fields": ["taskType", "taskStatus"],
    "optional_fields": ["environment", "date"],
    "public": True,
    "list_in_idm": False,
}


def create_desc(api: Api, **overrides: object) -> None:
    response = api.client.post("/api/v1/event_desc", json={**DESC, **overrides}, headers=api.auth)
    assert response.status_code in (200, 201), response.text


def get_desc(api: Api, name: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/event_desc/{name}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def assert_desc_fields(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert got[key] == value, (key, got)


# --- the registry --------------------------------------------------------------------------


def test_event_desc_is_created_read_back_and_listed(api: Api) -> None:
    create_desc(api)
    create_desc(
        api, name="mapreduce__day_load_closed", required_fields=["date"], optional_fields=[]
    )
    assert_desc_fields(get_desc(api, DESC["name"]), DESC)
    response = api.client.get("/api/v1/event_desc")
    assert response.status_code == 200, response.text
    listed = {d["name"]: d for d in response.json()["result"]}
    assert set(listed) == {"cryptaTaskEvent", "mapreduce__day_load_closed"}
    assert_desc_fields(listed["cryptaTaskEvent"], DESC)
    assert listed["mapreduce__day_load_closed"]["required_fields"] == ["date"]


def test_event_desc_put_changes_only_the_fields_sent(api: Api) -> None:
    create_desc(api)
    url = f"/api/v1/event_desc/{DESC['name']}"

    response = api.client.put(url, json={"description": "new words"}, headers=api.auth)
    assert response.status_code == 200, response.text
    assert_desc_fields(get_desc(api, DESC["name"]), {**DESC, "description": "new words"})

    response = api.client.put(
        url, json={"optional_fields": ["environment", "date", "extra"]}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    expected = {
        **DESC,
        "description": "new words",
        "optional_fields": ["environment", "date", "extra"],
    }
    assert_desc_fields(get_desc(api, DESC["name"]), expected)

    response = api.client.put(url, json={"public": False}, headers=api.auth)
    assert response.status_code == 200, response.text
    assert_desc_fields(get_desc(api, DESC["name"]), {**expected, "public": False})

    # The changed description is the one events are validated against.
    send(api, event(DESC["name"], taskType="T", taskStatus="SUCCESS", extra="1"))
    response = api.client.put(url, json={"optional_fields": []}, headers=api.auth)
    assert response.status_code == 200, response.text
    refused = post_events(api, event(DESC["name"], taskType="T", taskStatus="OK", date="1"))
    assert_error(refused, 400, "date")


def test_event_desc_delete_removes_it_and_its_validation(api: Api) -> None:
    create_desc(api)
    url = f"/api/v1/event_desc/{DESC['name']}"
    response = api.client.delete(url, headers=api.auth)
    assert response.status_code == 200, response.text
    assert_error(api.client.get(url), 404, DESC["name"])
    assert_error(api.client.delete(url, headers=api.auth), 404, DESC["name"])
    send(api, event(DESC["name"], anything="goes"))


def test_unknown_event_desc_is_404_naming_it(api: Api) -> None:
    assert_error(api.client.get("/api/v1/event_desc/noSuchEvent"), 404, "noSuchEvent")
    response = api.client.put(
        "/api/v1/event_desc/noSuchEvent", json={"description": "x"}, headers=api.auth
    )
    assert_error(response, 404, "noSuchEvent")


def test_creating_an_event_desc_twice_is_a_409(api: Api) -> None:
    create_desc(api)
    response = api.client.post(
        "/api/v1/event_desc", json={**DESC, "description": "again"}, headers=api.auth
    )
    assert_error(response, 409, DESC["name"])
    assert get_desc(api, DESC["name"])["description"] == DESC["description"]


def test_invalid_event_desc_is_400_naming_the_field_and_not_stored(api: Api) -> None:
    cases = [
        ({**DESC, "name": "bad name"}, "name"),
        ({**DESC, "name": ""}, "name"),
        ({**DESC, "colour": "blue"}, "colour"),
        ({**DESC, "required_fields": "taskType"}, "required_fields"),
        ({**DESC, "optional_fields": [1, 2]}, "optional_fields"),
        ({**DESC, "public": "yes"}, "public"),
    ]
    for body, word in cases:
        response = api.client.post("/api/v1/event_desc", json=body, headers=api.auth)
        assert_error(response, 400, word)
    assert api.client.get("/api/v1/event_desc").json()["result"] == []


# --- events validated against their description --------------------------------------------


def test_events_that_fit_their_description_or_have_none_are_accepted(api: Api) -> None:
    create_desc(api)
    ids = send(
        api,
        event(DESC["name"], taskType="T", taskStatus="SUCCESS"),
        event(DESC["name"], taskType="T", taskStatus="SUCCESS", environment="stable", date="1"),
        event("freeForm", anything="goes", n=1),
    )
    assert [e["_id"] for e in all_events(api)] == ids


def test_event_missing_a_required_field_is_400_naming_it(api: Api) -> None:
    create_desc(api)
    response = post_events(api, event(DESC["name"], taskType="T", environment="stable"))
    assert_error(response, 400, "taskStatus")
    assert all_events(api) == []


def test_event_with_a_field_neither_required_nor_optional_is_400_naming_it(api: Api) -> None:
    create_desc(api)
    response = post_events(
        api, event(DESC["name"], taskType="T", taskStatus="SUCCESS", colour="blue")
    )
    assert_error(response, 400, "colour")
    assert all_events(api) == []


def test_batch_with_one_event_breaking_its_description_stores_nothing(api: Api) -> None:
    create_desc(api)
    send(api, event("before"))
    response = post_events(
        api,
        event(DESC["name"], taskType="T", taskStatus="SUCCESS"),
        event("undescribed", whatever="1"),
        event(DESC["name"], taskType="T"),  # taskStatus missing
        event(DESC["name"], taskType="T", taskStatus="FAILURE"),
        request_id="all-or-nothing",
    )
    assert_error(response, 400, "taskStatus")
    assert [e["name"] for e in all_events(api)] == ["before"]
    assert list_events(api, name=DESC["name"]) == []
    assert list_events(api, name="undescribed") == []
