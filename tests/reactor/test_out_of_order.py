"""Events the reactor evaluates out of seq order (a PostgreSQL commit that lands late) still
report the newest event for each dependency, as SPEC section 2's firings do (issue 3)."""

from __future__ import annotations

from conftest import Api
from reactor_helpers import config_entry, create_config, dep, react, send, set_event_state, story

from stepd.domain.events import EventState


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
