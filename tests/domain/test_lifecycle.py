"""The task lifecycle's decisions, without a database: retry or end, backoff, status event."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepd.domain import lifecycle
from stepd.domain.lifecycle import Outcome, Policy, StatusEvents, TaskState, decide
from stepd.domain.tasks import ACTIVE, TERMINAL, TaskStatus

POLICY = Policy(events=StatusEvents(name="cryptaTaskEvent", environment="testing"))
LOST = lifecycle.worker_lost("host:1:local-0.1", datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
# Every way an attempt ends: the statuses a worker reports, and the reaper's lost worker.
OUTCOMES = {
    "success": Outcome(status=TaskStatus.SUCCESS, output={"ok": 1}),
    "failure": Outcome(status=TaskStatus.FAILURE, output={"exit_code": 2}, error="exit 2"),
    "exception": Outcome(status=TaskStatus.EXCEPTION, error="ValueError: no"),
    "timeout": Outcome(status=TaskStatus.TIMEOUT, error="killed after kill_timeout of 2s"),
    "stopped": Outcome(status=TaskStatus.STOPPED, error="stopped on request"),
    "lost worker": LOST,
}
RETRIED = {"failure", "exception", "lost worker"}


def _task(**changes: object) -> TaskState:
    task = TaskState(
        id=7,
        type="CRYPTA_SOUP",
        params={"date": "2026-11-29", "n": 3},
        author="robot-crypta",
        status=TaskStatus.EXECUTING,
        attempt=1,
        max_retries=2,
        stop_requested=False,
        held=True,
    )
    return dataclasses.replace(task, **changes)  # type: ignore[arg-type]


def _event_params(status: TaskStatus) -> dict[str, object]:
    return {
        "date": "2026-11-29",
        "n": 3,
        "taskType": "CRYPTA_SOUP",
        "taskStatus": status.value,
        "taskId": "7",
        "environment": "testing",
    }


@pytest.mark.parametrize("stop_requested", [False, True], ids=["running", "stop requested"])
@pytest.mark.parametrize("attempt", [1, 2, 3], ids=["retries left", "last retry", "exhausted"])
@pytest.mark.parametrize("kind", list(OUTCOMES))
def test_only_a_failure_or_exception_with_retries_left_and_no_stop_request_is_retried(
    kind: str, attempt: int, stop_requested: bool
) -> None:
    outcome = OUTCOMES[kind]
    task = _task(attempt=attempt, max_retries=2, stop_requested=stop_requested)
    t = decide(task, outcome, POLICY)
    retried = kind in RETRIED and attempt <= 2 and not stop_requested
    assert t.retries is retried
    assert t.attempt_status == outcome.status  # the attempt's own row keeps what happened
    assert t.release_holds  # whatever ends an attempt gives its semaphore units back
    assert (t.output, t.error) == (outcome.output, outcome.error)
    if retried:
        assert t.status == TaskStatus.ENQUEUED
        assert t.retry_after_seconds == 2.0 ** (attempt - 1)
        assert t.event is None  # intermediate attempts report nothing
    else:
        assert t.status == outcome.status
        assert t.retry_after_seconds is None
        assert t.event == lifecycle.StatusEvent(
            name="cryptaTaskEvent",
            params=_event_params(outcome.status),
            author="robot-crypta",
            source="7",
        )


def test_a_task_without_retries_ends_at_its_first_failure() -> None:
    t = decide(_task(max_retries=0), OUTCOMES["failure"], POLICY)
    assert (t.status, t.retries) == (TaskStatus.FAILURE, False)


def test_a_lost_worker_is_an_exception_saying_which_worker_and_when_it_last_beat() -> None:
    assert LOST.status == TaskStatus.EXCEPTION
    assert LOST.error == (
        "worker host:1:local-0.1 was lost (last heartbeat 2026-11-29 12:00:00+00:00);"
        " the attempt was abandoned"
    )
    never = lifecycle.worker_lost("w", None)
    assert never.error == "worker w was lost; the attempt was abandoned"


def test_backoff_doubles_from_one_second_and_stops_at_ten_minutes() -> None:
    waits = [lifecycle.backoff_seconds(n) for n in range(0, 13)]
    assert waits == [1, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    assert lifecycle.backoff_seconds(10_000) == 600.0  # no overflow for a long-lived task


def test_the_policy_sets_the_backoff_base_and_cap_and_which_outcomes_retry() -> None:
    policy = Policy(
        backoff_base_seconds=0.5,
        backoff_max_seconds=3.0,
        retry_on=frozenset({TaskStatus.TIMEOUT}),
    )
    assert [lifecycle.backoff_seconds(n, policy) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 3, 3]
    task = _task(attempt=3, max_retries=5)
    timeout = decide(task, OUTCOMES["timeout"], policy)
    assert (timeout.status, timeout.retry_after_seconds) == (TaskStatus.ENQUEUED, 2.0)
    failure = decide(task, OUTCOMES["failure"], policy)
    assert (failure.status, failure.retries) == (TaskStatus.FAILURE, False)
    assert failure.event is not None and failure.event.name == "taskEvent"  # the default


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_each_terminal_status_reports_itself_in_the_status_event(status: TaskStatus) -> None:
    t = decide(_task(max_retries=0), Outcome(status=status), POLICY)
    assert t.status == status
    assert t.event is not None
    assert t.event.params["taskStatus"] == status.value
    assert t.event.params == _event_params(status)


def test_the_status_event_keeps_the_first_fifty_scalar_params_and_its_own_keys_win() -> None:
    params: dict[str, object] = {f"p{i:02}": i for i in range(60)}
    params.update(p03=[1, 2], p04={"a": 1}, p05=None, p06=True, p07=1.5)
    params["taskStatus"] = "mine"  # past the fiftieth: dropped before it could be overridden
    first = {"taskType": "given", "environment": "mine", **params}
    event = lifecycle.status_event(_task(params=first), TaskStatus.SUCCESS, POLICY.events)
    kept = list(first)[:50]
    expected = {k: first[k] for k in kept if k not in {"p03", "p04"}}
    expected.update(taskType="CRYPTA_SOUP", taskStatus="SUCCESS", taskId="7", environment="testing")
    assert event.params == expected
    assert (event.params["p05"], event.params["p06"], event.params["p07"]) == (None, True, 1.5)
    assert list(event.params)[:2] == ["taskType", "environment"]  # the key order is kept


def test_an_attempt_cannot_end_unfinished_nor_a_finished_task_end_again() -> None:
    with pytest.raises(ValueError, match="terminal status, not EXECUTING"):
        decide(_task(), Outcome(status=TaskStatus.EXECUTING), POLICY)
    with pytest.raises(ValueError, match="already ended"):
        decide(_task(status=TaskStatus.SUCCESS), OUTCOMES["failure"], POLICY)


@pytest.mark.parametrize("status", sorted(ACTIVE))
def test_a_stop_request_ends_a_task_no_worker_holds_at_once_with_an_event(
    status: TaskStatus,
) -> None:
    t = lifecycle.stop(_task(status=status, held=False, attempt=1), POLICY)
    assert t is not None
    assert (t.status, t.error) == (TaskStatus.STOPPED, "stopped before it started")
    assert t.attempt_status is None  # no attempt runs: the last one has its own end
    assert not t.retries and not t.release_holds
    assert t.event is not None and t.event.params == _event_params(TaskStatus.STOPPED)


def test_a_stop_request_for_a_held_task_is_left_to_its_worker() -> None:
    assert lifecycle.stop(_task(held=True), POLICY) is None
    with pytest.raises(ValueError, match="already ended"):
        lifecycle.stop(_task(status=TaskStatus.FAILURE, held=False), POLICY)


tasks = st.builds(
    _task,
    status=st.sampled_from(sorted(ACTIVE)),
    attempt=st.integers(0, 40),
    max_retries=st.integers(0, 30),
    stop_requested=st.booleans(),
    held=st.booleans(),
)
outcomes = st.builds(
    Outcome,
    status=st.sampled_from(sorted(TERMINAL)),
    output=st.none() | st.integers(),
    error=st.none() | st.text(max_size=5),
)
policies = st.builds(
    Policy,
    backoff_base_seconds=st.floats(0.01, 10),
    backoff_max_seconds=st.floats(10, 1000),
    retry_on=st.frozensets(st.sampled_from(sorted(TERMINAL))),
)


@given(tasks, outcomes, policies)
def test_a_transition_never_retries_past_max_retries_nor_after_a_stop_request(
    task: TaskState, outcome: Outcome, policy: Policy
) -> None:
    t = decide(task, outcome, policy)
    if t.retries:
        assert task.attempt <= task.max_retries
        assert not task.stop_requested
        assert outcome.status in policy.retry_on
        assert t.retry_after_seconds is not None
        assert 0 < t.retry_after_seconds <= policy.backoff_max_seconds


@given(tasks, outcomes, policies)
def test_a_terminal_status_always_emits_exactly_one_status_event_and_a_retry_none(
    task: TaskState, outcome: Outcome, policy: Policy
) -> None:
    t = decide(task, outcome, policy)
    assert (t.status in TERMINAL) is (t.event is not None)
    assert (t.status == TaskStatus.ENQUEUED) is t.retries
    if t.event is not None:
        assert t.event.params["taskStatus"] == t.status.value
        assert t.event.params["taskId"] == str(task.id)
    assert t.release_holds


@given(st.integers(0, 25), st.booleans())
def test_a_task_that_always_fails_runs_max_retries_plus_one_times(
    max_retries: int, exception: bool
) -> None:
    outcome = OUTCOMES["exception" if exception else "failure"]
    runs, waited, t = 0, 0.0, None
    while t is None or t.retries:
        runs += 1
        t = decide(_task(attempt=runs, max_retries=max_retries), outcome, POLICY)
        waited += t.retry_after_seconds or 0.0
    assert runs == max_retries + 1
    assert t.status == outcome.status
    assert waited == sum(lifecycle.backoff_seconds(n) for n in range(1, max_retries + 1))
