"""Templated semaphore names in configs (issue 12, per-key concurrency) through the API
on every store: what is refused at save, what each firing's task takes, and a name that
renders badly ending that firing with an error on its trigger while the others fire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import Api
from reactor_helpers import (
    config_body,
    config_entry,
    create_config,
    dep,
    post_config,
    react,
    send,
    story,
    task_rows,
)

EVENT = "ytDayClosed"
CLUSTER_DEP = dep(EVENT, cluster="~", date="~")


def refused(response: httpx.Response, field: str, *words: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field, body
    for word in words:
        assert word in body["message"], body


@pytest.mark.parametrize(
    ("semaphores", "field", "words"),
    [
        ([{"name": "yt-{{ cluster"}], "semaphores[0].name", ("does not parse",)),
        ([{"name": "yt-{{ cluster }}", "weight": 2}], "semaphores[0].weight", ("capacity (1)",)),
        ([{"name": "yt-{{ cluster }}", "capacity": 0}], "semaphores[0].capacity", ("from 1",)),
        ([{"name": "yt-{{ cluster }}", "capacity": "2"}], "semaphores[0].capacity", ("integer",)),
        ([{"name": "yt-{{ cluster }}", "capacity": True}], "semaphores[0].capacity", ("integer",)),
        ([{"name": "x", "limit": 1}], "semaphores[0]", ("name, weight, capacity",)),
    ],
)
def test_bad_templated_semaphores_are_refused_at_save(
    api: Api, semaphores: list[dict[str, Any]], field: str, words: tuple[str, ...]
) -> None:
    refused(post_config(api, config_body(CLUSTER_DEP, semaphores=semaphores)), field, *words)


def test_a_task_made_by_hand_cannot_template_its_semaphore(api: Api) -> None:
    body = {"type": "T", "params": {}, "semaphores": [{"name": "yt-{{ cluster }}"}]}
    response = api.client.post("/api/v1/tasks", json=body, headers=api.auth)
    refused(response, "semaphores[0].name", "no binding")


def test_each_firing_takes_the_semaphore_its_binding_names_with_the_capacity_given(
    api: Api,
) -> None:
    uses = [{"name": "yt-{{ cluster }}", "weight": 2, "capacity": 3}, {"name": "global"}]
    config_id = create_config(api, CLUSTER_DEP, name="per-cluster", semaphores=uses)
    config = api.client.get(f"/api/v1/configs/{config_id}").json()["result"]
    assert config["semaphores"] == [
        {"name": "yt-{{ cluster }}", "weight": 2, "capacity": 3},
        {"name": "global", "weight": 1},
    ]
    send(api, EVENT, cluster="hahn", date="2019-01-01")
    send(api, EVENT, cluster="arnold", date="2019-01-01")
    react(api.store)
    made = {t["params"]["cluster"]: t for t in task_rows(api.store)}
    assert json.loads(made["hahn"]["semaphores"]) == [
        {"name": "yt-hahn", "weight": 2, "capacity": 3},
        {"name": "global", "weight": 1},
    ]
    assert json.loads(made["arnold"]["semaphores"])[0]["name"] == "yt-arnold"
    # A run by hand and a backfill's plan render it the same way.
    run = api.client.post(
        f"/api/v1/configs/{config_id}/run",
        json={"params": {"cluster": "freud", "date": "2019-01-02"}, "dry_run": True},
        headers=api.auth,
    ).json()["result"]["task"]
    assert run["semaphores"][0] == {"name": "yt-freud", "weight": 2, "capacity": 3}
    plan = api.client.post(
        f"/api/v1/configs/{config_id}/backfill",
        json={"params": {"cluster": ["a", "b"], "date": "2019-01-03"}, "dry_run": True},
        headers=api.auth,
    ).json()["result"]
    assert [t["semaphores"][0]["name"] for t in plan["tasks"]] == ["yt-a", "yt-b"]


def test_a_name_that_renders_badly_fails_its_firing_only(api: Api) -> None:
    bad = create_config(
        api, CLUSTER_DEP, name="bad-name", semaphores=[{"name": "{{ cluster[:0] }}"}]
    )
    good = create_config(api, CLUSTER_DEP, name="good-name", task_type="GOOD")
    first = send(api, EVENT, cluster="hahn", date="2019-01-01")
    react(api.store)
    assert [t["type"] for t in task_rows(api.store)] == ["GOOD"]
    told = story(api, first)
    (fired,) = config_entry(told, bad)["fired"]
    assert fired["task_id"] is None
    assert "semaphores[0].name" in fired["error"] and "no semaphore name" in fired["error"]
    assert config_entry(told, good)["fired"][0]["task_id"] is not None
