"""The runner's store transitions, row by row, on SQLite and PostgreSQL.

The hot statements of store/runs.py run on the driver's cursor; these tests read the
rows back through SQLAlchemy, so a time bound the wrong way or a column left out
shows here, not only as a wrong figure in the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from stepd.domain.tasks import TaskStatus
from stepd.store import runs
from stepd.store import tasks as task_store
from stepd.store.engine import Store
from stepd.store.schema import events, task_attempts, task_events, tasks

T0 = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
EVENTS = runs.StatusEvents(name="taskEvent", environment="testing")


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _task(store: Store, task_id: int) -> dict[str, object]:
    with store.read() as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).one()._asdict()
    return {k: _as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _db_clock_now(row: dict[str, object]) -> bool:
    """A heartbeat is the database's time of the write (now), never the `now` passed in."""
    beat = row["heartbeat"]
    return isinstance(beat, datetime) and abs(beat - datetime.now(UTC)) < timedelta(seconds=10)


def _insert(store: Store, **extra: object) -> int:
    with store.write() as conn:
        return task_store.insert_task(
            conn,
            task_store.NewTask(
                type="T", params={"date": "2026-11-29", "n": 3}, author="robot", **extra
            ),  # type: ignore[arg-type]
        )


def test_a_local_claim_starts_the_attempt_and_finishing_reports_an_event(store: Store) -> None:
    task_id = _insert(store)
    with store.write() as conn:
        (claimed,) = runs.claim(conn, "w1", T0, limit=1, start=True)
    assert (claimed.id, claimed.attempt, claimed.type) == (task_id, 1, "T")
    assert claimed.params == {"date": "2026-11-29", "n": 3}
    row = _task(store, task_id)
    assert row["status"] == "EXECUTING"
    assert row["attempts"] == 1
    assert row["worker"] == "w1"
    assert row["started"] == row["dispatched"] == row["updated"] == T0
    assert _db_clock_now(row)

    t1 = T0 + timedelta(seconds=2)
    with store.write() as conn:
        status = runs.finish(
            conn, task_id, 1, runs.Outcome(status=TaskStatus.SUCCESS, output={"ok": 1}), EVENTS, t1
        )
        attempt = conn.execute(select(task_attempts)).one()
        (seq,) = conn.execute(
            select(task_events.c.event_seq).where(task_events.c.task_id == task_id)
        ).scalars()
        event = conn.execute(select(events).where(events.c.seq == seq)).one()
    assert status is TaskStatus.SUCCESS
    row = _task(store, task_id)
    assert row["status"] == "SUCCESS"
    assert row["finished"] == row["updated"] == t1
    assert row["started"] == T0
    assert row["dispatched"] is None and row["heartbeat"] is None
    assert row["output"] == '{"ok": 1}'
    assert (attempt.status, attempt.worker) == ("SUCCESS", "w1")
    assert (_as_utc(attempt.started), _as_utc(attempt.finished)) == (T0, t1)
    assert event.name == "taskEvent"
    assert event.source == str(task_id)
    # A second finish of the same attempt is stale and changes nothing.
    with store.write() as conn:
        assert (
            runs.finish(conn, task_id, 1, runs.Outcome(status=TaskStatus.FAILURE), EVENTS, t1)
            is None
        )


def test_a_dispatched_claim_waits_for_one_start(store: Store) -> None:
    task_id = _insert(store)
    with store.write() as conn:
        (claimed,) = runs.claim(conn, "dispatcher", T0, limit=5, start=False)
    row = _task(store, task_id)
    assert row["status"] == "ENQUEUED"
    assert row["dispatched"] == row["updated"] == T0
    assert _db_clock_now(row)
    assert row["started"] is None
    with store.read() as conn:
        assert not runs.has_work(conn, T0)  # dispatched: not claimable again
    t1 = T0 + timedelta(milliseconds=5)
    with store.write() as conn:
        started = runs.start(conn, task_id, claimed.attempt, "celery-1", t1)
        again = runs.start(conn, task_id, claimed.attempt, "celery-2", t1)
    assert started is not None and started.params == {"date": "2026-11-29", "n": 3}
    assert again is None  # a redelivered message runs nothing
    row = _task(store, task_id)
    assert (row["status"], row["worker"]) == ("EXECUTING", "celery-1")
    assert row["started"] == row["updated"] == t1
    assert _db_clock_now(row)


def test_a_failed_attempt_with_retries_left_waits_out_its_backoff(store: Store) -> None:
    task_id = _insert(store, max_retries=1)
    with store.write() as conn:
        runs.claim(conn, "w1", T0, limit=1, start=True)
        status = runs.finish(
            conn, task_id, 1, runs.Outcome(status=TaskStatus.FAILURE, error="no"), EVENTS, T0
        )
    assert status is TaskStatus.ENQUEUED
    row = _task(store, task_id)
    assert row["not_before"] == T0 + timedelta(seconds=runs.backoff_seconds(1))
    assert (row["error"], row["dispatched"], row["worker"]) == ("no", None, None)
    with store.read() as conn:
        assert not runs.has_work(conn, T0)
        assert runs.has_work(conn, T0 + timedelta(seconds=1))


def test_claims_follow_priority_then_age(store: Store) -> None:
    low = _insert(store, priority=0)
    high = _insert(store, priority=5)
    later_low = _insert(store, priority=0)
    with store.write() as conn:
        order = [c.id for c in runs.claim(conn, "w", T0, limit=3, start=True)]
    assert order == [high, low, later_low]
