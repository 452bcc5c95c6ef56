"""The events API as the original STEP clients use it, on every store."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from api_helpers import (
    all_events,
    assert_error,
    event,
    get_event,
    list_events,
    send,
    settings_like,
)
from conftest import Api, make_token, serving

from stepd.store import open_store

EVENT_FIELDS = {
    "_id",
    "name",
    "params",
    "state",
    "created",
    "author",
    "request_id",
    "source_type",
    "source",
}


def ids_of(events: list[dict[str, object]]) -> list[object]:
    return [e["_id"] for e in events]


# --- POST /api/v1/events -------------------------------------------------------------------


def test_posted_events_come_back_newest_first_by_param(api: Api) -> None:
    ids = send(
        api,
        {"name": "cryptaTaskEvent", "params": {"taskType": "A", "date": "2019-01-01"}},
        {"name": "cryptaTaskEvent", "params": {"taskType": "B", "date": "2019-01-01"}},
        {"name": "cryptaTaskEvent", "params": {"taskType": "A", "date": "2019-01-02"}},
    )
    assert ids == sorted(ids) and len(set(ids)) == 3
    result = api.client.get(
        "/api/v1/events",
        params={"name": "cryptaTaskEvent", "params__taskType": "A", "sort": "-_id", "limit": 2},
    ).json()["result"]
    assert [e["_id"] for e in result] == [ids[2], ids[0]]
    assert result[0]["params"] == {"taskType": "A", "date": "2019-01-02"}
    assert result[0]["author"] == "robot-crypta"
    assert result[0]["state"] == "NEW"


def test_post_returns_one_id_per_event_in_the_order_sent(api: Api) -> None:
    names = ["first", "second", "third", "fourth"]
    ids = send(api, *(event(name, i=str(i)) for i, name in enumerate(names)))
    assert len(ids) == len(names) and len(set(ids)) == len(names)
    assert all(isinstance(i, str) and i for i in ids)
    for i, (event_id, name) in enumerate(zip(ids, names, strict=True)):
        stored = get_event(api, event_id)
        assert stored["_id"] == event_id
        assert stored["name"] == name
        assert stored["params"] == {"i": str(i)}


def test_ids_sort_as_text_in_creation_order_across_requests(api: Api) -> None:
    # 40 events in 20 requests: enough to cross every digit boundary of a naive id.
    ids: list[str] = []
    for i in range(20):
        ids += send(api, event("seq", i=str(i), half="a"), event("seq", i=str(i), half="b"))
    assert len(set(ids)) == 40
    assert ids == sorted(ids)
    assert ids_of(list_events(api, name="seq", limit=100)) == ids


def test_ids_keep_sorting_after_the_app_restarts_on_the_same_database(
    api: Api, db_url: str
) -> None:
    before = send(api, *(event("restart", i=str(i)) for i in range(3)))
    api.store.close()  # the first app's connections go away, as in a restart

    settings = settings_like(api)
    second_store = open_store(db_url)
    with serving(settings, second_store) as client:
        response = client.post(
            "/api/v1/events",
            json={"events": [event("restart", i=str(i)) for i in range(3, 6)]},
            headers=api.auth,
        )
        assert response.status_code == 200, response.text
        after: list[str] = response.json()["ids"]
        listed = client.get("/api/v1/events", params={"name": "restart"}).json()["result"]
        newest = client.get("/api/v1/events", params={"name": "restart", "sort": "-_id"}).json()[
            "result"
        ]

    assert set(after).isdisjoint(before)
    assert before + after == sorted(before + after)
    assert ids_of(listed) == before + after
    assert ids_of(newest) == list(reversed(before + after))


def test_same_request_id_returns_the_same_ids_and_stores_nothing_new(api: Api) -> None:
    batch = [event("retry", i="1"), event("retry", i="2")]
    first = send(api, *batch, request_id="req-1")
    again = send(api, *batch, request_id="req-1")
    assert again == first
    assert ids_of(all_events(api)) == first

    other = send(api, *batch, request_id="req-2")
    assert set(other).isdisjoint(first)
    assert len(all_events(api)) == 4


def test_request_id_source_type_and_source_are_stored_and_returned(api: Api) -> None:
    [sourced] = send(
        api, event("sourced", a="1"), request_id="r-42", source_type="luigi", source="host-1/t-7"
    )
    for stored in (get_event(api, sourced), list_events(api, name="sourced")[0]):
        assert stored["request_id"] == "r-42"
        assert stored["source_type"] == "luigi"
        assert stored["source"] == "host-1/t-7"
    [plain] = send(api, event("plain"))
    stored = get_event(api, plain)
    assert (stored["request_id"], stored["source_type"], stored["source"]) == (None, None, None)
    assert stored["params"] == {}


def test_author_is_the_user_of_the_token(api: Api) -> None:
    [by_robot] = send(api, event("authored"))
    alice = make_token(api.store, "alice")
    response = api.client.post(
        "/api/v1/events",
        json={"events": [event("authored")]},
        headers={"Authorization": f"OAuth {alice}"},
    )
    assert response.status_code == 200, response.text
    [by_alice] = response.json()["ids"]
    assert get_event(api, by_robot)["author"] == "robot-crypta"
    assert get_event(api, by_alice)["author"] == "alice"


def test_event_has_every_contract_field_and_created_is_iso8601_utc(api: Api) -> None:
    before = datetime.now(UTC)
    [event_id] = send(api, event("shape", k="v"))
    after = datetime.now(UTC)
    stored = get_event(api, event_id)
    assert set(stored) >= EVENT_FIELDS
    assert (stored["_id"], stored["name"], stored["params"]) == (event_id, "shape", {"k": "v"})
    assert stored["state"] == "NEW"
    created = stored["created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", created), created
    parsed = datetime.fromisoformat(created)
    assert parsed.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= parsed <= after + timedelta(seconds=1)


# --- GET /api/v1/events --------------------------------------------------------------------


def test_list_filters_by_name(api: Api) -> None:
    a1, _b, a2 = send(api, event("alpha"), event("beta"), event("alpha"))
    assert ids_of(list_events(api, name="alpha")) == [a1, a2]
    assert list_events(api, name="gamma") == []


def test_list_filters_by_several_params_all_of_which_must_match(api: Api) -> None:
    ids = send(
        api,
        event("task", date="1", env="stable", type="A"),
        event("task", date="1", env="testing", type="A"),
        event("task", date="2", env="stable", type="A"),
        event("task", date="1", env="stable", type="B"),
        event("other", date="1", env="stable", type="A"),
    )
    by_name = list_events(api, name="task", params__date="1", params__env="stable")
    assert ids_of(by_name) == [ids[0], ids[3]]
    three = list_events(api, name="task", params__date="1", params__env="stable", params__type="A")
    assert ids_of(three) == [ids[0]]
    any_name = list_events(api, params__date="1", params__env="stable")
    assert ids_of(any_name) == [ids[0], ids[3], ids[4]]
    assert list_events(api, name="task", params__date="1", params__env="nowhere") == []
    assert list_events(api, name="task", params__date="1", params__missing="1") == []


def test_list_filters_by_state(api: Api) -> None:
    first, second, third = send(api, event("st"), event("st"), event("st"))
    response = api.client.post("/api/v1/reject_event", json={"id": second}, headers=api.auth)
    assert response.status_code == 200, response.text
    assert ids_of(list_events(api, state="REJECTED")) == [second]
    assert ids_of(list_events(api, name="st", state="NEW")) == [first, third]
    assert list_events(api, state="PROCESSED") == []


def test_list_skips_and_limits(api: Api) -> None:
    ids = send(api, *(event("page", i=str(i)) for i in range(10)))
    assert ids_of(list_events(api, name="page", skip=3, limit=4)) == ids[3:7]
    newest = list(reversed(ids))
    assert ids_of(list_events(api, name="page", skip=3, limit=4, sort="-_id")) == newest[3:7]
    assert ids_of(list_events(api, name="page", skip=8)) == ids[8:]
    assert list_events(api, name="page", skip=10) == []


def test_list_returns_30_events_by_default(api: Api) -> None:
    ids = send(api, *(event("many", i=str(i)) for i in range(35)))
    assert ids_of(list_events(api, name="many")) == ids[:30]
    assert ids_of(list_events(api, name="many", limit=35)) == ids


def test_list_sorts_by_id_ascending_by_default_and_newest_first_with_minus_id(api: Api) -> None:
    ids: list[str] = []
    for i in range(5):
        ids += send(api, event("sorted", i=str(i)))
    assert ids_of(list_events(api, name="sorted")) == ids
    assert ids_of(list_events(api, name="sorted", sort="_id")) == ids
    assert ids_of(list_events(api, name="sorted", sort="-_id")) == list(reversed(ids))


def test_param_filter_compares_values_as_text(api: Api) -> None:
    int_one, str_one, _two, flag, _v01, float_ = send(
        api,
        event("typed", n=1),
        event("typed", n="1"),
        event("typed", n=2),
        event("typed", flag=True),
        event("typed", v="value01"),
        event("typed", x=1.5),
    )
    assert ids_of(list_events(api, name="typed", params__n="1")) == [int_one, str_one]
    assert ids_of(list_events(api, params__n="1")) == [int_one, str_one]
    assert ids_of(list_events(api, name="typed", params__flag="true")) == [flag]
    assert ids_of(list_events(api, name="typed", params__x="1.5")) == [float_]
    assert list_events(api, name="typed", params__v="value1") == []
    [unicode] = send(api, event("unicode", city="Москва", emoji="✓"))
    assert get_event(api, unicode)["params"] == {"city": "Москва", "emoji": "✓"}
    assert ids_of(list_events(api, name="unicode", params__city="Москва")) == [unicode]


def test_number_bool_and_null_params_round_trip_as_json_types(api: Api) -> None:
    params: dict[str, object] = {
        "int": 1,
        "neg": -3,
        "big": 2**53,
        "float": 1.5,
        "yes": True,
        "no": False,
        "none": None,
        "text": "1",
        "empty": "",
    }
    [event_id] = send(api, {"name": "json", "params": params})
    for stored in (get_event(api, event_id), list_events(api, name="json")[0]):
        assert stored["params"] == params
        for key, value in params.items():
            assert type(stored["params"][key]) is type(value), (key, stored["params"][key])


# --- GET /api/v1/events/<id> ---------------------------------------------------------------


def test_unknown_or_malformed_event_id_is_404_naming_it(api: Api) -> None:
    [real] = send(api, event("only"))
    unknown = real[:-1] + ("1" if real[-1] == "0" else "0")
    assert unknown != real
    assert_error(api.client.get(f"/api/v1/events/{unknown}"), 404, unknown)
    for bad_id in ("nope", "12345", "g" * 24, "-1", "0x10", "0" * 100):
        assert_error(api.client.get(f"/api/v1/events/{bad_id}"), 404, bad_id)
    assert_error(api.client.get("/api/v1/events/%20"), 404)


# --- POST /api/v1/reject_event -------------------------------------------------------------


def test_reject_event_with_a_json_body_marks_it_rejected(api: Api) -> None:
    keep, drop = send(api, event("rej"), event("rej"))
    for _ in range(2):  # rejecting again changes nothing
        response = api.client.post("/api/v1/reject_event", json={"id": drop}, headers=api.auth)
        assert response.status_code == 200, response.text
        assert response.json() == {"id": drop}
    assert get_event(api, drop)["state"] == "REJECTED"
    assert get_event(api, keep)["state"] == "NEW"


def test_reject_event_with_form_data_marks_it_rejected(api: Api) -> None:
    [drop] = send(api, event("rej"))
    response = api.client.post("/api/v1/reject_event", data={"id": drop}, headers=api.auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": drop}
    assert get_event(api, drop)["state"] == "REJECTED"


def test_reject_unknown_event_is_404_naming_the_id_and_missing_id_is_400(api: Api) -> None:
    [real] = send(api, event("only"))
    unknown = real[:-1] + ("1" if real[-1] == "0" else "0")
    for bad in (unknown, "not-an-id"):
        response = api.client.post("/api/v1/reject_event", json={"id": bad}, headers=api.auth)
        assert_error(response, 404, bad)
        response = api.client.post("/api/v1/reject_event", data={"id": bad}, headers=api.auth)
        assert_error(response, 404, bad)
    for body in ({}, {"id": ""}, {"id": 7}):
        response = api.client.post("/api/v1/reject_event", json=body, headers=api.auth)
        assert_error(response, 400, "id")
    assert get_event(api, real)["state"] == "NEW"


def test_concurrent_posts_with_one_request_id_store_one_batch(api: Api) -> None:
    batch = {"events": [event("race", i="1"), event("race", i="2")], "request_id": "race-1"}

    def post(_: int) -> list[str]:
        response = api.client.post("/api/v1/events", json=batch, headers=api.auth)
        assert response.status_code == 200, response.text
        ids: list[str] = response.json()["ids"]
        return ids

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(post, range(6)))
    assert all(answer == answers[0] for answer in answers), answers
    assert ids_of(all_events(api)) == answers[0]


def test_long_and_huge_param_values_round_trip_and_match(api: Api) -> None:
    long = "v" * 5000
    huge = 10**30
    [event_id] = send(api, event("sized", long=long, huge=huge))
    assert get_event(api, event_id)["params"] == {"long": long, "huge": huge}
    assert ids_of(list_events(api, name="sized", params__long=long)) == [event_id]
    assert ids_of(list_events(api, params__long=long)) == [event_id]
    assert list_events(api, name="sized", params__long=long[:-1]) == []


def test_a_request_id_reused_for_other_events_is_409_and_stores_nothing(api: Api) -> None:
    first = {"name": "reuse", "params": {"n": 1}}
    ids = send(api, first, request_id="batch-42")
    other = api.client.post(
        "/api/v1/events",
        json={"events": [{"name": "reuse", "params": {"n": 2}}], "request_id": "batch-42"},
        headers=api.auth,
    )
    assert other.status_code == 409, other.text
    assert other.json()["field"] == "request_id"
    assert send(api, first, request_id="batch-42") == ids  # the honest retry still works
    stored = api.client.get("/api/v1/events", params={"name": "reuse"}).json()["result"]
    assert [e["params"] for e in stored] == [{"n": 1}]


def test_param_values_come_back_exactly_in_lists_and_by_id(api: Api) -> None:
    """Reads render JSON themselves: integers beyond 64 bits, floats and any text survive."""
    body = (
        '{"events": [{"name": "exactValues", "params": '
        '{"big": 123456789012345678901234567890, "ratio": 1.5, "text": "é ✓", "none": null}}]}'
    )
    posted = api.client.post(
        "/api/v1/events",
        content=body,
        headers={**api.auth, "Content-Type": "application/json"},
    )
    assert posted.status_code == 200, posted.text
    [event_id] = posted.json()["ids"]
    expected = {"big": 123456789012345678901234567890, "ratio": 1.5, "text": "é ✓", "none": None}
    [listed] = api.client.get("/api/v1/events", params={"name": "exactValues"}).json()["result"]
    assert listed["params"] == expected
    one = api.client.get(f"/api/v1/events/{event_id}").json()["result"]
    assert one["params"] == expected
    assert one == listed
