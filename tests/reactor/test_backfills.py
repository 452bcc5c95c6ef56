"""Backfills through the HTTP API on every store (issue 11): planning, bad input, the
feed that keeps at most `max_in_flight` tasks unfinished, request_id, pause and cancel.

Feeds are driven explicitly (`feed`), and tasks are ended by stopping them through the
API (no worker runs here), so "at most 2 active" is a fact about the tables after every
round rather than a race; tests/runner/test_backfills_live.py runs them on real workers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Api, make_token
from reactor_helpers import CRYPTA, SOUP, create_config, dep, task_rows

from stepd.services.backfills import BackfillService

DAY_LOAD = "mapreduce__day_load_closed"
SOUP_DEP = dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", environment="stable", date="~")
JOIN = (
    dep(DAY_LOAD, logtype="access-log", date="~", mrbasename="~"),
    dep(DAY_LOAD, logtype="redir-log", date="~", mrbasename="~"),
)
JANUARY = {"date": {"from": "2019-01-01", "to": "2019-01-31"}}


def backfill(
    api: Api, config_id: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = api.auth if token is None else {"Authorization": f"OAuth {token}"}
    return api.client.post(f"/api/v1/configs/{config_id}/backfill", json=body, headers=headers)


def started(api: Api, config_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = backfill(api, config_id, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["result"]
    assert response.json()["id"] == result["id"]
    return result


def service(api: Api) -> BackfillService:
    found: BackfillService = api.client.app.state.stepd.backfills  # type: ignore[attr-defined]
    return found


def get(api: Api, backfill_id: int) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/backfills/{backfill_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def active_tasks(api: Api) -> list[dict[str, Any]]:
    return [
        t for t in task_rows(api.store) if t["status"] in ("ENQUEUED", "WAIT_MUTEX", "EXECUTING")
    ]


def stop_all(api: Api, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        response = api.client.post(f"/api/v1/tasks/{row['id']}/stop", headers=api.auth)
        assert response.status_code == 200, response.text


def assert_error(response: httpx.Response, status: int, field: str | None, *words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    if field is not None:
        assert body.get("field") == field, body
    for word in words:
        assert word.lower() in body["message"].lower(), (word, body)


def test_a_dry_run_plans_every_binding_of_the_product_and_stores_nothing(api: Api) -> None:
    config_id = create_config(
        api, *JOIN, name="join-backfill", task_params={"out": "//home/{{ mrbasename }}/{{ date }}"}
    )
    response = backfill(
        api,
        config_id,
        {"params": {**JANUARY, "mrbasename": ["hahn", "arnold"]}, "dry_run": True},
    )
    assert response.status_code == 200, response.text
    plan = response.json()["result"]
    assert plan["dry_run"] is True and plan["bindings"] == 62 and plan["max_in_flight"] == 4
    assert plan["config_name"] == "join-backfill"
    first, second, last = plan["tasks"][0], plan["tasks"][1], plan["tasks"][-1]
    assert first["params"] == {
        "date": "2019-01-01",
        "mrbasename": "hahn",
        "out": "//home/hahn/2019-01-01",
    }
    assert second["params"]["mrbasename"] == "arnold"
    assert last["params"]["date"] == "2019-01-31"
    assert first["trigger"] == {
        "kind": "backfill",
        "by": "robot-crypta",
        "binding": {"date": "2019-01-01", "mrbasename": "hahn"},
    }
    assert task_rows(api.store) == []
    assert api.client.get("/api/v1/backfills").json()["result"] == []


def test_a_31_day_backfill_keeps_at_most_2_tasks_unfinished_and_ends_with_31(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="soup-backfill")
    result = started(api, config_id, {"params": JANUARY, "max_in_flight": 2})
    assert result["state"] == "running" and result["bindings"] == 31
    assert result["made"] == 2 and result["active"] == 2 and result["counts"] == {"ENQUEUED": 2}

    rounds = 0
    while get(api, result["id"])["state"] == "running":
        rounds += 1
        assert rounds < 40
        assert service(api).feed().made == 0  # nothing ended: no room
        active = active_tasks(api)
        assert 1 <= len(active) <= 2, active
        stop_all(api, active)
        service(api).feed()
        assert len(active_tasks(api)) <= 2
    done = get(api, result["id"])
    assert done["state"] == "done" and done["made"] == 31 and done["finished"] == 31
    assert done["counts"] == {"STOPPED": 31} and done["progress"] == 1.0
    assert done["ended"] is not None
    rows = task_rows(api.store)
    assert sorted(r["params"]["date"] for r in rows) == [f"2019-01-{d:02}" for d in range(1, 32)]
    assert {r["backfill_id"] for r in rows} == {result["id"]}
    task = api.client.get(f"/api/v1/tasks/{rows[0]['id']}").json()["result"]
    assert task["trigger"]["kind"] == "backfill" and task["trigger"]["backfill_id"] == result["id"]
    assert task["config_id"] == config_id


def test_the_same_request_id_again_answers_the_same_backfill_and_makes_nothing(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="soup-once")
    body = {"params": JANUARY, "max_in_flight": 3, "request_id": "january-2019"}
    first = started(api, config_id, body)
    again = backfill(api, config_id, body)
    assert again.status_code == 200, again.text
    assert again.json()["result"]["id"] == first["id"]
    assert len(task_rows(api.store)) == 3
    assert len(api.client.get("/api/v1/backfills").json()["result"]) == 1
    other = create_config(api, SOUP_DEP, name="soup-other")
    assert_error(backfill(api, other, body), 409, "request_id", "another config")


def test_cancel_stops_the_queued_tasks_and_makes_no_more(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="soup-cancel")
    result = started(api, config_id, {"params": JANUARY, "max_in_flight": 3})
    stranger = make_token(api.store, "someone-else")
    path = f"/api/v1/backfills/{result['id']}/cancel"
    refused = api.client.post(path, headers={"Authorization": f"OAuth {stranger}"})
    assert_error(refused, 403, None, "belongs to robot-crypta")
    assert api.client.post(path).status_code == 401

    response = api.client.post(path, headers=api.auth)
    assert response.status_code == 200, response.text
    cancelled = response.json()["result"]
    assert cancelled["state"] == "cancelled" and cancelled["cancelled_by"] == "robot-crypta"
    assert cancelled["counts"] == {"STOPPED": 3} and cancelled["made"] == 3
    assert service(api).feed().made == 0
    assert len(task_rows(api.store)) == 3
    assert_error(api.client.post(path, headers=api.auth), 409, None, "already ended")


def test_a_paused_config_makes_nothing_until_enabled(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="soup-paused")
    result = started(
        api, config_id, {"params": {"date": ["2019-01-01", "2019-01-02"]}, "max_in_flight": 1}
    )
    stop_all(api, active_tasks(api))
    assert (
        api.client.post(f"/api/v1/configs/{config_id}/disable", headers=api.auth).status_code == 200
    )
    assert service(api).feed().made == 0
    waiting = get(api, result["id"])
    assert waiting["state"] == "running" and "disabled" in waiting["waiting_for"]
    assert_error(backfill(api, config_id, {"params": JANUARY}), 409, "id", "disabled")
    assert (
        api.client.post(f"/api/v1/configs/{config_id}/enable", headers=api.auth).status_code == 200
    )
    assert service(api).feed().made == 1
    assert get(api, result["id"])["waiting_for"] is None


def test_a_deleted_config_cancels_its_backfill_with_the_reason(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="soup-deleted")
    result = started(api, config_id, {"params": JANUARY, "max_in_flight": 1})
    assert api.client.delete(f"/api/v1/configs/{config_id}", headers=api.auth).status_code == 200
    stop_all(api, active_tasks(api))
    service(api).feed()
    ended = get(api, result["id"])
    assert ended["state"] == "cancelled" and "deleted" in ended["last_error"]
    # Its config's tombstone still names it (issue 11's history that never forgets).
    assert ended["config_id"] == config_id and ended["config_name"] == "soup-deleted"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"params": {"date": {"from": "2019-02-01", "to": "2019-01-01"}}},
            "params.date.from",
            ("after",),
        ),
        ({"params": {"date": {"from": "2019-01-01", "to": 7}}}, "params.date", ("both dates",)),
        ({"params": {**JANUARY, "cluster": ["hahn"]}}, "params.cluster", ("does not bind",)),
        ({"params": {"day": "2019-01-01"}}, "params.date", ("lacks 'date'",)),
        ({"params": {"date": {"from": 0, "to": 10_000}}}, "params", ("at most 10,000",)),
        ({"params": JANUARY, "max_in_flight": 0}, "max_in_flight", ("1 to 1000",)),
        ({"params": JANUARY, "max_in_flight": "4"}, "max_in_flight", ("integer",)),
        ({"params": JANUARY, "max_in_flight": 1001}, "max_in_flight", ("1 to 1000",)),
        ({"params": JANUARY, "dry_run": "yes"}, "dry_run", ("true or false",)),
        ({"params": JANUARY, "request_id": "x" * 201}, "request_id", ("1 to 200",)),
        ({"params": JANUARY, "when": "now"}, "when", ("unknown field",)),
        ({}, "params", ("must be an object",)),
    ],
)
def test_bad_backfills_are_a_400_naming_the_field_and_store_nothing(
    api: Api, body: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    config_id = create_config(api, SOUP_DEP, name="soup-bad")
    assert_error(backfill(api, config_id, body), 400, field, *words)
    assert task_rows(api.store) == []
    assert api.client.get("/api/v1/backfills").json()["result"] == []


def test_who_may_backfill_and_a_template_failing_on_one_binding(api: Api) -> None:
    config_id = create_config(
        api, SOUP_DEP, name="soup-template", task_params={"n": "{{ 10 // (date[-2:] | int - 3) }}"}
    )
    assert (
        api.client.post(
            f"/api/v1/configs/{config_id}/backfill", json={"params": JANUARY}
        ).status_code
        == 401
    )
    stranger = make_token(api.store, "someone-else")
    assert_error(
        backfill(api, config_id, {"params": JANUARY}, token=stranger), 403, None, "only its author"
    )
    assert_error(backfill(api, "123456", {"params": JANUARY}), 404, "id", "no config")
    # 2019-01-03 divides by zero: binding 3 is named, and nothing is made.
    assert_error(
        backfill(api, config_id, {"params": JANUARY}), 400, None, "binding 3", "date=2019-01-03"
    )
    assert task_rows(api.store) == []
    admin = make_token(api.store, "admin", admin=True)
    ok = backfill(api, config_id, {"params": {"date": ["2019-01-05"]}}, token=admin)
    assert ok.status_code == 201, ok.text
    assert ok.json()["result"]["author"] == "admin"


def test_listing_backfills_filters_by_state_and_config(api: Api) -> None:
    one = create_config(api, SOUP_DEP, name="soup-list-1")
    two = create_config(api, SOUP_DEP, name="soup-list-2")
    first = started(api, one, {"params": {"date": "2019-01-01"}})
    second = started(api, two, {"params": {"date": "2019-01-02"}})
    api.client.post(f"/api/v1/backfills/{first['id']}/cancel", headers=api.auth)
    listed = api.client.get("/api/v1/backfills").json()["result"]
    assert [b["id"] for b in listed] == [second["id"], first["id"]]
    running = api.client.get("/api/v1/backfills", params={"state": "running"}).json()["result"]
    assert [b["id"] for b in running] == [second["id"]]
    of_one = api.client.get("/api/v1/backfills", params={"config_id": one}).json()["result"]
    assert [b["id"] for b in of_one] == [first["id"]]
    assert_error(
        api.client.get("/api/v1/backfills", params={"state": "sleeping"}), 400, "state", "running"
    )
    assert_error(
        api.client.get("/api/v1/backfills", params={"sort": "id"}), 400, "sort", "unknown filter"
    )
    assert_error(
        api.client.get("/api/v1/backfills", params={"limit": "-1"}), 400, "limit", "integer"
    )
    assert api.client.get("/api/v1/backfills/abc").status_code == 404
    assert api.client.get("/api/v1/backfills/99999").status_code == 404


def test_a_config_whose_templates_are_slow_holds_no_write_turn_for_long(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stepd.services.backfills as backfills_module

    # Each feed transaction stops after FEED_SECONDS and planning after PLAN_SECONDS; both
    # are made tiny here so that a normal config trips them.
    config_id = create_config(api, SOUP_DEP, name="soup-slow")
    monkeypatch.setattr(backfills_module, "PLAN_SECONDS", 0.0)
    body = {"params": {"date": {"from": "2019-01-01", "to": "2019-12-31"}}, "dry_run": True}
    assert_error(backfill(api, config_id, body), 400, "params", "planning stopped after")
    monkeypatch.setattr(backfills_module, "PLAN_SECONDS", 60.0)
    monkeypatch.setattr(backfills_module, "FEED_SECONDS", 0.0)
    result = started(api, config_id, {"params": JANUARY, "max_in_flight": 10})
    assert result["made"] == 1  # one task per transaction, then the next round
    assert service(api).feed().made == 1
    assert get(api, result["id"])["made"] == 2
