"""One config that fails never halts the reactor (issue 9, item 1).

Each way a config can fail at fire time (a template that raises, a number a task row
cannot hold, a window too long for a date, an evaluation that raises, a statement the
database refuses mid-transaction) is tried next to a good config on the same events:
the bad config's trigger records the error and makes no task, the good one fires, every
event is PROCESSED, the story and /metrics show the error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Api
from reactor_helpers import (
    config_entry,
    create_config,
    dep,
    event_state,
    get_config,
    react,
    send,
    set_event_state,
    story,
    task_rows,
)
from sqlalchemy import select, update

from stepd.domain.events import EventState, parse_event_id
from stepd.reactor import reactor as reactor_module
from stepd.reactor.reactor import Reactor
from stepd.store import dbapi
from stepd.store import tasks as task_store
from stepd.store.engine import Store
from stepd.store.queries import Query
from stepd.store.schema import config_generation, configs, triggers

EVENT = "nightlyDone"
OTHER = "dataReady"
GOOD_TYPE = "GOOD_TASK"
BAD_TYPE = "BAD_TASK"

# A statement that fails in the database on both stores (NOT NULL) without being an
# error of the database itself: on PostgreSQL it aborts the transaction.
FAILING_STATEMENT = Query(
    name="test.failing", sql="INSERT INTO triggers (config_seq) VALUES (NULL)"
)


def _stored_body(store: Store, config_id: str, **changes: object) -> None:
    """Rewrite a stored config's body in the table, past the API's validation: what a
    config saved before the limits existed looks like."""
    seq = parse_event_id(config_id)
    with store.write() as conn:
        body = json.loads(
            conn.execute(select(configs.c.body).where(configs.c.seq == seq)).scalar_one()
        )
        body.update(changes)
        conn.execute(update(configs).where(configs.c.seq == seq).values(body=json.dumps(body)))
        conn.execute(
            update(config_generation).values(generation=config_generation.c.generation + 1)
        )


def _bad_template(source: str) -> Callable[[Api], str]:
    def make(api: Api) -> str:
        return create_config(api, dep(EVENT), task_type=BAD_TYPE, task_params={"x": source})

    return make


def _stored_out_of_range(**changes: object) -> Callable[[Api], str]:
    def make(api: Api) -> str:
        config_id = create_config(api, dep(EVENT), task_type=BAD_TYPE)
        _stored_body(api.store, config_id, **changes)
        # Such a config still loads: the API reads it back as stored.
        assert {k: get_config(api, config_id)[k] for k in changes} == changes
        return config_id

    return make


def _stored_window(api: Api) -> str:
    # A join: the window is used to look up the other dependency's events.
    send(api, OTHER)
    react(api.store)  # evaluated before the config exists: only the later events fail
    config_id = create_config(api, dep(EVENT), dep(OTHER), task_type=BAD_TYPE)
    _stored_body(api.store, config_id, window="99999999999999999999d")
    return config_id


def _stored_lookahead(api: Api) -> str:
    # A regex saved before regexes ran in RE2: it loads, and RE2 cannot run it.
    config_id = create_config(api, dep(EVENT, day={"regex": "[0-9]+"}), task_type=BAD_TYPE)
    _stored_body(api.store, config_id, event_deps=[dep(EVENT, day={"regex": "(?=[0-9])[0-9]+"})])
    return config_id


WAYS: dict[str, tuple[Callable[[Api], str], str]] = {
    "stored_regex_re2_refuses": (_stored_lookahead, "not supported by RE2"),
    "template_zero_division": (_bad_template("{{ 1/0 }}"), "ZeroDivisionError"),
    "template_huge_power": (_bad_template("{{ 10**5000 }}"), "a power would be over"),
    "template_huge_range": (_bad_template("{{ range(100001)|list }}"), "range() would have"),
    "template_huge_string": (_bad_template("{{ 'a'*150000000 }}"), "a repeated value"),
    "stored_priority_2_70": (_stored_out_of_range(priority=2**70), "priority is"),
    "stored_kill_timeout_2_70": (_stored_out_of_range(kill_timeout=2**70), "kill_timeout is"),
    "stored_weight_2_40": (
        _stored_out_of_range(semaphores=[{"name": "s", "weight": 2**40}]),
        "semaphores[0].weight is",
    ),
    "stored_huge_window": (_stored_window, "evaluation failed: OverflowError"),
}


def _errors(store: Store, config_id: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(
            select(triggers).where(triggers.c.config_seq == parse_event_id(config_id))
        ).all()
    return [dict(r._mapping) for r in rows]


def _metric(api: Api, name: str) -> float:
    response = api.client.get("/metrics")
    assert response.status_code == 200, response.text
    found = re.search(rf"^{name} (\S+)$", response.text, re.MULTILINE)
    assert found is not None, response.text
    return float(found.group(1))


def _check_outcome(api: Api, bad: str, good: str, first: str, second: str, why: str) -> None:
    # Both events were evaluated, in the batch the bad config failed in.
    assert event_state(api.store, first) == "PROCESSED"
    assert event_state(api.store, second) == "PROCESSED"
    # The good config fired on each; the bad one made no task.
    made = task_rows(api.store)
    assert [t["type"] for t in made] == [GOOD_TYPE, GOOD_TYPE], made
    # The bad config's triggers, one per event, each with the error.
    recorded = _errors(api.store, bad)
    assert len(recorded) == 2, recorded
    for row in recorded:
        assert row["task_id"] is None and why in row["error"], row
    # The story says so.
    told = story(api, first)
    entry = config_entry(told, bad)
    assert entry["outcome"] == "fired", entry
    (fired,) = entry["fired"]
    assert fired["task_id"] is None and why in fired["error"], fired
    good_entry = config_entry(told, good)
    assert good_entry["fired"][0]["task_id"] is not None, good_entry
    assert _metric(api, "stepd_trigger_errors_total") == 2


@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_failing_config_records_its_error_and_the_others_fire(api: Api, way: str) -> None:
    make_bad, why = WAYS[way]
    good = create_config(api, dep(EVENT), task_type=GOOD_TYPE)
    bad = make_bad(api)
    first = send(api, EVENT, day="1")
    second = send(api, EVENT, day="2")
    react(api.store)
    _check_outcome(api, bad, good, first, second, why)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_in_transaction_path_isolates_a_failing_config_too(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path SQLite takes when its plan went stale (and PostgreSQL always takes).
    monkeypatch.setattr(Reactor, "_planned", lambda self, snapshot: None)
    good = create_config(api, dep(EVENT), task_type=GOOD_TYPE)
    bad = _bad_template("{{ 1/0 }}")(api)
    first, second = send(api, EVENT), send(api, EVENT, n=2)
    react(api.store)
    _check_outcome(api, bad, good, first, second, "ZeroDivisionError")


def _raising_for(fail: Callable[..., object]) -> Callable[..., Any]:
    """The matcher, failing (through `fail`) for the config with a window of 7 s."""
    real = reactor_module.evaluate

    def evaluate(deps: Any, trigger: Any, lookup: Any, **options: Any) -> Any:
        if options.get("window_seconds") == 7.0:
            fail(lookup)
        return real(deps, trigger, lookup, **options)

    return evaluate


def _raise_python(lookup: object) -> None:
    raise RuntimeError("the matcher broke")


def _raise_in_database(lookup: Any) -> None:
    # A statement the database refuses: on PostgreSQL the transaction is aborted.
    dbapi.run(lookup.conn, FAILING_STATEMENT)


@pytest.mark.parametrize(
    ("fail", "why"),
    [(_raise_python, "RuntimeError: the matcher broke"), (_raise_in_database, "evaluation failed")],
    ids=["python", "database"],
)
def test_an_evaluation_that_raises_blocks_no_other_config_or_event(
    api: Api, monkeypatch: pytest.MonkeyPatch, fail: Callable[..., None], why: str
) -> None:
    good = create_config(api, dep(EVENT), task_type=GOOD_TYPE)
    bad = create_config(api, dep(EVENT), task_type=BAD_TYPE, window="7s")
    monkeypatch.setattr(reactor_module, "evaluate", _raising_for(fail))
    first, second = send(api, EVENT, n=1), send(api, EVENT, n=2)
    react(api.store)
    _check_outcome(api, bad, good, first, second, why)
    # Recorded once per (config, event), under the empty binding.
    assert all(json.loads(r["binding"]) == {} for r in _errors(api.store, bad))


def test_a_task_insert_the_database_refuses_is_recorded_and_the_batch_goes_on(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the refused statement aborts the transaction: the batch is evaluated
    # again with that firing under a savepoint.
    real = task_store.insert_encoded

    def insert_encoded(conn: dbapi.Conn, **fields: Any) -> int:
        if fields["type"] == BAD_TYPE:
            dbapi.run(conn, FAILING_STATEMENT)
        return real(conn, **fields)

    monkeypatch.setattr(task_store, "insert_encoded", insert_encoded)
    good = create_config(api, dep(EVENT), task_type=GOOD_TYPE)
    bad = create_config(api, dep(EVENT), task_type=BAD_TYPE)
    first, second = send(api, EVENT, n=1), send(api, EVENT, n=2)
    react(api.store)
    _check_outcome(api, bad, good, first, second, "the task could not be stored")


def test_a_failed_firing_is_recorded_once_when_the_batch_is_evaluated_again(api: Api) -> None:
    bad = _bad_template("{{ 1/0 }}")(api)
    first = send(api, EVENT)
    react(api.store)
    # Set back to NEW (what a crash between two reactors could leave): evaluated again.
    set_event_state(api.store, first, EventState.NEW)
    react(api.store)
    assert len(_errors(api.store, bad)) == 1
    assert event_state(api.store, first) == "PROCESSED"


OUT_OF_RANGE = [
    ({"priority": 2**70}, "priority"),
    ({"priority": 1_000_001}, "priority"),
    ({"priority": -(2**70)}, "priority"),
    ({"kill_timeout": 2**70}, "kill_timeout"),
    ({"kill_timeout": 10 * 365 * 86400 + 1}, "kill_timeout"),
    ({"kill_timeout": 0}, "kill_timeout"),
    ({"max_retries": 1001}, "max_retries"),
    ({"max_retries": 2**70}, "max_retries"),
    ({"semaphores": [{"name": "s", "weight": 2**40}]}, "semaphores[0].weight"),
    ({"window": "99999999999999999999d"}, "window"),
    ({"window": "3651d"}, "window"),
    ({"window": 2**70}, "window"),
    ({"window": 1e300}, "window"),
    ({"task_type": "T" * 201}, "task_type"),
]


def test_out_of_range_values_are_refused_at_save_with_a_400_naming_the_field(api: Api) -> None:
    kept = create_config(api, dep(EVENT), task_type=GOOD_TYPE, name="kept")
    bodies = []
    for fields, field in OUT_OF_RANGE:
        body = {"event_deps": [dep(EVENT)], "task_type": BAD_TYPE, **fields}
        bodies.append(body)
        created = api.client.post("/api/v1/configs", json=body, headers=api.auth)
        assert created.status_code == 400, (fields, created.text)
        assert created.json()["field"] == field, (fields, created.json())
        replaced = api.client.put(f"/api/v1/configs/{kept}", json=body, headers=api.auth)
        assert replaced.status_code == 400, (fields, replaced.text)
        assert replaced.json()["field"] == field, (fields, replaced.json())
    validated = api.client.post("/api/v1/configs/validate", json={"configs": bodies})
    assert validated.status_code == 200, validated.text
    result = validated.json()["result"]
    assert [(r["ok"], r.get("field")) for r in result] == [
        (False, field) for _, field in OUT_OF_RANGE
    ]
    # Nothing half-written: only the first config, unchanged.
    listed = api.client.get("/api/v1/configs").json()["result"]
    assert [(c["name"], c["version"], c["task_type"]) for c in listed] == [("kept", 1, GOOD_TYPE)]


def test_the_largest_values_in_range_are_accepted_and_fire(api: Api) -> None:
    create_config(
        api,
        dep(EVENT),
        task_type=GOOD_TYPE,
        priority=1_000_000,
        kill_timeout=10 * 365 * 86400,
        max_retries=1000,
        window="3650d",
    )
    send(api, EVENT)
    react(api.store)
    (task,) = task_rows(api.store)
    assert (task["priority"], task["kill_timeout"], task["max_retries"]) == (
        1_000_000,
        10 * 365 * 86400,
        1000,
    )


def test_the_story_of_an_event_a_broken_stored_config_cannot_evaluate_says_so(api: Api) -> None:
    # The event was evaluated before the config existed: the story evaluates it afresh.
    send(api, OTHER)
    first = send(api, EVENT)
    react(api.store)
    bad = create_config(api, dep(EVENT), dep(OTHER), task_type=BAD_TYPE)
    _stored_body(api.store, bad, window="99999999999999999999d")
    entry = config_entry(story(api, first), bad)
    assert entry["outcome"] == "failed", entry
    assert "evaluation failed: OverflowError" in entry["note"], entry
