"""A story on a store with 30 configs on one event name leads with the answer (issue 13):
`configs` ordered fired, waiting, near misses, the rest; `summary` counts and groups.
On every store."""

from __future__ import annotations

from typing import Any

from conftest import Api
from crowded_story import EVENT_PARAMS, Crowd, crowd
from reactor_helpers import CRYPTA, HUMAN_MATCHING, config_body, react, send, story

from stepd.domain.story_order import COUNT_KEYS
from stepd.domain.tasks import TaskStatus
from stepd.store import runs
from stepd.timeutil import utcnow


def make_crowd(api: Api) -> Crowd:
    def create(body: dict[str, Any]) -> str:
        response = api.client.post("/api/v1/configs", json=body, headers=api.auth)
        assert response.status_code in (200, 201), response.text
        config_id: str = response.json()["id"]
        return config_id

    return crowd(create, CRYPTA, "crowd", HUMAN_MATCHING)


def test_the_fired_config_leads_and_the_unrelated_ones_are_one_group(api: Api) -> None:
    ids = make_crowd(api)
    event_id = send(api, CRYPTA, **EVENT_PARAMS, date="2019-01-01")
    react(api.store)

    told = story(api, event_id)
    configs = told["configs"]
    # Every config is still listed (old clients read them all), the answer first.
    assert sorted(c["config_id"] for c in configs) == sorted(ids.every)
    assert [c["config_id"] for c in configs[:5]] == ids.shown
    assert [c["outcome"] for c in configs[:5]] == [
        "fired", "waiting", "not_matched", "not_matched", "disabled",
    ]  # fmt: skip
    assert [c.get("near_miss") for c in configs[:5]] == [None, None, True, True, None]
    assert configs[1]["waiting"][0]["missing"][0]["name"] == f"{CRYPTA}.second"
    assert configs[4]["differs"] == []  # the event matches it: it is disabled, that is all

    summary = told["summary"]
    assert summary["shown"] == 5
    assert summary["counts"] == {
        "fired": 1, "waiting": 1, "near_miss": 2, "not_matched": 24, "not_fired": 0,
        "failed": 0, "disabled": 2, "pending": 0, "deleted": 0, "total": 30,
    }  # fmt: skip
    assert set(COUNT_KEYS) < set(summary["counts"])
    by_type, two_off = summary["groups"]
    assert by_type["text"] == "24 configs expect another taskType"
    assert by_type["param"] == "taskType" and by_type["count"] == 24
    assert by_type["expected"] == ["OTHER_00", "OTHER_01", "OTHER_02", "OTHER_03", "OTHER_04"]
    assert by_type["config_ids"] == [c["config_id"] for c in configs[5:29]]
    assert sorted(by_type["config_ids"]) == sorted(ids.other_types)
    assert two_off == {
        "param": "environment", "expected": ["testing"], "count": 1,
        "config_ids": [ids.two_off], "text": "1 config expects another environment",
    }  # fmt: skip
    # The old call answers the same story.
    response = api.client.post("/api/v1/event_story", json={"id": event_id})
    old = api.client.get(f"/api/v1/event_story/{response.json()['id']}").json()["result"]
    assert [c["config_id"] for c in old["configs"]] == [c["config_id"] for c in configs]


def test_every_event_of_a_chain_has_its_summary(api: Api) -> None:
    ids = make_crowd(api)
    status = {"name": "taskEvent", "params": {"taskType": HUMAN_MATCHING, "taskStatus": "~"}}
    body = config_body(status, name="after", task_type="ECHO")
    response = api.client.post("/api/v1/configs", json=body, headers=api.auth)
    assert response.status_code in (200, 201), response.text
    event_id = send(api, CRYPTA, **EVENT_PARAMS, date="2019-01-01")
    react(api.store)
    # A worker's part: the task runs, succeeds and reports its status as an event.
    with api.store.write() as conn:
        (claimed,) = runs.claim(conn, "story-test-worker", utcnow(), limit=1, start=True)
    with api.store.write() as conn:
        done = runs.Outcome(status=TaskStatus.SUCCESS, output={})
        runs.finish(conn, claimed.id, claimed.attempt, done, runs.StatusEvents(), utcnow())
    react(api.store)
    told = story(api, event_id)
    assert told["configs"][0]["config_id"] == ids.fired
    [link] = told["chain"]
    assert link["summary"]["counts"]["fired"] == 1 and link["summary"]["shown"] >= 1
    assert link["configs"][0]["outcome"] == "fired"


def test_a_deleted_config_that_fired_still_leads(api: Api) -> None:
    ids = make_crowd(api)
    event_id = send(api, CRYPTA, **EVENT_PARAMS, date="2019-01-01")
    react(api.store)
    assert api.client.delete(f"/api/v1/configs/{ids.fired}", headers=api.auth).status_code == 200
    told = story(api, event_id)
    first = told["configs"][0]
    assert (first["config_id"], first["outcome"], first["deleted"]) == (ids.fired, "fired", True)
    counts = told["summary"]["counts"]
    assert (counts["fired"], counts["deleted"], counts["total"]) == (1, 1, 30)


def test_an_event_not_evaluated_yet_collapses_its_configs_into_one_line(api: Api) -> None:
    make_crowd(api)
    event_id = send(api, CRYPTA, **EVENT_PARAMS, date="2019-01-01")
    told = story(api, event_id)
    assert told["summary"]["shown"] == 0 and told["summary"]["counts"]["pending"] == 30
    [group] = told["summary"]["groups"]
    assert group["param"] is None and group["count"] == 30
