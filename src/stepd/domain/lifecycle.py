"""What the end of an attempt means for its task, decided without a database.

`decide(task, outcome, policy)` answers: does the task run again (and when), or does
it end, with which status, reporting itself by which status event, giving back its
semaphore units. `stop(task, policy)` answers the same for a stop request. The store
(`store/runs.py`) reads the task, asks, and applies the `Transition` with its own
guarded statements in the caller's transaction, so what a finished task becomes is
code you can read and test here, while "exactly once" stays the store's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from stepd.domain.params import Params, Scalar
from stepd.domain.tasks import ACTIVE, TERMINAL, TaskStatus

MAX_PARAMS_IN_EVENT = 50  # task params copied into a status event, at most
RETRYABLE = frozenset({TaskStatus.FAILURE, TaskStatus.EXCEPTION})  # by default
STOPPED_BEFORE_START = "stopped before it started"  # the error of a task stopped while queued


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How an attempt ended, as its worker (or the reaper) saw it."""

    status: TaskStatus  # a terminal status: what the attempt itself came to
    output: object = None  # JSON the task returned (None: nothing)
    error: str | None = None  # why it ended badly, for people


def worker_lost(worker: str | None, last_heartbeat: datetime | None) -> Outcome:
    """The outcome of an attempt whose worker died or went silent: an EXCEPTION, retryable."""
    seen = "" if last_heartbeat is None else f" (last heartbeat {last_heartbeat})"
    return Outcome(
        status=TaskStatus.EXCEPTION,
        error=f"worker {worker} was lost{seen}; the attempt was abandoned",
    )


@dataclass(frozen=True, kw_only=True)
class StatusEvents:
    """How finished tasks report themselves as events (a deployment's choice)."""

    name: str = "taskEvent"  # the event name (`--task-event-name`; Crypta: cryptaTaskEvent)
    environment: str = "stable"  # the `environment` param of every status event


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Which outcomes retry, how long a retry waits, and how a terminal status is reported."""

    backoff_base_seconds: float = 1.0  # the wait before the first retry; doubled per attempt
    backoff_max_seconds: float = 600.0  # no retry waits longer than this
    retry_on: frozenset[TaskStatus] = RETRYABLE  # attempt statuses a retry may follow
    events: StatusEvents = field(default_factory=StatusEvents)  # the status events' name, env


@dataclass(frozen=True, kw_only=True, slots=True)  # slots: built on every attempt end
class TaskState:
    """What a decision needs to know of a task, read in the transaction that applies it."""

    id: int  # the task (its status event's taskId and source)
    type: str  # its task type (the event's taskType)
    params: Mapping[str, object]  # its params; the event copies the scalar ones
    author: str | None  # the event's author
    status: TaskStatus  # its status now: an active one
    attempt: int  # the attempt that is ending (1 for the first); 0 if none ever started
    max_retries: int  # how many attempts may follow a failed first one
    stop_requested: bool  # someone asked to stop it: it is not retried
    held: bool  # a worker holds it (claimed, or dispatched to a broker)


@dataclass(frozen=True, kw_only=True, slots=True)  # slots: built on every attempt end
class StatusEvent:
    """The event a task reports itself by when it reaches a terminal status."""

    name: str  # StatusEvents.name
    params: Params  # the task's scalar params, then taskType, taskStatus, taskId, environment
    author: str | None  # the task's author
    source: str  # the task id, as text (the source type is always "task")


@dataclass(frozen=True, kw_only=True, slots=True)  # slots: built on every attempt end
class Transition:
    """What the store writes for a decision, in one transaction."""

    status: TaskStatus  # the task's next status: ENQUEUED for a retry, else terminal
    attempt_status: TaskStatus | None  # the ending attempt's status; None: no attempt ends
    retry_after_seconds: float | None  # a retry waits this long (its not_before); None: none
    event: StatusEvent | None  # the status event to store: set exactly when status is terminal
    release_holds: bool  # give back every semaphore unit the task holds
    output: object  # the task's output when an attempt ends (None: none); else unused
    error: str | None  # the task's error from now on (and the ending attempt's)

    @property
    def retries(self) -> bool:
        """The task runs again, as a new attempt, after `retry_after_seconds`."""
        return self.retry_after_seconds is not None


def backoff_seconds(attempt: int, policy: Policy | None = None) -> float:
    """How long the retry after attempt `attempt` waits: base, doubled per attempt, capped."""
    p = _DEFAULT if policy is None else policy
    # The exponent is bounded so that a task with thousands of retries reaches the cap
    # rather than an OverflowError (2 ** 1024 is no float).
    doubling = 2.0 ** min(max(0, attempt - 1), 1023)
    return float(min(p.backoff_max_seconds, p.backoff_base_seconds * doubling))


def status_event(task: TaskState, status: TaskStatus, events: StatusEvents) -> StatusEvent:
    """The event of `task` reaching `status`.

    Its params are the task's first MAX_PARAMS_IN_EVENT params that are JSON scalars
    (others are dropped), with taskType, taskStatus, taskId and environment on top:
    a config downstream joins on them, so they win over task params of the same name.
    """
    params: dict[str, Scalar] = {}
    for key, value in list(task.params.items())[:MAX_PARAMS_IN_EVENT]:
        if value is None or isinstance(value, str | int | float | bool):
            params[key] = value
    params.update(
        taskType=task.type,
        taskStatus=status.value,
        taskId=str(task.id),
        environment=events.environment,
    )
    return StatusEvent(name=events.name, params=params, author=task.author, source=str(task.id))


def decide(task: TaskState, outcome: Outcome, policy: Policy) -> Transition:
    """What attempt `task.attempt` ending with `outcome` makes of the task.

    A FAILURE or EXCEPTION (the policy's `retry_on`) is retried while the attempt
    number is <= max_retries, so a task runs at most max_retries + 1 times, unless a
    stop was requested; the retry waits `backoff_seconds(attempt)` and reports
    nothing. Anything else ends the task with the attempt's status and one status
    event. Either way the attempt's semaphore units are given back.
    """
    if outcome.status not in TERMINAL:
        raise ValueError(f"an attempt ends in a terminal status, not {outcome.status.value}")
    if task.status not in ACTIVE:
        raise ValueError(f"task {task.id} has already ended ({task.status.value})")
    retry = (
        outcome.status in policy.retry_on
        and task.attempt <= task.max_retries
        and not task.stop_requested
    )
    if retry:
        return Transition(
            status=TaskStatus.ENQUEUED,
            attempt_status=outcome.status,
            retry_after_seconds=backoff_seconds(task.attempt, policy),
            event=None,
            release_holds=True,
            output=outcome.output,
            error=outcome.error,
        )
    return Transition(
        status=outcome.status,
        attempt_status=outcome.status,
        retry_after_seconds=None,
        event=status_event(task, outcome.status, policy.events),
        release_holds=True,
        output=outcome.output,
        error=outcome.error,
    )


def stop(task: TaskState, policy: Policy) -> Transition | None:
    """A stop request for an active task: the transition to apply now, or None.

    A task no worker holds (queued, waiting on a semaphore, or waiting out a retry's
    backoff) is STOPPED at once, reported like any terminal status. A held one is
    not: its worker is asked (stop_requested) and ends the attempt as STOPPED itself,
    through `decide`.
    """
    if task.status not in ACTIVE:
        raise ValueError(f"task {task.id} has already ended ({task.status.value})")
    if task.held:
        return None
    return Transition(
        status=TaskStatus.STOPPED,
        attempt_status=None,  # no attempt runs: the last one, if any, has its own end
        retry_after_seconds=None,
        event=status_event(task, TaskStatus.STOPPED, policy.events),
        release_holds=False,  # units are held only from a claim (then the task is held)
        output=None,  # no attempt ends: the task keeps the output it has
        error=STOPPED_BEFORE_START,
    )


_DEFAULT = Policy()
