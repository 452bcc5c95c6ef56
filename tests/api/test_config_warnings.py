"""Warnings where chains break (issue 10): a config is stored, but the answer says when
its task type runs on no live worker, or a dependency names an event nothing sends."""

from __future__ import annotations

from conftest import Api


def _config(name: str, *deps: str, task_type: str = "ECHO_DATE") -> dict[str, object]:
    return {"name": name, "event_deps": [{"name": d} for d in deps], "task_type": task_type}


def test_a_dependency_nothing_sends_is_stored_with_a_warning(api: Api) -> None:
    made = api.client.post("/api/v1/configs", json=_config("c", "soupDone"), headers=api.auth)
    assert made.status_code == 200, made.text
    warnings = made.json()["warnings"]
    assert any("no worker has announced task type 'ECHO_DATE'" in w for w in warnings)
    (dep,) = [w for w in warnings if "no event named" in w]
    assert "'soupDone' has been stored, described or reported" in dep
    assert "finished tasks report 'taskEvent'" in dep
    # Once such an event exists, or when the dependency is the status event, no warning.
    sent = api.client.post(
        "/api/v1/events", json={"events": [{"name": "soupDone", "params": {}}]}, headers=api.auth
    )
    assert sent.status_code == 200, sent.text
    for name, deps in (("d", ("soupDone",)), ("e", ("taskEvent",))):
        again = api.client.post("/api/v1/configs", json=_config(name, *deps), headers=api.auth)
        assert not [w for w in again.json()["warnings"] if "no event named" in w], again.text
    # PUT and validate say the same.
    config_id = made.json()["id"]
    put = api.client.put(
        f"/api/v1/configs/{config_id}", json=_config("c", "neverSent"), headers=api.auth
    )
    assert put.status_code == 200 and any("'neverSent'" in w for w in put.json()["warnings"])
    checked = api.client.post(
        "/api/v1/configs/validate", json={"configs": [_config("v", "neverSent")]}
    ).json()["result"]
    assert checked[0]["ok"] is True
    assert any("'neverSent'" in w for w in checked[0]["warnings"])
