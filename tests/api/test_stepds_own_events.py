"""`clock` and `schedule` events are stepd's own ticks: a user who could send one would fire
what waits for the clock or a schedule whenever they liked. Only an admin may (a test,
a repair); anyone else gets a 403 naming the event, and nothing of the batch is stored."""

from __future__ import annotations

import pytest
from conftest import Api, make_token

EVENTS = "/api/v1/events"


@pytest.mark.parametrize("name", ["clock", "schedule"])
def test_only_an_admin_sends_a_tick(api: Api, name: str) -> None:
    batch = {"events": [{"name": "fine", "params": {}}, {"name": name, "params": {"x": "1"}}]}
    refused = api.client.post(EVENTS, json=batch, headers=api.auth)
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["field"] == "events" and f"events named {name!r} are stepd's own" in body["message"]
    assert api.client.get(EVENTS, params={"name": "fine"}).json()["result"] == []  # nothing
    admin = {"Authorization": f"OAuth {make_token(api.store, 'ops', admin=True)}"}
    sent = api.client.post(EVENTS, json=batch, headers=admin)
    assert sent.status_code == 200, sent.text
    assert len(sent.json()["ids"]) == 2


def test_other_names_are_anyones(api: Api) -> None:
    for name in ("clocks", "scheduleReady", "Clock"):
        sent = api.client.post(EVENTS, json={"events": [{"name": name}]}, headers=api.auth)
        assert sent.status_code == 200, (name, sent.text)
    for bad in ({"clock": 1}, ["clock"], 7):  # not a name at all: the 400 names it
        sent = api.client.post(EVENTS, json={"events": [{"name": bad}]}, headers=api.auth)
        assert sent.status_code == 400 and sent.json()["field"] == "events[0].name", sent.text
