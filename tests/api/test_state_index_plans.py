"""On SQLite the statements that look for events by state use the partial indexes of NEW
and REJECTED events (migration 0006), a bound `state = ?` included (SQLite plans such a
statement again with the bound value): none may scan every event ever stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from stepd.domain.events import EventState
from stepd.store import Store, open_store, queries
from stepd.store import events as event_store
from stepd.store.dbapi import Raw


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'plans.db'}")
    yield s
    s.close()


def plans_of(store: Store, run: Any) -> list[tuple[str, str]]:
    """Each SELECT on events that `run(conn)` sends, with SQLite's plan for it."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with store.read() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        event.listen(conn, "before_cursor_execute", capture)
        try:
            run(conn)
        finally:
            event.remove(conn, "before_cursor_execute", capture)
        return [
            (sql, " / ".join(row[3] for row in driver.execute(f"EXPLAIN QUERY PLAN {sql}", params)))
            for sql, params in sent
            if "FROM events" in sql and "state" in sql
        ]


def _bound(query: queries.Query, params: dict[str, object]) -> tuple[str, Any]:
    """A named query as sqlite3 takes it: its SQL and its parameters."""
    compiled = query.compiled(True)
    return compiled.sql, compiled.bind(params)


@pytest.mark.parametrize("state", [EventState.NEW, EventState.REJECTED])
def test_listing_events_by_state_reads_the_partial_index(store: Store, state: EventState) -> None:
    for q in (
        event_store.EventQuery(state=state, newest_first=True),
        event_store.EventQuery(state=state),
    ):
        [(_sql, plan)] = plans_of(store, lambda conn, q=q: event_store.query_events(conn, q))
        assert f"ix_events_{state.value.lower()}" in plan, plan


def test_the_reactor_and_metrics_read_the_partial_index(store: Store) -> None:
    with store.read() as conn:
        raw = Raw(conn)
        driver = raw.driver
        lookup_q, metrics_q = queries.load("lookup"), queries.load("metrics")
        for sql, params in (
            ("SELECT events.seq FROM events WHERE events.state = ? LIMIT ?", ("NEW", 1)),
            _bound(lookup_q["newest_processed_sqlite"], {}),
            _bound(metrics_q["events_in_state"], {"state": "NEW"}),
            _bound(metrics_q["events_in_state"], {"state": "REJECTED"}),
            _bound(metrics_q["oldest_new_event"], {}),
        ):
            plan = " / ".join(r[3] for r in driver.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "ix_events_new" in plan or "ix_events_rejected" in plan, (sql, plan)
            assert "SCAN events" not in plan.replace("SCAN events USING INDEX", ""), (sql, plan)
