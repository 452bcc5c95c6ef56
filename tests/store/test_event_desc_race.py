"""Describing a name races with another user's first events of it: the check of who sends
the name and the new description are serialised with event inserts, on both stores (on
PostgreSQL, under read committed, the check alone would miss a batch committing during it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from stepd.errors import Forbidden
from stepd.services.event_descs import EventDescService
from stepd.store import Store
from stepd.store import event_descs as desc_store
from stepd.store import events as event_store
from stepd.store.tokens import Principal

from .contract import T0

ALICE = Principal(user="alice", is_admin=False)
NAME = "day_closed"


@contextmanager
def events_being_stored(store: Store, *, commit: bool) -> Iterator[None]:
    """Bob's first event of NAME, inserted in a transaction that stays open (on its own
    connection) until the block ends, then commits or rolls back."""
    inserted, finish = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    class Rollback(Exception):
        pass

    def bob() -> None:
        try:
            with store.write() as conn:
                event_store.insert_events(
                    conn,
                    [event_store.NewEvent(name=NAME, params={}, created=T0, author="bob")],
                )
                inserted.set()
                finish.wait(30)
                if not commit:
                    raise Rollback
        except Rollback:
            pass
        except BaseException as exc:  # surfaced in the test's thread
            failed.append(exc)
            inserted.set()

    thread = threading.Thread(target=bob)
    thread.start()
    assert inserted.wait(10)
    try:
        yield
    finally:
        finish.set()
        thread.join(30)
    assert not failed, failed


def _describe_in_background(store: Store) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def describe() -> None:
        try:
            result.append(
                EventDescService(store).create({"name": NAME, "required_fields": ["date"]}, ALICE)
            )
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=describe)
    thread.start()
    return thread, result


def test_a_describe_waits_for_another_users_events_in_flight_and_is_refused(
    store: Store,
) -> None:
    with events_being_stored(store, commit=True):
        describing, result = _describe_in_background(store)
        describing.join(0.5)
        # Before, the describe did not see Bob's uncommitted event and created the
        # description at once: Bob's event then stood, validated without it.
        assert describing.is_alive(), f"the describe did not wait: {result}"
    describing.join(30)
    [refusal] = result
    assert isinstance(refusal, Forbidden) and "bob" in str(refusal), refusal
    with store.read() as conn:
        assert desc_store.get_desc(conn, NAME) is None


def test_a_describe_goes_ahead_when_the_other_users_events_roll_back(store: Store) -> None:
    with events_being_stored(store, commit=False):
        describing, result = _describe_in_background(store)
        describing.join(0.5)
    describing.join(30)
    [desc] = result
    assert not isinstance(desc, BaseException), desc
    with store.read() as conn:
        found = desc_store.get_desc(conn, NAME)
    assert found is not None and found.author == "alice"
