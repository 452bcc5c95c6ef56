"""Tasks of the built-in sandbox: statuses after the original Sandbox."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


class TaskStatus(enum.StrEnum):
    ENQUEUED = "ENQUEUED"  # waiting for a worker
    WAIT_MUTEX = "WAIT_MUTEX"  # waiting for semaphore capacity
    EXECUTING = "EXECUTING"  # a worker runs it
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"  # the task's own code said it failed (non-zero exit, 4xx/5xx)
    EXCEPTION = "EXCEPTION"  # it raised, or its params did not fit, or its worker died
    TIMEOUT = "TIMEOUT"  # killed after kill_timeout
    STOPPED = "STOPPED"  # stopped by a person


TERMINAL = frozenset(
    {
        TaskStatus.SUCCESS,
        TaskStatus.FAILURE,
        TaskStatus.EXCEPTION,
        TaskStatus.TIMEOUT,
        TaskStatus.STOPPED,
    }
)
ACTIVE = frozenset({TaskStatus.ENQUEUED, TaskStatus.WAIT_MUTEX, TaskStatus.EXECUTING})


@dataclass(frozen=True, kw_only=True)
class Task:
    """A task: one run (with retries) of a task type with params."""

    id: int  # the sandbox_task_id clients see
    type: str  # the task type
    params: Mapping[str, object]  # the binding plus the config's rendered task_params
    status: TaskStatus
    author: str | None  # the config's author, or the user who created it by hand
    priority: int  # higher runs first
    semaphores: tuple[Mapping[str, object], ...]  # [{name, weight}]
    kill_timeout: int | None  # seconds
    max_retries: int
    attempts: int  # how many times it started
    config_seq: int | None  # the config that launched it (None: made by hand)
    config_version: int | None  # which version of that config
    event_seq: int | None  # the triggering event
    created: datetime
    updated: datetime
    started: datetime | None
    finished: datetime | None
    output: object  # JSON the task returned
    error: str | None  # why it ended badly, for people
    # A config run by hand (`POST /configs/{id}/run`): {by: who ran it, binding}; else None
    manual: Mapping[str, object] | None = None
    backfill_id: int | None = None  # the backfill that made it (manual then holds its binding)
