"""Heartbeats and the reaper use the database's clock, not a host's (issue 9, clocks).

A reaper ends the attempts whose heartbeat is older than the heartbeat timeout. If each
host compared its own clock with heartbeats written by another's, a host whose clock
runs ahead would reap live attempts everywhere, and a worker whose clock lags would
be reaped while it beats. Here one side's clock is skewed by an hour (its `utcnow`,
the only clock stepd reads) and the live attempt must survive; on SQLite the database's
clock is the machine's, on PostgreSQL the server's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from celery import Celery
from sqlalchemy import select

from stepd.runner.dispatcher import Dispatcher
from stepd.runner.registry import TaskType
from stepd.runner.worker import Worker
from stepd.store import runs
from stepd.store import tasks as task_store
from stepd.store.engine import Store
from stepd.store.schema import tasks
from stepd.timeutil import utcnow

EVENTS = runs.StatusEvents(name="taskEvent", environment="testing")
SKEW = timedelta(hours=1)


def _skewed(by: timedelta) -> Callable[[], datetime]:
    return lambda: utcnow() + by


def _running_task(store: Store) -> runs.Claimed:
    """A task claimed and started by a worker (whose clock `utcnow` is, as patched)."""
    with store.write() as conn:
        task_store.insert_task(conn, task_store.NewTask(type="T", params={}, author="robot"))
    # (claimed, never run: the worker need only declare the type, as every worker does)
    declared = {"T": TaskType(name="T", kind="command", argv=("true",))}
    claimed = Worker(store, declared, "worker-on-host-a").claim()
    assert claimed is not None
    return claimed


def _status(store: Store, task_id: int) -> str:
    with store.read() as conn:
        return str(conn.execute(select(tasks.c.status).where(tasks.c.id == task_id)).scalar())


def test_a_reaper_whose_clock_runs_ahead_leaves_a_beating_attempt_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _running_task(store)
    with store.write() as conn:
        assert not runs.heartbeat(conn, task.id, task.attempt)
    # The dispatcher's reaper (`stepd serve --executor celery`) on a host an hour ahead.
    monkeypatch.setattr("stepd.runner.dispatcher.utcnow", _skewed(SKEW))
    dispatcher = Dispatcher(store, Celery(broker="memory://"), EVENTS, heartbeat_timeout_seconds=30)
    dispatcher.maintain()
    with store.write() as conn:
        # The local executor's reaper calls this with its own clock's now.
        assert runs.reap(conn, utcnow() + SKEW, heartbeat_timeout_seconds=30, events=EVENTS) == []
    assert _status(store, task.id) == "EXECUTING"


def test_a_worker_whose_clock_lags_is_not_reaped_while_it_beats(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stepd.runner.worker.utcnow", _skewed(-SKEW))
    # Claimed and started (its first heartbeat) an hour "ago" by the worker's own clock.
    task = _running_task(store)
    with store.write() as conn:
        assert runs.reap(conn, utcnow(), heartbeat_timeout_seconds=30, events=EVENTS) == []
        assert not runs.heartbeat(conn, task.id, task.attempt)
        assert runs.reap(conn, utcnow(), heartbeat_timeout_seconds=30, events=EVENTS) == []
    assert _status(store, task.id) == "EXECUTING"


def test_an_attempt_that_stopped_beating_is_reaped_after_the_timeout_by_the_db_clock(
    store: Store,
) -> None:
    task = _running_task(store)
    with store.write() as conn:
        assert runs.reap(conn, utcnow(), heartbeat_timeout_seconds=1.0, events=EVENTS) == []
    time.sleep(1.5)
    with store.write() as conn:
        # Whatever the reaper's host thinks the time is: an hour behind, here.
        reaped = runs.reap(conn, utcnow() - SKEW, heartbeat_timeout_seconds=1.0, events=EVENTS)
    assert reaped == [task.id]
    assert _status(store, task.id) == "EXCEPTION"
