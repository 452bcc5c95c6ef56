"""Bad input: the right 4xx, a JSON {error, message} that names the problem, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
from api_helpers import (
    all_events,
    assert_error,
    assert_nothing_stored,
    event,
    list_events,
    post_events,
    send,
)
from conftest import Api

EVENTS = "/api/v1/events"
MIB = 1024 * 1024


def post_bytes(api: Api, content: bytes | Iterator[bytes]) -> httpx.Response:
    return api.client.post(
        EVENTS, content=content, headers={**api.auth, "Content-Type": "application/json"}
    )


# --- the body as a whole -------------------------------------------------------------------


def test_malformed_json_is_400_and_stores_nothing(api: Api) -> None:
    cases = [
        (b'{"events": [{"name": "a", "params": {}}', "JSON"),
        (b"{'events': []}", "JSON"),
        (b"\xff\xfe", "JSON"),
        (b"", "empty"),
        (b'[{"name": "a", "params": {}}]', "object"),
    ]
    for content, word in cases:
        assert_error(post_bytes(api, content), 400, word)
    assert_nothing_stored(api)


def big_body(size: int) -> bytes:
    """A valid one-event batch of exactly `size` bytes."""
    shell = json.dumps({"events": [event("big", blob="")]}).encode()
    return json.dumps({"events": [event("big", blob="x" * (size - len(shell)))]}).encode()


def test_body_over_1_mib_is_413_and_stores_nothing_while_1_mib_is_accepted(api: Api) -> None:
    over = big_body(MIB + 1)
    assert len(over) == MIB + 1
    assert_error(post_bytes(api, over), 413, str(MIB))

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        body = big_body(2 * MIB)
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    assert_error(post_bytes(api, chunks()), 413, str(MIB))
    assert_nothing_stored(api)

    exact = big_body(MIB)
    assert len(exact) == MIB
    response = post_bytes(api, exact)
    assert response.status_code == 200, response.text[:500]
    assert len(all_events(api)) == 1


# --- the batch -----------------------------------------------------------------------------


def test_more_than_1000_events_is_400_and_stores_nothing_while_1000_are_accepted(
    api: Api,
) -> None:
    response = post_events(api, *(event("many", i=i) for i in range(1001)))
    assert_error(response, 400, "1000", "events")
    assert_nothing_stored(api)
    ids = send(api, *(event("many", i=i) for i in range(1000)))
    assert len(ids) == len(set(ids)) == 1000
    assert len(all_events(api)) == 1000


def test_missing_events_is_400_naming_events(api: Api) -> None:
    for body in ({"request_id": "r"}, {}):
        assert_error(api.client.post(EVENTS, json=body, headers=api.auth), 400, "events")
    assert_nothing_stored(api)


def test_events_that_is_not_a_list_is_400_naming_events(api: Api) -> None:
    for events in ({"name": "a", "params": {}}, "a", 1, None):
        response = api.client.post(EVENTS, json={"events": events}, headers=api.auth)
        assert_error(response, 400, "events")
    assert_nothing_stored(api)


def test_unknown_top_level_field_is_400_naming_it(api: Api) -> None:
    assert_error(post_events(api, event("a"), evnts=[]), 400, "evnts")
    # An author in the body is not trusted: the token says who sent the events.
    assert_error(post_events(api, event("a"), author="someone-else"), 400, "author")
    assert_nothing_stored(api)


def test_event_that_is_not_an_object_or_has_unknown_fields_is_400_naming_it(api: Api) -> None:
    assert_error(post_events(api, event("a"), "b"), 400, "events[1]")  # type: ignore[arg-type]
    response = post_events(api, {"name": "a", "params": {}, "parmas": {"x": "1"}})
    assert_error(response, 400, "parmas")
    assert_nothing_stored(api)


def test_one_bad_event_in_a_batch_stores_nothing_and_names_its_index(api: Api) -> None:
    response = post_events(api, event("good"), event("bad name"), event("good"))
    assert_error(response, 400, "events[1]")
    assert_nothing_stored(api)


def test_a_refused_batch_does_not_use_up_its_request_id(api: Api) -> None:
    refused = post_events(api, event("good"), event(""), request_id="fix-and-retry")
    assert_error(refused, 400, "name")
    ids = send(api, event("good"), event("fixed"), request_id="fix-and-retry")
    assert [e["_id"] for e in all_events(api)] == ids


# --- names ---------------------------------------------------------------------------------


def test_empty_or_missing_name_is_400_and_stores_nothing(api: Api) -> None:
    assert_error(post_events(api, event("")), 400, "name", "empty")
    assert_error(post_events(api, {"params": {"a": "1"}}), 400, "name")
    assert_error(post_events(api, {"name": None, "params": {}}), 400, "name")
    assert_nothing_stored(api)


def test_name_over_200_characters_is_400_while_200_are_accepted(api: Api) -> None:
    assert_error(post_events(api, event("n" * 201)), 400, "name", "200")
    assert_nothing_stored(api)
    send(api, event("n" * 200))
    assert [e["name"] for e in all_events(api)] == ["n" * 200]


def test_name_with_a_space_slash_or_other_character_outside_the_set_is_400(api: Api) -> None:
    for name in ("bad name", "bad/name", "bad?name", "имя", "a\nb", "a+b"):
        assert_error(post_events(api, event(name)), 400, "name")
    assert_nothing_stored(api)
    allowed = "Az09_.:-crypta"
    send(api, event(allowed))
    assert [e["name"] for e in list_events(api, name=allowed)] == [allowed]


# --- params --------------------------------------------------------------------------------


def test_param_value_that_is_a_list_or_an_object_is_400_naming_the_param(api: Api) -> None:
    for value in ([1, 2], {"nested": "object"}, []):
        response = post_events(api, event("p", ok="1", badparam=value))
        assert_error(response, 400, "badparam", "scalar")
    for params in (["a", "b"], "a=1", 1):
        assert_error(post_events(api, {"name": "p", "params": params}), 400, "params")
    assert_nothing_stored(api)


# --- the query string of GET /api/v1/events ------------------------------------------------


def test_unknown_sort_is_400_naming_it(api: Api) -> None:
    for sort in ("name", "created", "-created", "id"):
        assert_error(api.client.get(EVENTS, params={"sort": sort}), 400, "sort", sort)


def test_negative_or_non_integer_skip_is_400_naming_skip(api: Api) -> None:
    for skip in ("-1", "two"):
        assert_error(api.client.get(EVENTS, params={"skip": skip}), 400, "skip")


def test_limit_over_1000_or_not_an_integer_is_400_naming_limit(api: Api) -> None:
    assert_error(api.client.get(EVENTS, params={"limit": "1001"}), 400, "limit", "1000")
    for limit in ("abc", "1.5", "", "10a", "-1"):
        assert_error(api.client.get(EVENTS, params={"limit": limit}), 400, "limit")
    assert api.client.get(EVENTS, params={"limit": "1000"}).status_code == 200


def test_unknown_query_parameter_or_state_is_400_naming_it(api: Api) -> None:
    assert_error(api.client.get(EVENTS, params={"nmae": "a"}), 400, "nmae")
    assert_error(api.client.get(EVENTS, params={"params_date": "1"}), 400, "params_date")
    assert_error(api.client.get(EVENTS, params={"state": "DONE"}), 400, "state", "DONE")


def test_nan_and_infinity_are_not_json_and_are_400_storing_nothing(api: Api) -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        body = b'{"events": [{"name": "a", "params": {"x": ' + literal + b"}}]}"
        response = post_bytes(api, body)
        assert_error(response, 400)
    assert_nothing_stored(api)


def test_string_with_a_lone_surrogate_is_400_not_a_server_error(api: Api) -> None:
    for body in (
        b'{"events": [{"name": "a", "params": {"x": "\\ud800"}}]}',
        b'{"events": [{"name": "a", "params": {"\\udfff": "x"}}]}',
        b'{"events": [{"name": "a"}], "source": "\\ud800"}',
    ):
        assert_error(post_bytes(api, body), 400)
    assert_nothing_stored(api)


def test_huge_skip_is_400_naming_skip_not_a_server_error(api: Api) -> None:
    assert_error(api.client.get(EVENTS, params={"skip": str(10**30)}), 400, "skip")
