"""The events API as the original STEP clients use it, on every store."""

from __future__ import annotations

from conftest import Api


def send(api: Api, *events: dict[str, object], **extra: object) -> list[str]:
    response = api.client.post(
        "/api/v1/events", json={"events": list(events), **extra}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["ids"]
    return ids


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
