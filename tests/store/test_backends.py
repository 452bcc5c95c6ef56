"""One Store interface, a backend per database, chosen by the URL's scheme (issue 14).

`open_store` is the one place that picks the class; each backend states its capabilities as
class attributes (what it is, without opening anything), and owns what only it needs: the
SQLite store its writer thread, checkpointer and write turn, the PostgreSQL store its
advisory lock and LISTEN/NOTIFY.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

from stepd.errors import InvalidInput
from stepd.store import PostgresStore, SqliteStore, Store, open_store
from stepd.store import engine as store_engine
from stepd.store.checkpoint import Checkpointer
from stepd.store.notify import Listener
from stepd.store.postgres import MIGRATION_LOCK, REACTOR_LOCK
from stepd.store.writer import Writer

CAPABILITIES = (
    "writers_take_turns",
    "evaluates_in_snapshot",
    "needs_writer_thread",
    "reads_in_process",
)


def test_a_sqlite_url_opens_a_sqlite_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'stepd.db'}")
    try:
        assert type(store) is SqliteStore
        assert isinstance(store, Store)
        assert store.sqlite_path == str(tmp_path / "stepd.db")
    finally:
        store.close()


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_a_postgresql_url_opens_a_postgresql_store(pg_url: str, scheme: str) -> None:
    url = scheme + pg_url.removeprefix("postgresql://")
    store = open_store(url, migrate=False)
    try:
        assert type(store) is PostgresStore
        assert isinstance(store, Store)
        store.ping()
        assert store.sqlite_path is None
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://localhost/db", "oracle://scott@host/orcl"])
def test_an_unknown_scheme_is_invalid_input_naming_the_schemes(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        open_store(url)
    message = str(caught.value)
    assert repr(url.split(":")[0]) in message
    for scheme in ("sqlite://", "postgresql://", "postgres://"):
        assert scheme in message


def test_the_backends_are_registered_in_one_place() -> None:
    registered = dict(store_engine.BACKENDS)
    assert registered == {"sqlite": SqliteStore, "postgresql": PostgresStore}


def test_each_backend_states_its_capabilities_on_the_class() -> None:
    # Known before any database is opened: a class attribute each, not a dialect check.
    for name in CAPABILITIES:
        assert getattr(SqliteStore, name) is True, name
        assert getattr(PostgresStore, name) is False, name
    assert (SqliteStore.dialect, PostgresStore.dialect) == ("sqlite", "postgresql")
    assert not hasattr(Store, "writers_take_turns")  # the base leaves each to a backend


def test_the_sqlite_store_owns_its_writer_thread_and_checkpointer(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'stepd.db'}")
    try:
        assert store.listener_for("stepd_events", lambda: None) is None
        assert store.durability() == "SQLite synchronous=NORMAL"
        checkpointer = store.checkpointer()
        assert isinstance(checkpointer, Checkpointer)
        assert checkpointer.path == store.sqlite_path
        checkpointer.close()
        writer = store.writer()
        assert isinstance(writer, Writer)
        # The writer pokes the store's checkpointer after its commits.
        assert isinstance(writer._checkpointer, Checkpointer)
        writer.close()
    finally:
        store.close()


def test_the_sqlite_write_turn_excludes_the_other_writers(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'stepd.db'}")
    entered = threading.Event()
    try:
        with store.write_turn():

            def write() -> None:
                with store.write():
                    entered.set()

            thread = threading.Thread(target=write)
            thread.start()
            assert not entered.wait(0.3)  # waits for our turn to end
        thread.join(5)
        assert entered.is_set()
    finally:
        store.close()


def test_the_postgresql_store_owns_listen_notify_and_no_writer_thread(pg_url: str) -> None:
    store = open_store(pg_url, migrate=False)
    try:
        listener = store.listener_for("stepd_events", lambda: None)
        assert isinstance(listener, Listener)
        assert listener.channel == "stepd_events"
        assert store.writer() is None
        assert store.checkpointer() is None
        assert store.durability() is None
        # Nothing to wait for: its writers do not take turns.
        with store.write_turn(), store.write() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        store.close()


TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), :key)")


@pytest.mark.parametrize("lock", ["migration_lock", "reactor_lock"])
def test_the_postgresql_store_owns_the_advisory_locks(pg_url: str, lock: str) -> None:
    keys = {"migration_lock": MIGRATION_LOCK, "reactor_lock": REACTOR_LOCK}
    store = open_store(pg_url, migrate=False)
    # A second deployment in another schema of the same database.
    elsewhere = create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://").replace(
            "search_path%3D", "search_path%3Dpublic,"
        )
    )
    try:
        with store.write() as conn:
            getattr(store, lock)(conn)
            # Another session of this schema cannot take it until this transaction ends.
            with store.engine.connect() as other:
                taken = other.execute(TRY_LOCK, {"key": keys[lock]}).scalar_one()
                other.rollback()
            assert taken is False
            # A session of another schema can: deployments never take turns with another.
            with elsewhere.connect() as other:
                assert other.execute(text("SELECT current_schema()")).scalar_one() == "public"
                taken = other.execute(TRY_LOCK, {"key": keys[lock]}).scalar_one()
                other.rollback()
            assert taken is True
        with store.engine.connect() as other:
            taken = other.execute(TRY_LOCK, {"key": keys[lock]}).scalar_one()
            other.rollback()
        assert taken is True
    finally:
        elsewhere.dispose()
        store.close()


def test_the_sqlite_store_needs_no_advisory_lock(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'stepd.db'}")
    sent: list[str] = []
    try:
        event.listen(store.engine, "before_cursor_execute", lambda *args: sent.append(str(args[2])))
        with store.write() as conn:
            store.migration_lock(conn)
            store.reactor_lock(conn)
        assert sent == []  # its writers take turns already
    finally:
        store.close()
