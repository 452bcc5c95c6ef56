"""What the store answers instead of its dialect (issue 14), on both backends.

Callers outside store/ decide by these (tests/store/test_no_dialect_outside_store.py), so
each must do on its backend what the callers used to do after a dialect check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import OperationalError

from stepd.store import Store, open_store, runs
from stepd.store import events as event_store
from stepd.store.engine import REACTOR_LOCK
from stepd.store.notify import EVENTS_CHANNEL, notify_events


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    """The SQL that `store`'s connections send meanwhile (through SQLAlchemy)."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _other_session(store: Store) -> Connection:
    return store.engine.connect()  # another pooled connection: another PostgreSQL session


def test_sqlite_writers_take_turns_and_postgresql_ones_do_not(store: Store) -> None:
    serial = store.is_sqlite
    assert store.writers_take_turns is serial
    assert store.evaluates_in_snapshot is serial
    assert store.needs_writer_thread is serial
    assert store.reads_in_process is serial
    assert store.backend in {"sqlite", "postgresql"}


def test_the_reactor_lock_is_postgresqls_advisory_lock_held_to_the_commit(store: Store) -> None:
    with _statements(store) as sent, store.write() as conn:
        store.reactor_lock(conn)
        if store.is_sqlite:
            # Its writers take turns already: nothing to send.
            assert not any("advisory" in s for s in sent)
            return
        with _other_session(store) as other:
            held = other.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objid = :key AND classid::int = hashtext(current_schema())"
                ),
                {"key": REACTOR_LOCK},
            ).scalar_one()
            assert held == 1
            # A second reactor waits for it.
            other.exec_driver_sql("SET lock_timeout = '100ms'")
            assert not other.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), :key)"),
                {"key": REACTOR_LOCK},
            ).scalar_one()
            other.rollback()


def test_a_listener_hears_events_stored_on_postgresql_and_sqlite_has_none(store: Store) -> None:
    heard = threading.Event()
    listener = store.listener_for(EVENTS_CHANNEL, heard.set)
    if store.is_sqlite:
        assert listener is None  # the caller polls
        return
    assert listener is not None
    listener.start()
    try:
        deadline = time.monotonic() + 10
        # Until the listener's connection is up, a notification reaches no one: send again.
        while not heard.is_set() and time.monotonic() < deadline:
            with store.write() as conn:
                notify_events(conn)
            heard.wait(0.2)
        assert heard.is_set()
    finally:
        listener.stop()


def test_durability_reads_back_sqlites_synchronous_level(db_url: str) -> None:
    store = open_store(db_url, sqlite_synchronous="FULL")
    try:
        said = store.durability()
        assert said == ("SQLite synchronous=FULL" if store.is_sqlite else None)
    finally:
        store.close()


def test_serialising_with_event_inserts_holds_them_off_on_postgresql(store: Store) -> None:
    with _statements(store) as sent, store.write() as conn:
        event_store.serialise_with_event_inserts(conn)
        if store.is_sqlite:
            assert sent == []  # its writers take turns already
            return
        with _other_session(store) as other:
            other.exec_driver_sql("SET lock_timeout = '100ms'")
            with pytest.raises(OperationalError, match="lock timeout"):
                # ROW EXCLUSIVE, as every INSERT INTO events takes.
                other.exec_driver_sql("LOCK TABLE events IN ROW EXCLUSIVE MODE")
            other.rollback()


def test_a_semaphores_owner_row_is_kept_to_the_commit_on_postgresql(store: Store) -> None:
    now = datetime.now(UTC)
    with store.write() as conn:
        runs.ensure_semaphores(conn, ["db"], now)
    with store.write() as conn:
        found = runs.semaphore_owner(conn, "db")
        assert found is not None and found.owner is None
        assert runs.semaphore_owner(conn, "no such semaphore") is None
        if store.is_sqlite:
            return
        with _other_session(store) as other:
            with pytest.raises(OperationalError, match="could not obtain lock"):
                other.exec_driver_sql(
                    "SELECT owner FROM semaphores WHERE name = 'db' FOR UPDATE NOWAIT"
                )
            other.rollback()
