"""Migration 0009 on a store that already holds tasks: SQLite's `tasks` becomes
AUTOINCREMENT again with every row, index and id kept; PostgreSQL's is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_database
from sqlalchemy import text

from stepd.store import Store, open_store, queries, runs
from stepd.store import tasks as task_store
from stepd.store.migrate import upgrade

from .contract import T0

BACKENDS = ["sqlite", "postgres"]
AT = "2026-12-01 08:00:00.000000"


def _sqlite(query: queries.Query, params: dict[str, object]) -> tuple[str, Any]:
    """The statement sqlite3 runs for `query`, and its parameters as sqlite3 takes them."""
    compiled = query.compiled(True)
    return compiled.sql, compiled.bind(params)


@pytest.fixture(params=BACKENDS)
def store_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with fresh_database(request.param, tmp_path) as url:
        store = open_store(url, migrate=False)
        try:
            upgrade(store, "0008")
            yield store
        finally:
            store.close()


OLD_INSERT = text(
    "INSERT INTO tasks (type, params, status, author, priority, semaphores, max_retries,"
    " attempts, created, updated) VALUES ('T', :params, 'ENQUEUED', 'u', :priority, '[]',"
    " 0, 0, :created, :created) RETURNING id"
)


def _add_old(store: Store, priority: int = 0) -> int:
    """A task as a store of schema 0008 holds it (today's insert names later columns)."""
    with store.write() as conn:
        row = conn.execute(
            OLD_INSERT, {"params": f'{{"p": {priority}}}', "priority": priority, "created": T0}
        ).one()
        return int(row[0])


def _add(store: Store, priority: int = 0) -> int:
    with store.write() as conn:
        return task_store.insert_task(
            conn,
            task_store.NewTask(
                type="T", params={"p": priority}, author="u", priority=priority, created=T0
            ),
        )


def _rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM tasks ORDER BY id"))]


def test_upgrading_a_store_with_tasks_keeps_them_and_never_hands_out_an_id_again(
    store_at_0008: Store,
) -> None:
    store = store_at_0008
    ids = [_add_old(store, priority) for priority in (0, 5, 1, 0)]
    with store.write() as conn:
        runs.claim(conn, "w", T0, limit=1, start=True)  # the priority 5 task: an attempt
        task_store.delete_unfired(conn, ids[-1])  # the newest is gone
        # A trace of a task id above every row (a trigger that named a deleted task).
        conn.execute(
            text(
                "INSERT INTO triggers (config_seq, config_version, event_seq, binding_hash,"
                " binding, dep_events, task_id, created) VALUES (1, 1, 1, 'h', '{}', '[]', :t, :c)"
            ),
            {"t": ids[-1] + 3, "c": T0},
        )
    before = _rows(store)
    assert [r[0] for r in before] == ids[:3]

    upgrade(store, "head")

    # every row and every column as it was (the columns later revisions add come after)
    assert [r[: len(before[0])] for r in _rows(store)] == before
    if store.is_sqlite:
        with store.read() as conn:
            (sql,) = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'")
            ).one()
            assert "AUTOINCREMENT" in sql.upper()
            (seq,) = conn.execute(
                text("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'")
            ).one()
        assert seq == ids[-1] + 3
    newer = _add(store)
    assert newer > ids[-1] + 3 if store.is_sqlite else newer > ids[-1]
    with store.write() as conn:  # the queue index still hands out its head in claim order
        claimed = runs.claim(conn, "w", T0, limit=3, start=True)
    assert [c.id for c in claimed] == [ids[2], ids[0], newer]


def test_after_the_upgrade_sqlite_claims_read_the_partial_queue_index(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        store = open_store(url, migrate=False)
        try:
            upgrade(store, "0008")
            _add_old(store)
            upgrade(store, "head")
            with store.read() as conn:
                (index_sql,) = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'ix_tasks_queue'")
                ).one()
                driver = conn.connection.driver_connection
                assert driver is not None
                plans = [
                    " / ".join(
                        row[3] for row in driver.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                    )
                    for sql, params in (
                        _sqlite(runs._QUEUE_HEAD[True], {"now": AT, "scan": 20, "skip": 0}),
                        _sqlite(runs._HAS_WORK[True], {"now": AT}),
                    )
                ]
        finally:
            store.close()
    assert "priority DESC" in index_sql and "WHERE" in index_sql.upper(), index_sql
    for plan in plans:
        assert "ix_tasks_queue" in plan, plan
