"""The original STEP's own matching cases (issue 3, SPEC section 2), through the HTTP API.

Configs and events go in by HTTP; the reactor is run explicitly and
deterministically (`Reactor(store).run_once()`); what happened is read back from
the event story, and the tasks from their table.
"""

from __future__ import annotations

from datetime import timedelta

from conftest import Api
from reactor_helpers import (
    CRYPTA,
    HUMAN_MATCHING,
    SOUP,
    config_entry,
    create_config,
    dep,
    event_state,
    react,
    send,
    set_event_created,
    set_event_state,
    story,
    task_rows,
    trigger_count,
)

from stepd.domain.events import EventState, parse_event_id
from stepd.reactor.reactor import Reactor
from stepd.timeutil import utcnow

DAY_LOAD = "mapreduce__day_load_closed"


def test_one_dep_with_a_free_param_binds_it_and_the_task_gets_exactly_the_binding(
    api: Api,
) -> None:
    config_id = create_config(
        api, dep("event1", param1="value1", param2="~"), task_type="TASK1", name="one-dep"
    )
    event_id = send(api, "event1", param1="value1", param2="value2", other="ignored")
    assert Reactor(api.store).run_once() == 1

    told = story(api, event_id)
    assert told["event"]["_id"] == event_id
    assert told["event"]["state"] == "PROCESSED"
    [produced] = told["produced_tasks"]
    assert produced["params"] == {"param2": "value2"}
    assert produced["task_type"] == "TASK1"
    assert produced["config_id"] == config_id
    assert produced["config_name"] == "one-dep"
    assert produced["status"] == "ENQUEUED"
    entry = config_entry(told, config_id)
    assert entry["outcome"] == "fired"
    [fired] = entry["fired"]
    assert fired["binding"] == {"param2": "value2"}
    assert fired["task_id"] == produced["sandbox_task_id"]

    [task] = task_rows(api.store)
    assert task["id"] == produced["sandbox_task_id"]
    assert task["params"] == {"param2": "value2"}
    assert task["status"] == "ENQUEUED"
    assert task["type"] == "TASK1"
    assert task["event_seq"] == parse_event_id(event_id)
    assert task["config_version"] == 1


def test_json_null_is_a_free_param_like_tilde(api: Api) -> None:
    create_config(api, dep("event1", param1="value1", param2=None), task_type="TASK1")
    send(api, "event1", param1="value1", param2="value2")
    react(api.store)
    assert [t["params"] for t in task_rows(api.store)] == [{"param2": "value2"}]


def test_wrong_fixed_value_does_not_fire_and_the_story_says_which_param_differed(
    api: Api,
) -> None:
    config_id = create_config(api, dep("event1", param1="value1", param2="~"), task_type="TASK1")
    event_id = send(api, "event1", param1="value01", param2="value2")
    react(api.store)

    assert task_rows(api.store) == []
    told = story(api, event_id)
    assert told["produced_tasks"] == []
    entry = config_entry(told, config_id)
    assert entry["outcome"] == "not_matched"
    [why] = entry["not_matched"]
    assert why["param"] == "param1"
    assert why["expected"] == "value1"
    assert why["actual"] == "value01"


def test_two_deps_with_one_missing_wait_and_the_story_lists_the_missing_dep(api: Api) -> None:
    config_id = create_config(
        api,
        dep("event1", param1="value1", date="~"),
        dep("event2", param3="value3", date="~"),
        task_type="TASK2",
    )
    event_id = send(api, "event1", param1="value1", date="2016-01-01")
    react(api.store)

    assert task_rows(api.store) == []
    entry = config_entry(story(api, event_id), config_id)
    assert entry["outcome"] == "waiting"
    [waiting] = entry["waiting"]
    assert waiting["binding"] == {"date": "2016-01-01"}
    [missing] = waiting["missing"]
    assert missing["name"] == "event2"
    assert missing["params"] == {"param3": "value3", "date": "~"}


def test_two_deps_joined_on_a_free_param_fire_with_the_joined_binding(api: Api) -> None:
    config_id = create_config(
        api,
        dep("event1", param1="value1", date="~"),
        dep("event2", param3="value3", date="~", param4="~"),
        task_type="TASK2",
    )
    first = send(api, "event1", param1="value1", date="2016-01-01")
    other_day = send(api, "event2", param3="value3", date="2016-01-02", param4="x")
    react(api.store)
    assert task_rows(api.store) == []
    assert config_entry(story(api, other_day), config_id)["outcome"] == "waiting"

    second = send(api, "event2", param3="value3", date="2016-01-01", param4="y")
    react(api.store)

    [task] = task_rows(api.store)
    assert task["params"] == {"date": "2016-01-01", "param4": "y"}
    entry = config_entry(story(api, second), config_id)
    assert entry["outcome"] == "fired"
    [fired] = entry["fired"]
    assert fired["binding"] == {"date": "2016-01-01", "param4": "y"}
    assert fired["dep_event_ids"] == [first, second]


def test_one_event_completing_two_distinct_bindings_fires_once_for_each(api: Api) -> None:
    config_id = create_config(
        api, dep("event1", date="~", cluster="~"), dep("event2", date="~"), task_type="TASK2"
    )
    send(api, "event1", date="2016-01-01", cluster="hahn")
    send(api, "event1", date="2016-01-01", cluster="arnold")
    send(api, "event1", date="2016-01-01", cluster="hahn")  # same binding again: no third
    trigger = send(api, "event2", date="2016-01-01")
    react(api.store)

    made = task_rows(api.store)
    assert sorted(t["params"]["cluster"] for t in made) == ["arnold", "hahn"]
    assert all(t["params"]["date"] == "2016-01-01" for t in made)
    fired = config_entry(story(api, trigger), config_id)["fired"]
    assert sorted(f["binding"]["cluster"] for f in fired) == ["arnold", "hahn"]


def test_operators_filter_events_without_binding(api: Api) -> None:
    create_config(
        api,
        dep(
            CRYPTA,
            taskType={"prefix": "CRYPTA_"},
            taskStatus={"in": ["SUCCESS", "DONE"]},
            environment={"not": "testing"},
            date={"regex": r"\d{4}-\d{2}-\d{2}"},
            retry={"exists": False},
        ),
        task_type="TASK1",
    )
    good = {"taskType": "CRYPTA_X", "taskStatus": "DONE", "environment": "stable",
            "date": "2019-01-01"}  # fmt: skip
    send(api, CRYPTA, **good)
    send(api, CRYPTA, **{**good, "taskType": "OTHER_X"})
    send(api, CRYPTA, **{**good, "taskStatus": "FAILURE"})
    send(api, CRYPTA, **{**good, "environment": "testing"})
    send(api, CRYPTA, **{**good, "date": "2019-01-01T00"})
    send(api, CRYPTA, **{**good, "retry": "1"})
    react(api.store)
    assert [t["params"] for t in task_rows(api.store)] == [{}]


def test_two_day_load_closed_deps_join_on_mrbasename_and_date(api: Api) -> None:
    config_id = create_config(
        api,
        dep(DAY_LOAD, logtype="access-log", mrbasename="~", date="~"),
        dep(DAY_LOAD, logtype="redir-log", mrbasename="~", date="~"),
        task_type="LOGS_JOINED",
    )
    access = send(api, DAY_LOAD, logtype="access-log", mrbasename="hahn", date="2016-01-01")
    send(api, DAY_LOAD, logtype="redir-log", mrbasename="arnold", date="2016-01-01")
    send(api, DAY_LOAD, logtype="redir-log", mrbasename="hahn", date="2016-01-02")
    react(api.store)
    assert task_rows(api.store) == []

    redir = send(api, DAY_LOAD, logtype="redir-log", mrbasename="hahn", date="2016-01-01")
    react(api.store)

    [task] = task_rows(api.store)
    assert task["params"] == {"mrbasename": "hahn", "date": "2016-01-01"}
    assert task["type"] == "LOGS_JOINED"
    [fired] = config_entry(story(api, redir), config_id)["fired"]
    assert fired["binding"] == {"mrbasename": "hahn", "date": "2016-01-01"}
    assert fired["dep_event_ids"] == [access, redir]


def test_rejected_event_no_longer_satisfies_a_join(api: Api) -> None:
    config_id = create_config(
        api, dep("event1", date="~"), dep("event2", date="~"), task_type="TASK2"
    )
    first = send(api, "event1", date="2016-01-01")
    react(api.store)
    response = api.client.post("/api/v1/reject_event", json={"id": first}, headers=api.auth)
    assert response.status_code == 200, response.text
    assert event_state(api.store, first) == "REJECTED"

    second = send(api, "event2", date="2016-01-01")
    react(api.store)

    assert task_rows(api.store) == []
    entry = config_entry(story(api, second), config_id)
    assert entry["outcome"] == "waiting"
    assert [m["name"] for w in entry["waiting"] for m in w["missing"]] == ["event1"]


def test_a_re_reported_status_fires_again_as_a_second_task(api: Api) -> None:
    config_id = create_config(
        api, dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date="~"), name="after-soup"
    )
    params = {"taskType": SOUP, "taskStatus": "SUCCESS", "date": "2019-01-01"}
    first = send(api, CRYPTA, **params)
    react(api.store)
    again = send(api, CRYPTA, **params)
    react(api.store)

    made = task_rows(api.store)
    assert [t["params"] for t in made] == [{"date": "2019-01-01"}] * 2
    assert [t["type"] for t in made] == [HUMAN_MATCHING] * 2
    first_tasks = [t["sandbox_task_id"] for t in story(api, first)["produced_tasks"]]
    again_tasks = [t["sandbox_task_id"] for t in story(api, again)["produced_tasks"]]
    assert first_tasks == [made[0]["id"]]
    assert again_tasks == [made[1]["id"]]
    assert config_entry(story(api, again), config_id)["outcome"] == "fired"


def test_a_re_reported_dependency_completes_a_join_again(api: Api) -> None:
    create_config(api, dep("event1", date="~"), dep("event2", date="~"), task_type="TASK2")
    send(api, "event1", date="2016-01-01")
    send(api, "event2", date="2016-01-01")
    react(api.store)
    send(api, "event2", date="2016-01-01")
    react(api.store)
    assert [t["params"] for t in task_rows(api.store)] == [{"date": "2016-01-01"}] * 2


def test_evaluating_an_event_twice_launches_no_second_task(api: Api) -> None:
    create_config(api, dep("event1", param2="~"), task_type="TASK1")
    event_id = send(api, "event1", param2="value2")
    assert Reactor(api.store).run_once() == 1
    assert Reactor(api.store).run_once() == 0  # nothing NEW: nothing evaluated
    assert len(task_rows(api.store)) == 1

    # As if a crash had left it NEW after its firing was recorded (or a replica re-reads it).
    set_event_state(api.store, event_id, EventState.NEW)
    assert Reactor(api.store).run_once() == 1

    assert len(task_rows(api.store)) == 1
    assert trigger_count(api.store) == 1
    assert event_state(api.store, event_id) == "PROCESSED"
    assert len(story(api, event_id)["produced_tasks"]) == 1


def test_disabled_config_does_not_fire_and_the_story_says_disabled(api: Api) -> None:
    config_id = create_config(api, dep("event1", param2="~"), task_type="TASK1", enabled=False)
    event_id = send(api, "event1", param2="value2")
    react(api.store)

    assert task_rows(api.store) == []
    told = story(api, event_id)
    assert told["produced_tasks"] == []
    assert config_entry(told, config_id)["outcome"] == "disabled"


def test_task_params_templates_render_from_the_binding_and_the_matched_events(api: Api) -> None:
    create_config(
        api,
        dep(CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date="~"),
        dep("event2", date="~"),
        task_params={
            "day": "{{ date }}",
            "upstream": "{{ deps[0].params.taskType }}",
            "joined": "{{ deps[1].params.extra }}-{{ binding.date }}",
            "fixed": 7,
        },
    )
    send(api, CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date="2019-01-01")
    send(api, "event2", date="2019-01-01", extra="e2")
    react(api.store)

    [task] = task_rows(api.store)
    assert task["params"] == {
        "date": "2019-01-01",
        "day": "2019-01-01",
        "upstream": SOUP,
        "joined": "e2-2019-01-01",
        "fixed": 7,
    }


def test_template_that_fails_at_fire_time_makes_no_task_and_the_story_shows_the_error(
    api: Api,
) -> None:
    config_id = create_config(
        api, dep("event1", param2="~"), task_type="TASK1", task_params={"x": "{{ missing_var }}"}
    )
    event_id = send(api, "event1", param2="value2")
    react(api.store)  # must not raise: a template error is a story, not a crash

    assert task_rows(api.store) == []
    assert event_state(api.store, event_id) == "PROCESSED"
    told = story(api, event_id)
    assert told["produced_tasks"] == []
    entry = config_entry(told, config_id)
    [fired] = entry["fired"]
    assert fired["task_id"] is None
    assert fired["binding"] == {"param2": "value2"}
    assert "missing_var" in fired["error"]
    assert "task_params.x" in fired["error"]


def test_window_excludes_an_old_joined_event_but_joins_a_recent_one(api: Api) -> None:
    windowed = create_config(
        api, dep("event1", date="~"), dep("event2", date="~"), task_type="TASK2", window="1d",
        name="windowed",
    )  # fmt: skip
    unbounded = create_config(
        api, dep("event1", date="~"), dep("event2", date="~"), task_type="TASK2",
        name="unbounded",
    )  # fmt: skip
    old = send(api, "event1", date="2016-01-01")
    recent = send(api, "event1", date="2016-01-02")
    react(api.store)
    set_event_created(api.store, old, utcnow() - timedelta(days=3))
    set_event_created(api.store, recent, utcnow() - timedelta(hours=12))

    late = send(api, "event2", date="2016-01-01")
    in_time = send(api, "event2", date="2016-01-02")
    react(api.store)

    told = story(api, late)
    assert config_entry(told, unbounded)["outcome"] == "fired"
    assert config_entry(told, windowed)["outcome"] == "waiting"
    assert [t["config_id"] for t in told["produced_tasks"]] == [unbounded]
    told = story(api, in_time)
    assert sorted(t["config_id"] for t in told["produced_tasks"]) == sorted([windowed, unbounded])
    assert len(task_rows(api.store)) == 3
