"""The server's checkpointer copies committed pages from the WAL into the database file.

What a checkpoint did is visible in the database file alone: a copy of it without its
`-wal` holds exactly the rows that were checkpointed.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepd.services.event_descs import DescCache
from stepd.services.events import EventBatch, EventService
from stepd.store import Store, open_store
from stepd.store.checkpoint import FALLBACK_PAGES, Checkpointer
from stepd.store.writer import Writer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "c.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{db}")
    with s.read() as conn:  # the schema into the file: the tests watch the rows only
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    yield s
    s.close()


def rows_in_file_alone(db: Path, tmp: Path) -> int:
    """The events the database file holds without its log."""
    copy = tmp / "alone.db"
    shutil.copyfile(db, copy)  # no -wal next to the copy: only checkpointed pages
    conn = sqlite3.connect(copy)
    try:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    finally:
        conn.close()
    return int(count)


def insert_events(store: Store, count: int) -> None:
    service = EventService(store, descs=DescCache())
    batch = EventBatch(events=[{"name": "e", "params": {"i": str(i)}} for i in range(count)])
    service.submit(batch, author="robot")


def wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)


def test_connections_leave_checkpoints_to_the_checkpointer(store: Store) -> None:
    with store.read() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        (pages,) = driver.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == FALLBACK_PAGES


def test_without_a_checkpoint_the_rows_stay_in_the_log(
    store: Store, db: Path, tmp_path: Path
) -> None:
    insert_events(store, 50)
    assert rows_in_file_alone(db, tmp_path) == 0


def test_a_poke_copies_the_log_into_the_file(store: Store, db: Path, tmp_path: Path) -> None:
    checkpointer = Checkpointer(str(db), idle_interval=60)
    try:
        insert_events(store, 50)
        checkpointer.poke()
        wait_for(lambda: rows_in_file_alone(db, tmp_path) == 50)
        assert rows_in_file_alone(db, tmp_path) == 50
        assert checkpointer.checkpoints >= 1
    finally:
        checkpointer.close()


def test_commits_of_other_processes_are_checkpointed_when_idle(
    store: Store, db: Path, tmp_path: Path
) -> None:
    checkpointer = Checkpointer(str(db), idle_interval=0.05)
    try:
        insert_events(store, 20)  # nobody pokes: as when the reactor process commits
        wait_for(lambda: rows_in_file_alone(db, tmp_path) == 20)
        assert rows_in_file_alone(db, tmp_path) == 20
    finally:
        checkpointer.close()


def test_the_writer_thread_checkpoints_after_its_groups(
    store: Store, db: Path, tmp_path: Path
) -> None:
    writer = Writer(store)
    service = EventService(store, descs=DescCache(), writer=writer)

    async def submit() -> list[str]:
        batch = EventBatch(events=[{"name": "e", "params": {"i": str(i)}} for i in range(30)])
        return await service.submit_async(batch, author="robot")

    try:
        ids = asyncio.run(submit())
        assert len(ids) == 30
        wait_for(lambda: rows_in_file_alone(db, tmp_path) == 30)
        assert rows_in_file_alone(db, tmp_path) == 30
    finally:
        writer.close()


def log_bytes(db: Path) -> int:
    """The size of the write-ahead log: it grows unless the log starts over."""
    return Path(f"{db}-wal").stat().st_size


def test_a_long_log_starts_over_in_the_write_turn(store: Store, db: Path) -> None:
    insert_events(store, 300)
    long_log = log_bytes(db)
    checkpointer = Checkpointer(
        str(db), write_turn=store.write_turn, restart_pages=10, idle_interval=60
    )
    try:
        checkpointer.poke()
        wait_for(lambda: checkpointer.restarts >= 1)
        assert checkpointer.restarts >= 1
        insert_events(store, 300)  # written from the start of the log again
        assert log_bytes(db) < long_log * 1.6  # 2.4x without (the next test)
    finally:
        checkpointer.close()


def test_without_a_restart_the_log_grows(store: Store, db: Path) -> None:
    insert_events(store, 300)
    long_log = log_bytes(db)
    insert_events(store, 300)
    assert log_bytes(db) > long_log * 2


def test_a_long_reader_makes_the_restart_back_off_instead_of_pausing_writers_again(
    store: Store, db: Path
) -> None:
    insert_events(store, 50)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # a snapshot in the log
    checkpointer = Checkpointer(
        str(db), write_turn=store.write_turn, restart_pages=1, idle_interval=60
    )
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            insert_events(store, 1)
            checkpointer.poke()
            time.sleep(0.02)
        # Each try pauses the writers for up to 200 ms: without the back-off, ~6 tries.
        assert 1 <= checkpointer.restart_attempts <= 3
        assert checkpointer.restarts == 0
        reader.execute("COMMIT")
        deadline = time.monotonic() + 10
        while checkpointer.restarts == 0 and time.monotonic() < deadline:
            insert_events(store, 1)
            checkpointer.poke()
            time.sleep(0.05)
        assert checkpointer.restarts >= 1  # the reader gone, the log starts over
    finally:
        reader.close()
        checkpointer.close()
