"""An event batch's `source`: a string, or the original client's object, stored and returned as
sent and found by `source__<key>`, on both stores; old rows (plain strings) stay readable."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from api_helpers import all_events, assert_error, assert_nothing_stored, event, get_event, send
from conftest import Api, fresh_database, serving
from sqlalchemy import insert

from stepd.settings import Settings
from stepd.store import migrate, open_store
from stepd.store.schema import events as events_table
from stepd.timeutil import utcnow

EVENTS = "/api/v1/events"


def original_body(task_id: int, **extra_source: object) -> dict[str, Any]:
    """What the original STEP client's `create_events(events, sandbox_task_id=N)` sends."""
    return {
        "request_id": str(uuid.uuid4()),
        "events": [
            {
                "name": "cryptaTaskEvent",
                "params": {"taskType": "SOUP", "taskStatus": "SUCCESS", "date": "2019-01-01"},
            }
        ],
        "source_type": "SANDBOX_TASK",
        "source": {"task_id": task_id, **extra_source},
    }


def found(api: Api, **query: object) -> list[str]:
    response = api.client.get(EVENTS, params=query)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return [e["_id"] for e in response.json()["result"]]


def test_the_original_clients_body_round_trips_with_its_object_source(api: Api) -> None:
    plain = original_body(123)
    statbox = original_body(124, primary_task_id="100", statinfra_action_id="9f1c")
    [plain_id] = send(api, *plain["events"], **{k: v for k, v in plain.items() if k != "events"})
    [statbox_id] = send(
        api, *statbox["events"], **{k: v for k, v in statbox.items() if k != "events"}
    )
    for event_id, body in ((plain_id, plain), (statbox_id, statbox)):
        stored = get_event(api, event_id)
        assert stored["source"] == body["source"]
        assert type(stored["source"]["task_id"]) is int
        assert stored["source_type"] == "SANDBOX_TASK"
        assert stored["params"] == body["events"][0]["params"]
    # The same request again is the same batch: same ids, nothing new.
    again = api.client.post(EVENTS, json=plain, headers=api.auth)
    assert again.json()["ids"] == [plain_id]
    other = {**plain, "source": {"task_id": 999}}
    assert_error(api.client.post(EVENTS, json=other, headers=api.auth), 409, "request_id")
    assert len(all_events(api)) == 2


def test_string_sources_are_returned_as_the_same_strings(api: Api) -> None:
    for source in ("host-1", '{"task_id": 1}', ""):
        [event_id] = send(api, event("s"), source=source)
        assert get_event(api, event_id)["source"] == source
    [event_id] = send(api, event("s"))
    assert get_event(api, event_id)["source"] is None


def test_source_task_id_filters_with_or_without_a_name_and_with_params(api: Api) -> None:
    first = send(api, event("a", x="1"), event("b", x="1"), source={"task_id": 7})
    [second] = send(api, event("a", x="2"), source={"task_id": 8, "primary_task_id": 7})
    [by_text] = send(api, event("a", x="1"), source={"task_id": "7"})
    send(api, event("a", x="1"), source="7")  # a string source has no task_id
    send(api, event("a", x="1"))

    assert found(api, source__task_id=7) == [*first, by_text]
    assert found(api, source__task_id=7, name="a") == [first[0], by_text]
    assert found(api, source__task_id=7, name="a", params__x="1", sort="-_id") == [
        by_text,
        first[0],
    ]
    assert found(api, source__task_id=8, source__primary_task_id=7) == [second]
    assert found(api, source__task_id=8, source__primary_task_id=8) == []
    assert found(api, source__task_id=7, state="PROCESSED") == []
    assert found(api, source__task_id=7, skip=1, limit=1) == [first[1]]
    assert found(api, source__task_id=70) == []


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ({"task": {"id": 1}}, ("source.task", "scalar")),
        ({"ids": [1, 2]}, ("source.ids", "scalar")),
        ([1, 2], ("source", "object")),
        (12, ("source", "string")),
        ({"": 1}, ("source key",)),
        ({"blob": "x" * 5000}, ("source", "4096")),
        ("x" * 1001, ("source", "1000")),
    ],
)
def test_a_source_that_is_not_a_short_string_or_a_flat_object_is_400(
    api: Api, source: object, words: tuple[str, ...]
) -> None:
    response = api.client.post(
        EVENTS, json={"events": [event("a")], "source": source}, headers=api.auth
    )
    assert_error(response, 400, *words)
    assert_nothing_stored(api)


def test_an_object_source_of_4_kib_is_accepted(api: Api) -> None:
    source = {"blob": "x" * (4096 - len('{"blob":""}'))}
    [event_id] = send(api, event("a"), source=source)
    assert get_event(api, event_id)["source"] == source


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_rows_stored_before_the_migration_read_as_their_strings(
    store_kind: str, tmp_path: Path
) -> None:
    with fresh_database(store_kind, tmp_path) as url:
        old = open_store(url, migrate=False)
        try:
            migrate.upgrade(old, "0006")  # the schema before object sources
            with old.write() as conn:
                # A string that looks like an object: it must come back as the string.
                conn.execute(
                    insert(events_table).values(
                        name="old",
                        params='{"date":"2019-01-01"}',
                        state="PROCESSED",
                        created=utcnow(),
                        source_type="cli",
                        source='{"task_id": 5}',
                    )
                )
        finally:
            old.close()
        store = open_store(url)  # migrated to the head revision
        try:
            settings = Settings(
                database_url="unused://", reactor=False, clock=False, executor="none"
            )
            with serving(settings, store, raise_server_exceptions=True) as client:
                result = client.get(EVENTS).json()["result"]
                assert [(e["name"], e["source"]) for e in result] == [("old", '{"task_id": 5}')]
                assert client.get(EVENTS, params={"source__task_id": "5"}).json()["result"] == []
        finally:
            store.close()


def test_the_story_page_shows_an_object_source_as_json(api: Api) -> None:
    [event_id] = send(api, event("a"), source={"task_id": 123})
    page = api.client.get(f"/ui/events/{event_id}")
    assert page.status_code == 200
    assert "{&#34;task_id&#34;: 123}" in page.text
