"""Events the reactor evaluates out of seq order (a PostgreSQL commit that lands late) still
report the newest event for each dependency, as SPEC section 2's firings do (issue 3)."""

from __future__ import annotations

import pytest
from conftest import Api
from reactor_helpers import config_entry, create_config, dep, react, send, set_event_state, story

from stepd.domain.events import EventState
from stepd.store import dbapi
from stepd.store import lookup as event_lookup


# A commit that lands late happens on PostgreSQL only. On SQLite writers take turns and
# seqs grow with each commit: no event can land below one already evaluated, and the
# reactor relies on that (store/lookup.py newest_processed, migration 0006).
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_event_evaluated_after_a_newer_one_records_the_newer_one_for_its_own_slot(
    api: Api,
) -> None:
    config_id = create_config(api, dep("event1", date="~"), dep("event2", date="~"))
    other = send(api, "event2", date="d")
    late = send(api, "event1", date="d")
    # Invisible to the first batch, as if its transaction had not committed yet.
    set_event_state(api.store, late, EventState.REJECTED)
    newer = send(api, "event1", date="d")
    react(api.store)
    set_event_state(api.store, late, EventState.NEW)  # its commit lands
    assert react(api.store) == 1

    [fired_newer] = config_entry(story(api, newer), config_id)["fired"]
    assert fired_newer["dep_event_ids"] == [newer, other]
    [fired_late] = config_entry(story(api, late), config_id)["fired"]
    assert fired_late["binding"] == {"date": "d"}
    assert fired_late["dep_event_ids"] == [newer, other]
    assert fired_late["task_id"] != fired_newer["task_id"]


def test_events_evaluated_in_order_record_themselves_for_their_own_slot(api: Api) -> None:
    config_id = create_config(api, dep("event1", date="~"), dep("event2", date="~"))
    other = send(api, "event2", date="d")
    first = send(api, "event1", date="d")
    second = send(api, "event1", date="d")
    react(api.store)
    for trigger in (first, second):
        [fired] = config_entry(story(api, trigger), config_id)["fired"]
        assert fired["dep_event_ids"] == [trigger, other]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_every_processed_event_lies_below_every_new_one(api: Api) -> None:
    """What newest_processed relies on there: it walks down from the oldest NEW event."""
    create_config(api, dep("event1", date="~"), dep("event2", date="~"))
    for i in range(30):
        send(api, "event1" if i % 2 else "event2", date=f"d{i % 4}")
        if i % 7 == 0:
            react(api.store)
    rejected = send(api, "event1", date="x")
    set_event_state(api.store, rejected, EventState.REJECTED)
    react(api.store)
    pending = [send(api, "event2", date="d1") for _ in range(3)]
    with api.store.read() as conn:
        rows = conn.exec_driver_sql("SELECT seq, state FROM events ORDER BY seq").all()
        newest = event_lookup.newest_processed(dbapi.Raw(conn))
    processed = [seq for seq, state in rows if state == "PROCESSED"]
    new = [seq for seq, state in rows if state == "NEW"]
    assert len(new) == len(pending) and max(processed) < min(new)
    assert newest == max(processed)
