"""`GET /api/v1/events?fired=true` (only events whose firings made a task) and
`include=fired` (what each event fired), on every store; bad values are a 400 naming them."""

from __future__ import annotations

from typing import Any

from api_helpers import assert_error, event, list_events, send
from conftest import Api

from stepd import shapes
from stepd.reactor.reactor import Reactor

DEP = {"name": "soupDone", "params": {"status": "SUCCESS", "date": "~"}}


def create_config(api: Api, name: str, dep: dict[str, Any], **fields: object) -> None:
    body = {"name": name, "event_deps": [dep], **fields}
    response = api.client.post("/api/v1/configs", json=body, headers=api.auth)
    assert response.status_code == 200, response.text


def react(api: Api) -> None:
    """Evaluate every NEW event, as the background reactor would."""
    while Reactor(api.store).run_once() > 0:
        pass


def _scenario(api: Api) -> dict[str, str]:
    """Two events that fire, one that matches nothing, one of another name, one not yet
    evaluated; a config whose template fails makes an error, not a task."""
    create_config(api, "after-soup", DEP, task_type="ECHO_DATE")
    fired = send(api, event("soupDone", status="SUCCESS", date="2019-01-01"))[0]
    unmatched = send(api, event("soupDone", status="FAILURE", date="2019-01-01"))[0]
    other = send(api, event("otherEvent", date="2019-01-01"))[0]
    fired_again = send(api, event("soupDone", status="SUCCESS", date="2019-01-02"))[0]
    react(api)
    fresh = send(api, event("soupDone", status="SUCCESS", date="2019-01-03"))[0]  # NEW
    return {
        "fired": fired,
        "unmatched": unmatched,
        "other": other,
        "fired_again": fired_again,
        "fresh": fresh,
    }


def test_fired_lists_only_the_events_whose_firings_made_tasks(api: Api) -> None:
    ids = _scenario(api)
    assert [e["_id"] for e in list_events(api, fired="true")] == [ids["fired"], ids["fired_again"]]
    newest = list_events(api, fired="true", sort="-_id", limit=1)
    assert [e["_id"] for e in newest] == [ids["fired_again"]]
    assert [e["_id"] for e in list_events(api, fired="1", skip=1)] == [ids["fired_again"]]
    # With the other filters: a name, a param, a state.
    assert list_events(api, fired="true", name="otherEvent") == []
    by_param = list_events(api, fired="true", name="soupDone", params__date="2019-01-02")
    assert [e["_id"] for e in by_param] == [ids["fired_again"]]
    assert list_events(api, fired="true", params__status="FAILURE") == []
    assert len(list_events(api, fired="true", state="PROCESSED")) == 2
    assert list_events(api, fired="true", state="NEW") == []
    # Without it, every event, as before (no `fired` key unless asked).
    every = list_events(api)
    assert len(every) == 5 and all("fired" not in e for e in every)


def test_include_fired_says_what_each_event_fired(api: Api) -> None:
    ids = _scenario(api)
    found = {e["_id"]: e["fired"] for e in list_events(api, include="fired")}
    assert found[ids["fired"]] == {"tasks": 1, "errors": 0}
    assert found[ids["fired_again"]] == {"tasks": 1, "errors": 0}
    for quiet in ("unmatched", "other", "fresh"):
        assert found[ids[quiet]] is None, quiet
    for shown in list_events(api, include="fired"):  # the event's keys, then `fired`
        assert list(shown)[-1] == "fired"
        assert shapes.EventWithFired.model_validate(shown).model_dump(mode="json") == shown


def test_a_firing_that_made_no_task_is_an_error_not_a_fired_event(api: Api) -> None:
    create_config(
        api, "broken-template", {"name": "badEvent", "params": {"date": "~"}},
        task_type="ECHO_DATE", task_params={"x": "{{ missing.attr }}"},
    )  # fmt: skip
    bad = send(api, event("badEvent", date="2019-01-01"))[0]
    react(api)
    assert list_events(api, fired="true", name="badEvent") == []
    (shown,) = list_events(api, include="fired", name="badEvent")
    assert shown["_id"] == bad and shown["fired"] == {"tasks": 0, "errors": 1}


def test_bad_fired_and_include_values_are_400s_naming_them(api: Api) -> None:
    for value in ("false", "yes", ""):
        body = assert_error(api.client.get("/api/v1/events", params={"fired": value}), 400)
        assert body["field"] == "fired", value
    body = assert_error(api.client.get("/api/v1/events", params={"include": "tasks"}), 400)
    assert body["field"] == "include"
