"""Retention on every store: what a round deletes (old evaluated events with their index
rows, triggers and request ids; finished tasks with attempts and logs; logs alone) and
what it keeps (events not evaluated yet, events a join in its window may still look up,
events of unfinished tasks, unfinished tasks, anything young)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from stepd.domain import retention as rules
from stepd.domain.events import EventState
from stepd.domain.tasks import TaskStatus
from stepd.services.retention import RetentionService
from stepd.store.schema import (
    event_params,
    event_requests,
    events,
    task_attempts,
    task_logs,
    tasks,
    triggers,
)

from .contract import T0, Contract

DAY = timedelta(days=1)
NOW = T0 + 10 * DAY
DONE = EventState.PROCESSED


def _count(c: Contract, table: object) -> int:
    with c.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _service(c: Contract, batch_rows: int = 3) -> RetentionService:
    return RetentionService(c.store, batch_rows=batch_rows, now=lambda: NOW)


def _finished_task(c: Contract, *, at: object, event_seq: int | None = None) -> int:
    tid = c.add_task("T", {"n": 1}, created=at, event_seq=event_seq)  # type: ignore[arg-type]
    (claimed,) = c.claim(now=at)  # type: ignore[arg-type]
    c.append_log(tid, claimed.attempt, 0, "hello")
    c.append_log(tid, claimed.attempt, 1, "world")
    c.finish(tid, claimed.attempt, TaskStatus.SUCCESS, now=at)  # type: ignore[arg-type]
    return tid


def test_a_round_deletes_old_evaluated_events_with_their_index_rows_triggers_and_requests(
    c: Contract,
) -> None:
    old = c.add_events(
        [("ready", {"date": "2019-01-01", "n": 7, "x": None}) for _ in range(7)],
        created=T0,
        state=DONE,
    )
    young = c.add_events([("ready", {"date": "2019-01-02"})], created=NOW - DAY, state=DONE)
    c.add_trigger(config_seq=1, event_seq=old[0], binding={"date": "2019-01-01"})
    c.record_request("r-old", ["x"], "d", created=T0)
    c.record_request("r-young", ["y"], "d", created=NOW)

    report = _service(c).run(policy=rules.Policy.of("2d"), paced=False)

    assert report.tally.events == 7 and report.tally.params == 14
    assert report.tally.triggers == 1 and report.tally.requests == 1
    assert set(c.events(old + young)) == set(young)
    assert _count(c, event_params) == 1 and _count(c, triggers) == 0
    assert c.find_request("r-old") is None and c.find_request("r-young") is not None


def test_an_event_the_reactor_has_not_evaluated_is_kept_and_holds_back_the_cutoff(
    c: Contract,
) -> None:
    (older_done,) = c.add_events([("a", {})], created=T0 - 5 * DAY, state=DONE)
    (old_done,) = c.add_events([("a", {})], created=T0, state=DONE)
    # Not evaluated, 8 days old: its joins may still look back 2 days from it.
    (pending,) = c.add_events([("b", {})], created=T0 + 2 * DAY, state=EventState.NEW)

    _service(c).run(policy=rules.Policy.of("2d"), paced=False)

    assert set(c.events([old_done, older_done, pending])) == {old_done, pending}


def test_a_join_in_its_window_keeps_the_events_it_may_still_look_up(c: Contract) -> None:
    c.create_config(
        {
            "name": "joined",
            "task_type": "T",
            "window": "7d",
            "event_deps": [
                {"name": "access", "params": {"date": "~"}},
                {"name": "redir", "params": {"date": "~"}},
            ],
        }
    )
    c.create_config(  # a single dependency never looks up a stored event
        {"name": "single", "task_type": "T", "window": "30d", "event_deps": [{"name": "solo"}]}
    )
    (waiting,) = c.add_events([("access", {"date": "d1"})], created=NOW - 5 * DAY, state=DONE)
    (past,) = c.add_events([("access", {"date": "d0"})], created=NOW - 8 * DAY, state=DONE)
    (other,) = c.add_events([("solo", {})], created=NOW - 5 * DAY, state=DONE)
    (plain,) = c.add_events([("unrelated", {})], created=NOW - 5 * DAY, state=DONE)

    report = _service(c).run(policy=rules.Policy.of("2d"), paced=False)

    assert set(c.events([waiting, past, other, plain])) == {waiting}
    assert report.cutoffs is not None
    assert report.cutoffs.kept_longer == {"access": NOW - 7 * DAY, "redir": NOW - 7 * DAY}


def test_the_event_of_an_unfinished_task_and_the_task_are_kept(c: Contract) -> None:
    (ev,) = c.add_events([("ready", {})], created=T0, state=DONE)
    active = c.add_task("T", {}, created=T0, event_seq=ev)

    report = _service(c).run(policy=rules.Policy.of("1d"), paced=False)

    assert ev in c.events([ev]) and c.task(active).status is TaskStatus.ENQUEUED
    assert report.tally.kept_events == 1 and report.tally.tasks == 0


def test_finished_tasks_go_with_their_attempts_and_logs_and_logs_may_go_first(
    c: Contract,
) -> None:
    old = _finished_task(c, at=T0)
    middle = _finished_task(c, at=NOW - 3 * DAY)
    young = _finished_task(c, at=NOW - DAY / 2)

    report = _service(c, batch_rows=1).run(
        policy=rules.Policy.of("off", task="5d", log="2d"), paced=False
    )

    assert report.tally.tasks == 1 and report.tally.attempts == 1
    assert report.tally.logs == 4  # two chunks of the old task, two of the middle one
    with c.store.read() as conn:
        left = {int(i) for (i,) in conn.execute(select(tasks.c.id))}
        logged = {int(i) for (i,) in conn.execute(select(task_logs.c.task_id))}
        attempted = {int(i) for (i,) in conn.execute(select(task_attempts.c.task_id))}
    assert left == {middle, young} and logged == {young} and attempted == {middle, young}
    assert old not in left


def test_a_dry_run_counts_what_a_round_would_delete_and_deletes_nothing(c: Contract) -> None:
    c.add_events([("ready", {"k": "v"}) for _ in range(5)], created=T0, state=DONE)
    c.record_request("r-old", ["x"], "d", created=T0)
    _finished_task(c, at=T0)
    c.mark_processed([seq for seq, _name, _params in c.new_events()])  # its status event
    before = [_count(c, t) for t in (events, event_params, event_requests, tasks, task_logs)]

    report = _service(c, batch_rows=2).run(apply=False, policy=rules.Policy.of("2d"))

    # (5 old events, plus the status event the old task emitted when it finished)
    assert report.tally.events == 6 and report.tally.requests == 1
    assert report.tally.tasks == 1 and report.to_json()["dry_run"] is True
    after = [_count(c, t) for t in (events, event_params, event_requests, tasks, task_logs)]
    assert after == before


def test_retention_is_off_by_default_and_the_stored_setting_wins(c: Contract) -> None:
    c.add_events([("ready", {})], created=T0, state=DONE)
    service = _service(c)
    assert service.policy().off and service.begin() is None
    with c.store.write() as conn:
        from stepd.store import deployment

        deployment.write(conn, "retention", "3d", "admin", NOW)
    service.own = ("90d", None, None)
    assert service.policy() == rules.Policy.of("3d")
    assert service.run(paced=False).tally.events == 1


def test_the_finished_tasks_of_a_running_backfill_stay_until_it_ends(c: Contract) -> None:
    from sqlalchemy import insert, update

    from stepd.store.schema import backfills

    kept = _finished_task(c, at=T0)
    gone = _finished_task(c, at=T0)
    with c.store.write() as conn:
        for number, state in ((1, "running"), (2, "done")):
            conn.execute(
                insert(backfills).values(
                    id=number,
                    config_seq=1,
                    params="{}",
                    total=9,
                    made=1,
                    max_in_flight=1,
                    state=state,
                    author="u",
                    created=T0,
                    updated=T0,
                    errors=0,
                )
            )
        conn.execute(update(tasks).where(tasks.c.id == kept).values(backfill_id=1))
        conn.execute(update(tasks).where(tasks.c.id == gone).values(backfill_id=2))

    _service(c).run(policy=rules.Policy.of("off", task="5d", log="5d"), paced=False)

    with c.store.read() as conn:
        left = {int(i) for (i,) in conn.execute(select(tasks.c.id))}
    assert left == {kept}  # the done backfill's task went; the running one's stays
