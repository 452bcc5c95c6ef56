"""`since` and `until` on the lists of events and tasks: ISO 8601, `since` inclusive and
`until` exclusive, combined with every other filter (name, params, source, state), on both
stores; a malformed value, or an `until` not after `since`, is a 400 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Api

from stepd.store import events as event_store
from stepd.store import tasks as task_store

DAY0 = datetime(2019, 1, 1, tzinfo=UTC)
EVENTS = "/api/v1/events"
TASKS = "/api/v1/tasks"


def _store(api: Api, name: str, created: datetime, date: str) -> None:
    with api.store.write() as conn:
        event_store.insert_events(
            conn,
            [
                event_store.NewEvent(
                    name=name,
                    params={"date": date, "k": "v"},
                    created=created,
                    source_type="SANDBOX_TASK",
                    source={"task_id": "7"},
                )
            ],
        )


def _store_events(api: Api, days: int, name: str = "logsReady") -> None:
    """One event a day from DAY0 at 06:00 (params date and k, an object source)."""
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        _store(api, name, day + timedelta(hours=6), day.date().isoformat())


def _dates(api: Api, **query: str) -> list[str]:
    answer = api.client.get(EVENTS, params=query)
    assert answer.status_code == 200, answer.text
    return [e["params"]["date"] for e in answer.json()["result"]]


def test_events_since_and_until_with_every_kind_of_filter(api: Api) -> None:
    _store_events(api, 10)
    for hour in (7, 8, 9):  # stored after, on the last day
        _store(api, "other", DAY0 + timedelta(days=9, hours=hour), f"h{hour}")
    jan = {"since": "2019-01-03", "until": "2019-01-06T06:00:00Z"}  # the 3rd, 4th, 5th
    want = ["2019-01-03", "2019-01-04", "2019-01-05"]
    assert _dates(api, name="logsReady", **jan) == want
    assert _dates(api, name="logsReady", params__k="v", **jan) == want  # the param index walk
    two = {"params__k": "v", "params__date": "2019-01-04"}
    assert _dates(api, name="logsReady", **two, **jan) == ["2019-01-04"]  # several params
    assert _dates(api, **two, **jan) == ["2019-01-04"]  # no name
    assert _dates(api, name="logsReady", source__task_id="7", **jan) == want  # source
    assert _dates(api, name="logsReady", state="NEW", sort="-_id", **jan) == want[::-1]
    assert _dates(api, name="logsReady", **jan, limit="2", skip="1") == want[1:3]
    # Open ranges; an offset; a range with nothing stored in it.
    assert _dates(api, name="logsReady", since="2019-01-09") == ["2019-01-09", "2019-01-10"]
    assert _dates(api, name="logsReady", until="2019-01-02T07:00:00+01:00") == ["2019-01-01"]
    assert _dates(api, name="logsReady", since="2030-01-01") == []
    assert _dates(api, name="other", since="2019-01-10T08:00Z") == ["h8", "h9"]
    # Stored last, but by a server whose clock is two minutes behind: still in its range.
    _store(api, "other", DAY0 + timedelta(days=9, hours=8, minutes=58), "late")
    assert _dates(api, name="other", since="2019-01-10T08:30Z", until="2019-01-10T09:00Z") == [
        "late"
    ]


def test_an_empty_store_has_nothing_in_any_range(api: Api) -> None:
    assert _dates(api, since="2019-01-01") == []


def test_the_extremes_of_the_calendar_are_ranges_like_any_other(api: Api) -> None:
    _store_events(api, 2)
    everything = ["2019-01-01", "2019-01-02"]
    assert _dates(api, since="0001-01-01", until="9999-12-31T23:59:59.999999Z") == everything
    tasks = api.client.get(TASKS, params={"since": "0001-01-01", "until": "9999-12-31"})
    assert tasks.status_code == 200, tasks.text


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ({"since": "yesterday"}, "since", "not an ISO 8601"),
        ({"until": "2019-13-01"}, "until", "not an ISO 8601"),
        ({"since": "2019-01-02", "until": "2019-01-01"}, "until", "must be after since"),
        ({"since": "2019-01-01", "until": "2019-01-01"}, "until", "must be after since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since", "out of range"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "until", "out of range"),
    ],
)
def test_a_bad_time_is_a_400_naming_the_field(
    api: Api, query: dict[str, str], field: str, says: str
) -> None:
    for url in (EVENTS, TASKS):
        answer = api.client.get(url, params=query)
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body.get("field") == field and says in body["message"], body


def test_tasks_since_and_until(api: Api) -> None:
    with api.store.write() as conn:
        ids = [
            task_store.insert_task(
                conn,
                task_store.NewTask(
                    type="T", params={"n": d}, author="a", created=DAY0 + timedelta(days=d)
                ),
            )
            for d in range(5)
        ]
    answer = api.client.get(TASKS, params={"since": "2019-01-02", "until": "2019-01-04"})
    assert answer.status_code == 200, answer.text
    assert [t["id"] for t in answer.json()["result"]] == [ids[2], ids[1]]  # newest first
    later = api.client.get(TASKS, params={"since": "2019-01-04T00:00:00Z", "type": "T"})
    assert [t["id"] for t in later.json()["result"]] == [ids[4], ids[3]]
