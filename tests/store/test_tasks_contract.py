"""Tasks and runs: insert, claim by priority and semaphores, start, heartbeat, finish, retry,
stop, reap, restart, dispatch and its undo, logs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stepd.domain.tasks import TaskStatus
from stepd.errors import InvalidInput

from .contract import T0, Contract

S = timedelta(seconds=1)


def _sem(name: str, weight: int = 1) -> list[dict[str, object]]:
    return [{"name": name, "weight": weight}]


def test_an_inserted_task_is_enqueued_with_what_it_was_given(c: Contract) -> None:
    (ev,) = c.add_events([("ready", {})])
    tid = c.add_task(
        "T_BUILD",
        {"date": "d1", "n": 2},
        author="alice",
        priority=3,
        semaphores=_sem("db", 2),
        max_retries=4,
        kill_timeout=60,
        event_seq=ev,
    )
    t = c.task(tid)
    assert (t.type, t.params, t.status, t.author) == (
        "T_BUILD",
        {"date": "d1", "n": 2},
        TaskStatus.ENQUEUED,
        "alice",
    )
    assert (t.priority, t.semaphores, t.max_retries, t.kill_timeout) == (
        3,
        tuple(_sem("db", 2)),
        4,
        60,
    )
    assert (t.attempts, t.event_seq, t.created, t.updated) == (0, ev, T0, T0)
    assert (t.started, t.finished, t.output, t.error) == (None, None, None, None)


def test_get_tasks_returns_those_that_exist(c: Contract) -> None:
    a, b = c.add_task(), c.add_task()
    assert sorted(c.tasks([a, b, b + 100])) == [a, b]


def test_claims_take_the_highest_priority_first_then_the_oldest(c: Contract) -> None:
    low = c.add_task(priority=0)
    high_old = c.add_task(priority=5)
    high_new = c.add_task(priority=5)
    neg = c.add_task(priority=-1)
    assert c.claimed_ids(limit=10) == [high_old, high_new, low, neg]


def test_a_worker_claims_only_the_task_types_it_runs(c: Contract) -> None:
    gpu = c.add_task(type="GPU_TRAIN", priority=9)  # the head of the queue
    cpu = [c.add_task(type="CPU_SORT") for _ in range(2)]
    other = c.add_task(type="X.y:z-1")  # every character a type name may have
    assert not c.has_work(types=["NOBODY"]) and c.claim(types=["NOBODY"]) == []
    assert not c.has_work(types=[]) and c.claim(types=[], limit=10) == []
    assert c.has_work(types={"CPU_SORT"})
    # A type the worker does not run is passed over, however high its priority.
    assert [t.id for t in c.claim(types={"CPU_SORT"}, limit=10)] == cpu
    assert not c.has_work(types={"CPU_SORT"})
    assert [t.id for t in c.claim(types=("X.y:z-1", "GPU_TRAIN"), limit=10)] == [gpu, other]
    assert not c.has_work()


def test_a_task_behind_a_long_head_of_other_types_is_claimed(c: Contract) -> None:
    for _ in range(30):  # more than the first look at the queue's head
        c.add_task(type="GPU_TRAIN", priority=9)
    mine = c.add_task(type="CPU_SORT")
    assert c.claimed_ids_of({"CPU_SORT"}) == [mine]
    assert len(c.claim(types={"GPU_TRAIN"}, limit=100)) == 30


def test_a_claim_takes_at_most_its_limit_and_nothing_from_an_empty_queue(c: Contract) -> None:
    assert c.claim() == [] and not c.has_work()
    ids = [c.add_task() for _ in range(3)]
    assert c.has_work()
    assert c.claimed_ids(limit=2) == ids[:2]
    assert c.claimed_ids(limit=2) == ids[2:]
    assert c.claim() == [] and not c.has_work()


def test_a_local_claim_starts_the_first_attempt(c: Contract) -> None:
    tid = c.add_task("T", {"x": 1}, kill_timeout=9)
    (claimed,) = c.claim("w1", T0 + S)
    assert (claimed.id, claimed.attempt, claimed.type, claimed.params) == (tid, 1, "T", {"x": 1})
    assert claimed.kill_timeout == 9
    t = c.task(tid)
    assert (t.status, t.attempts, t.started) == (TaskStatus.EXECUTING, 1, T0 + S)
    (attempt,) = c.attempts(tid)
    assert (attempt["attempt"], attempt["status"], attempt["worker"]) == (1, "EXECUTING", "w1")


def test_a_dispatched_attempt_starts_only_once(c: Contract) -> None:
    tid = c.add_task()
    (claimed,) = c.claim("broker", start=False)
    assert c.task(tid).status is TaskStatus.ENQUEUED
    assert not c.has_work()  # dispatched: no longer claimable
    assert c.start(tid, claimed.attempt, "celery-1", T0 + S)
    assert not c.start(tid, claimed.attempt, "celery-2", T0 + 2 * S)  # a redelivery
    t = c.task(tid)
    assert (t.status, t.started) == (TaskStatus.EXECUTING, T0 + S)
    assert c.attempts(tid)[0]["worker"] == "celery-1"


def test_a_semaphore_made_on_first_use_grants_one_task_at_a_time(c: Contract) -> None:
    a = c.add_task(semaphores=_sem("db"))
    b = c.add_task(semaphores=_sem("db"))
    assert c.claimed_ids(limit=2) == [a]
    assert c.task(b).status is TaskStatus.WAIT_MUTEX
    assert c.claim() == []
    assert c.finish(a, 1, TaskStatus.SUCCESS) is TaskStatus.SUCCESS
    assert c.claimed_ids() == [b]  # the hold went with the end of a


def test_weights_count_against_a_semaphores_capacity(c: Contract) -> None:
    c.set_capacity("pool", 3)
    a = c.add_task(semaphores=_sem("pool", 2))
    b = c.add_task(semaphores=_sem("pool", 2))
    small = c.add_task(semaphores=_sem("pool", 1))
    free = c.add_task()
    # b waits; the tasks behind it are not starved by it.
    assert c.claimed_ids(limit=10) == [a, small, free]
    assert c.task(b).status is TaskStatus.WAIT_MUTEX
    assert {s.name: s.used for s in c.metrics().semaphores} == {"pool": 3}


def test_a_task_takes_all_of_its_semaphores_or_none(c: Contract) -> None:
    holder = c.add_task(semaphores=_sem("s2"))
    assert c.claimed_ids() == [holder]
    both = c.add_task(semaphores=[*_sem("s1"), *_sem("s2")])
    only_s1 = c.add_task(semaphores=_sem("s1"))
    assert c.claimed_ids(limit=10) == [only_s1]  # `both` held nothing of s1
    assert c.task(both).status is TaskStatus.WAIT_MUTEX


def test_a_successful_attempt_ends_the_task_and_reports_it_as_an_event(c: Contract) -> None:
    tid = c.add_task("T_BUILD", {"date": "d1", "n": 2, "deep": {"no": 1}}, author="alice")
    c.claim()
    assert (
        c.finish(tid, 1, TaskStatus.SUCCESS, output={"rows": 5}, now=T0 + S) is TaskStatus.SUCCESS
    )
    t = c.task(tid)
    assert (t.status, t.output, t.finished, t.error) == (
        TaskStatus.SUCCESS,
        {"rows": 5},
        T0 + S,
        None,
    )
    (seq,) = c.emitted_events([tid])[tid]
    e = c.event(seq)
    assert e is not None and e.name == "taskEvent"
    assert e.params == {
        "date": "d1",
        "n": 2,  # scalars of the task's params are kept, nested ones are not
        "taskType": "T_BUILD",
        "taskStatus": "SUCCESS",
        "taskId": str(tid),
        "environment": "testing",
    }
    assert (e.author, e.source_type, e.source, e.created) == ("alice", "task", str(tid), T0 + S)
    assert c.attempts(tid)[0]["status"] == "SUCCESS"


def test_a_failed_attempt_with_retries_left_waits_out_its_backoff(c: Contract) -> None:
    tid = c.add_task(max_retries=2)
    c.claim()
    assert c.finish(tid, 1, TaskStatus.FAILURE, error="boom") is TaskStatus.ENQUEUED
    assert c.emitted_events([tid])[tid] == []  # a retry is not an end
    assert not c.has_work(T0) and c.claim(now=T0 + 0.5 * S) == []
    (second,) = c.claim(now=T0 + S)
    assert second.attempt == 2
    assert c.finish(tid, 2, TaskStatus.EXCEPTION, now=T0 + S) is TaskStatus.ENQUEUED
    assert c.claim(now=T0 + 2.5 * S) == []  # the backoff doubles
    (third,) = c.claim(now=T0 + 3 * S)
    assert c.finish(tid, third.attempt, TaskStatus.FAILURE, error="again") is TaskStatus.FAILURE
    t = c.task(tid)
    assert (t.status, t.attempts, t.error) == (TaskStatus.FAILURE, 3, "again")
    assert [a["status"] for a in c.attempts(tid)] == ["FAILURE", "EXCEPTION", "FAILURE"]
    assert len(c.emitted_events([tid])[tid]) == 1


def test_a_timeout_or_success_is_never_retried(c: Contract) -> None:
    tid = c.add_task(max_retries=5)
    c.claim()
    assert c.finish(tid, 1, TaskStatus.TIMEOUT) is TaskStatus.TIMEOUT


def test_a_stale_attempt_cannot_finish_the_task_again(c: Contract) -> None:
    tid = c.add_task()
    c.claim()
    assert c.finish(tid, 2, TaskStatus.SUCCESS) is None  # not the current attempt
    assert c.finish(tid, 1, TaskStatus.FAILURE) is TaskStatus.FAILURE
    assert c.finish(tid, 1, TaskStatus.SUCCESS) is None  # already ended
    assert c.task(tid).status is TaskStatus.FAILURE
    assert len(c.emitted_events([tid])[tid]) == 1


def test_stopping_a_queued_task_ends_it_at_once(c: Contract) -> None:
    tid = c.add_task(semaphores=_sem("db"))
    assert c.request_stop(tid, T0 + S) is TaskStatus.STOPPED
    t = c.task(tid)
    assert (t.status, t.finished) == (TaskStatus.STOPPED, T0 + S)
    assert c.claim() == []
    (seq,) = c.emitted_events([tid])[tid]
    e = c.event(seq)
    assert e is not None and e.params["taskStatus"] == "STOPPED"
    assert c.request_stop(tid) is None  # ended already


def test_stopping_a_running_task_asks_its_worker_through_the_heartbeat(c: Contract) -> None:
    tid = c.add_task(max_retries=3)
    c.claim()
    assert not c.heartbeat(tid, 1)
    assert c.request_stop(tid) is TaskStatus.EXECUTING
    assert c.heartbeat(tid, 1)
    # The worker gives up; a stopped task is not retried.
    assert c.finish(tid, 1, TaskStatus.FAILURE, error="stopped") is TaskStatus.FAILURE


def test_a_heartbeat_of_an_attempt_that_is_no_longer_current_says_stop(c: Contract) -> None:
    tid = c.add_task()
    c.claim()
    assert c.heartbeat(tid, 2)  # not its attempt
    c.finish(tid, 1, TaskStatus.SUCCESS)
    assert c.heartbeat(tid, 1)  # ended


def test_an_attempt_whose_heartbeat_stopped_is_reaped(c: Contract) -> None:
    lost = c.add_task(semaphores=_sem("db"))
    alive = c.add_task()
    c.claim("w-lost", T0, limit=1)
    c.claim("w-alive", T0, limit=1)
    assert not c.heartbeat(alive, 1)
    c.age_heartbeat(lost, 60)  # its worker went silent a minute ago, by the database's clock
    assert c.reap(T0 + 60 * S, timeout_seconds=30) == [lost]
    t = c.task(lost)
    assert t.status is TaskStatus.EXCEPTION and "w-lost" in (t.error or "")
    assert c.task(alive).status is TaskStatus.EXECUTING
    assert c.metrics().semaphores[0].used == 0  # its hold went with it
    assert len(c.emitted_events([lost])[lost]) == 1


def test_a_lost_workers_attempts_are_reaped_at_once_by_its_name(c: Contract) -> None:
    a, b = c.add_task(), c.add_task()
    c.claim("w1", limit=1)
    c.claim("w2", limit=1)
    assert c.reap(T0, worker="w1") == [a]
    assert c.task(b).status is TaskStatus.EXECUTING


def test_a_reaped_attempt_with_retries_left_is_retried(c: Contract) -> None:
    tid = c.add_task(max_retries=1)
    c.claim()
    c.age_heartbeat(tid, 60)
    assert c.reap(T0 + 60 * S, timeout_seconds=30) == [tid]
    assert c.task(tid).status is TaskStatus.ENQUEUED


def test_a_reaped_workers_late_end_cannot_end_the_retry_it_waits_for(c: Contract) -> None:
    tid = c.add_task(max_retries=1, semaphores=_sem("db"))
    (first,) = c.claim("w-old")
    assert c.reap(T0, worker="w-old") == [tid]  # its worker was declared lost
    assert c.task(tid).status is TaskStatus.ENQUEUED  # queued for its retry, still attempt 1
    assert c.heartbeat(tid, first.attempt)  # the old worker, still alive, is told to stop
    assert c.finish(tid, first.attempt, TaskStatus.STOPPED, now=T0 + S) is None
    t = c.task(tid)
    assert (t.status, t.attempts, t.finished) == (TaskStatus.ENQUEUED, 1, None)
    assert [a["status"] for a in c.attempts(tid)] == ["EXCEPTION"]
    assert c.emitted_events([tid])[tid] == []
    (retry,) = c.claim("w-new", now=T0 + 10 * S)
    assert (retry.id, retry.attempt) == (tid, 2)
    assert c.finish(tid, 1, TaskStatus.STOPPED, now=T0 + 10 * S) is None  # still too late
    assert c.finish(tid, 2, TaskStatus.SUCCESS, now=T0 + 11 * S) is TaskStatus.SUCCESS


def test_a_reaped_workers_late_end_cannot_end_the_task_restarted_after_it(c: Contract) -> None:
    tid = c.add_task()
    c.claim("w-old")
    assert c.reap(T0, worker="w-old") == [tid]
    assert c.restart(tid, T0 + S)  # ENQUEUED again, its attempt count still 1
    assert c.finish(tid, 1, TaskStatus.SUCCESS, now=T0 + 2 * S) is None
    assert c.task(tid).status is TaskStatus.ENQUEUED
    (again,) = c.claim(now=T0 + 3 * S)
    assert again.attempt == 2


def test_a_dispatched_attempt_that_fails_before_it_starts_is_recorded(c: Contract) -> None:
    tid = c.add_task(semaphores=_sem("db"))
    c.claim("broker", start=False)
    assert c.finish(tid, 1, TaskStatus.EXCEPTION, error="no such task type") is (
        TaskStatus.EXCEPTION
    )
    t = c.task(tid)
    assert (t.status, t.error) == (TaskStatus.EXCEPTION, "no such task type")
    assert c.metrics().semaphores[0].used == 0


def test_a_dispatched_attempt_not_started_is_not_reaped(c: Contract) -> None:
    tid = c.add_task()
    c.claim("broker", start=False)
    assert c.reap(T0 + 3600 * S, timeout_seconds=30) == []
    assert c.unstarted_dispatches(T0 + S) == [(tid, 1, "T")]
    assert c.unstarted_dispatches(T0) == []  # dispatched at T0: not older than T0


def test_an_undone_dispatch_gives_the_claim_back(c: Contract) -> None:
    tid = c.add_task(semaphores=_sem("db"))
    c.claim("broker", start=False)
    c.undo_dispatch(tid, 1)
    t = c.task(tid)
    assert (t.status, t.attempts) == (TaskStatus.ENQUEUED, 0)
    assert c.attempts(tid) == []
    assert c.metrics().semaphores[0].used == 0
    (again,) = c.claim()
    assert (again.id, again.attempt) == (tid, 1)


def test_a_restarted_task_runs_a_new_attempt_and_keeps_the_old_ones(c: Contract) -> None:
    tid = c.add_task()
    c.claim()
    c.finish(tid, 1, TaskStatus.FAILURE, error="x", output={"a": 1})
    assert c.restart(tid, T0 + S)
    t = c.task(tid)
    assert (t.status, t.error, t.output, t.finished) == (TaskStatus.ENQUEUED, None, None, None)
    (again,) = c.claim(now=T0 + S)
    assert again.attempt == 2
    assert [a["attempt"] for a in c.attempts(tid)] == [1, 2]
    assert not c.restart(tid)  # an active task is not restarted


def test_a_log_is_read_in_chunk_order_for_the_latest_attempt(c: Contract) -> None:
    tid = c.add_task(max_retries=1)
    c.claim()
    c.append_log(tid, 1, 1, "world\n")
    c.append_log(tid, 1, 0, "hello ")
    c.finish(tid, 1, TaskStatus.FAILURE)
    c.claim(now=T0 + 10 * S)
    c.append_log(tid, 2, 0, "second")
    assert c.read_log(tid) == (2, "second")
    assert c.read_log(tid, 1) == (1, "hello world\n")
    assert c.read_log(c.add_task()) == (0, "")


def test_a_weight_no_semaphore_could_grant_is_refused(c: Contract) -> None:
    c.set_capacity("pool", 2)
    c.check_weights([("pool", 2), ("new", 1)])
    with pytest.raises(InvalidInput, match="capacity 2"):
        c.check_weights([("pool", 3)])
    with pytest.raises(InvalidInput, match="does not exist yet"):
        c.check_weights([("new", 2)])


def test_an_unfired_task_is_deleted(c: Contract) -> None:
    tid = c.add_task()
    c.delete_unfired(tid)
    assert c.tasks([tid]) == {}
    assert c.claim() == []


def test_a_task_id_is_never_handed_out_twice(c: Contract) -> None:
    c.add_task()
    newest = c.add_task()
    c.delete_unfired(newest)  # the reactor does this when a firing turns out a repeat
    assert c.add_task() > newest
