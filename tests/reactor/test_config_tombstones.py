"""A deleted config keeps its last version as a tombstone (issue 11): its address answers
404 with `deleted: true` and that version, `?deleted=1` lists it, past stories and its tasks
still name it, it never fires again, and its name is free for a new config; on every store.
Also the migration that made tombstones of the configs deleted before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from conftest import Api, fresh_database, make_token
from reactor_helpers import CRYPTA, HUMAN_MATCHING, SOUP, create_config, react, send

from stepd.domain.configs import ActionConfig, parse_config
from stepd.store import Store, open_store
from stepd.store import configs as config_store
from stepd.store.migrate import alembic_config
from stepd.timeutil import utcnow

SOUP_DEP = {"name": CRYPTA, "params": {"taskType": SOUP, "taskStatus": "SUCCESS", "date": "~"}}
SOUP_EVENT = {"taskType": SOUP, "taskStatus": "SUCCESS"}


def _delete(api: Api, config_id: str, auth: dict[str, str] | None = None) -> None:
    answer = api.client.delete(f"/api/v1/configs/{config_id}", headers=auth or api.auth)
    assert answer.status_code == 200, answer.text


def _tasks(api: Api, config_id: str) -> list[dict[str, Any]]:
    answer = api.client.get("/api/v1/tasks", params={"config_id": config_id})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["result"]
    return found


def test_a_deleted_config_answers_404_with_its_last_version(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="to-delete", priority=3)
    put = api.client.put(
        f"/api/v1/configs/{config_id}",
        json={"name": "to-delete", "event_deps": [SOUP_DEP], "task_type": HUMAN_MATCHING,
              "priority": 7},
        headers=api.auth,
    )  # fmt: skip
    assert put.status_code == 200, put.text
    _delete(api, config_id)

    answer = api.client.get(f"/api/v1/configs/{config_id}")
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == "not_found" and body["field"] == "id" and body["deleted"] is True
    assert "deleted by robot-crypta" in body["message"]
    last = body["result"]
    assert (last["_id"], last["name"], last["author"]) == (config_id, "to-delete", "robot-crypta")
    assert (last["version"], last["priority"], last["deleted"]) == (2, 7, True)
    assert last["deleted_by"] == "robot-crypta" and last["deleted_at"]
    # Its history is whole: created, updated, deleted.
    history = api.client.get(f"/api/v1/configs/{config_id}/history").json()["result"]
    assert [h["action"] for h in history] == ["created", "updated", "deleted"]
    # A change of a deleted config is the same 404; nothing is written.
    whole = {"name": "to-delete", "event_deps": [SOUP_DEP], "task_type": HUMAN_MATCHING}
    for method, path, sent in [
        ("PUT", "", whole), ("DELETE", "", None), ("POST", "/disable", None),
        ("POST", "/enable", None), ("POST", "/run", {"params": {"date": "2019-01-01"}}),
    ]:  # fmt: skip
        again = api.client.request(
            method, f"/api/v1/configs/{config_id}{path}", json=sent, headers=api.auth
        )
        assert again.status_code == 404, (method, path, again.text)
        assert again.json()["deleted"] is True
    assert len(api.client.get(f"/api/v1/configs/{config_id}/history").json()["result"]) == 3
    # An id that never was is a plain 404.
    never = api.client.get("/api/v1/configs/" + "0" * 23 + "f")
    assert never.status_code == 404 and "deleted" not in never.json()


def test_deleted_1_lists_the_tombstones_and_the_normal_list_does_not(api: Api) -> None:
    kept = create_config(api, SOUP_DEP, name="kept")
    gone = create_config(api, SOUP_DEP, name="gone")
    theirs = create_config(api, SOUP_DEP, name="theirs-gone", token=make_token(api.store, "bob"))
    _delete(api, gone)
    _delete(api, theirs, {"Authorization": f"OAuth {make_token(api.store, 'bob')}"})

    listed = api.client.get("/api/v1/configs").json()["result"]
    assert [c["_id"] for c in listed] == [kept]
    assert all("deleted" not in c for c in listed)  # live answers keep their keys
    tombs = api.client.get("/api/v1/configs", params={"deleted": "1"}).json()["result"]
    assert [(c["_id"], c["name"], c["author"]) for c in tombs] == [
        (gone, "gone", "robot-crypta"), (theirs, "theirs-gone", "bob"),
    ]  # fmt: skip
    assert all(c["deleted"] is True for c in tombs)
    mine = api.client.get("/api/v1/configs", params={"deleted": "1", "author": "bob"})
    assert [c["_id"] for c in mine.json()["result"]] == [theirs]
    named = api.client.get("/api/v1/configs", params={"deleted": "true", "name": "gone"})
    assert [c["_id"] for c in named.json()["result"]] == [gone]
    assert api.client.get("/api/v1/configs", params={"deleted": "0"}).json()["result"] == listed
    bad = api.client.get("/api/v1/configs", params={"deleted": "maybe"})
    assert bad.status_code == 400 and bad.json()["field"] == "deleted"


def test_a_deleted_config_never_fires_and_its_name_can_be_taken_again(api: Api) -> None:
    old = create_config(api, SOUP_DEP, name="matching")
    first = send(api, CRYPTA, **SOUP_EVENT, date="2019-01-01")
    react(api.store)
    [task] = _tasks(api, old)
    _delete(api, old)

    send(api, CRYPTA, **SOUP_EVENT, date="2019-01-02")
    react(api.store)
    assert [t["id"] for t in _tasks(api, old)] == [task["id"]]

    new = create_config(api, SOUP_DEP, name="matching")  # configs as code re-creates by name
    assert new != old
    third = send(api, CRYPTA, **SOUP_EVENT, date="2019-01-03")
    react(api.store)
    [made] = _tasks(api, new)
    assert made["params"] == {"date": "2019-01-03"}

    # The first event's story still names the deleted config that fired, first; the new
    # config of that name would fire on it now, but did not then.
    told = api.client.get(f"/api/v1/event_story/{first}").json()["result"]
    entry, newer = told["configs"]
    assert (entry["config_id"], entry["config_name"], entry["outcome"]) == (
        old,
        "matching",
        "fired",
    )
    assert (newer["config_id"], newer["outcome"]) == (new, "not_fired")
    assert entry["deleted"] is True and entry["deleted_by"] == "robot-crypta"
    assert entry["fired"][0]["task_id"] == task["id"] and entry["fired"][0]["config_version"] == 1
    [produced] = told["produced_tasks"]
    assert (produced["config_id"], produced["config_name"]) == (old, "matching")
    # The third's story names the new config alone: the tombstone did not fire on it.
    told = api.client.get(f"/api/v1/event_story/{third}").json()["result"]
    assert [(c["config_id"], c["outcome"]) for c in told["configs"]] == [(new, "fired")]
    assert "deleted" not in told["configs"][0]


def test_a_task_names_its_config_also_once_deleted(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="named")
    send(api, CRYPTA, **SOUP_EVENT, date="2019-01-01")
    react(api.store)
    [task] = _tasks(api, config_id)
    shown = api.client.get(f"/api/v1/tasks/{task['id']}").json()["result"]
    assert shown["config"] == {
        "id": config_id, "name": "named", "author": "robot-crypta", "version": 1, "deleted": False,
    }  # fmt: skip

    _delete(api, config_id)
    shown = api.client.get(f"/api/v1/tasks/{task['id']}").json()["result"]
    assert shown["config"]["name"] == "named" and shown["config"]["deleted"] is True
    # A task made by hand has no `config` key, as before.
    made = api.client.post("/api/v1/tasks", json={"type": "X"}, headers=api.auth).json()
    by_hand = made["result"]["id"]
    assert "config" not in api.client.get(f"/api/v1/tasks/{by_hand}").json()["result"]


def test_an_admin_deletes_someone_elses_config_and_the_tombstone_says_who(api: Api) -> None:
    config_id = create_config(api, SOUP_DEP, name="theirs")
    admin = {"Authorization": f"OAuth {make_token(api.store, 'root', admin=True)}"}
    _delete(api, config_id, admin)
    last = api.client.get(f"/api/v1/configs/{config_id}").json()["result"]
    assert (last["author"], last["deleted_by"]) == ("robot-crypta", "root")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_makes_tombstones_of_configs_deleted_before_it(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        store = open_store(url)
        try:
            seq = _deleted_config(store)
            _alembic(store, "downgrade", "0012")  # as before tombstones: only its history
            _alembic(store, "upgrade", "head")
            with store.read() as conn:
                tomb = config_store.get_tombstone(conn, seq)
                assert config_store.get_config(conn, seq) is None
        finally:
            store.close()
    assert tomb is not None and tomb.deleted is not None
    assert (tomb.spec.name, tomb.author, tomb.version, tomb.spec.priority) == ("old", "u", 2, 5)
    assert tomb.deleted.by == "admin"


def _deleted_config(store: Store) -> int:
    now = utcnow()
    spec = parse_config({"name": "old", "task_type": "T", "event_deps": [{"name": "e"}]})
    with store.write() as conn:
        stored = config_store.insert_config(
            conn,
            ActionConfig(id="", seq=0, author="u", version=1, spec=spec, created=now, updated=now),
            actor="u",
        )
        changed = parse_config({**spec.to_json(), "priority": 5})
        stored = config_store.update_config(
            conn, ActionConfig(**{**stored.__dict__, "spec": changed}), actor="u", change={}
        )
        config_store.delete_config(conn, stored, actor="admin")
    return stored.seq


def _alembic(store: Store, action: str, revision: str) -> None:
    config = alembic_config()
    with store.write() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)
