"""The work horse is reused only while it stays clean; whatever a task leaves behind ends it.

These drive `stepd.runner.attempt.Horse` in process (the pytest process is the
worker), with task types declared here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stepd import command_task, task_type
from stepd.domain.tasks import TaskStatus
from stepd.runner.attempt import Horse, LogBuffer
from stepd.runner.horse import HorseLimits
from stepd.runner.registry import TaskType, load_task_types

from .helpers import process_gone, wait_until


@task_type("H_PID")
def report_pid(marker: str = "") -> int:
    print(f"hello from {marker}")
    return os.getpid()


@task_type("H_LEAVE_CHILD")
def leave_child() -> int:
    return subprocess.Popen(["sleep", "300"]).pid


@task_type("H_LEAVE_THREAD")
def leave_thread() -> int:
    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()
    return os.getpid()


@task_type("H_SET_ENV")
def set_env(value: str) -> int:
    os.environ["STEPD_TEST_LEFTOVER"] = value
    return os.getpid()


@task_type("H_READ_ENV")
def read_env() -> str | None:
    return os.environ.get("STEPD_TEST_LEFTOVER")


@task_type("H_CLOSE_STDOUT")
def close_stdout() -> None:
    print("closing stdout", flush=True)
    sys.stdout.close()


@task_type("H_LEAK_FILES")
def leak_files(count: int) -> None:
    _LEAKED.extend(open(os.devnull) for _ in range(count))  # noqa: SIM115


_LEAKED: list[object] = []


@task_type("H_EXIT")
def hard_exit(code: int) -> None:
    print("leaving abruptly", flush=True)
    os._exit(code)


@task_type("H_SLEEP")
def sleep(seconds: float) -> None:
    time.sleep(seconds)


# The command's own child outlives it: the horse adopts it (subreaper) and must retire.
orphan_maker = command_task(
    "H_CMD_ORPHAN",
    argv=[
        sys.executable,
        "-c",
        "import subprocess; print(subprocess.Popen(['sleep', '300']).pid, flush=True)",
    ],
)

TYPES: dict[str, TaskType] = load_task_types([__name__])  # this module, as imported


@pytest.fixture
def horse() -> Iterator[Horse]:
    made = Horse(TYPES)
    yield made
    made.close()


def run(
    horse: Horse, name: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30
) -> tuple[Any, str]:
    outcome, log = horse.run(
        TYPES[name], params or {}, kill_timeout_seconds=timeout, tick=lambda _buf: False
    )
    return outcome, log.take()


def test_a_clean_horse_runs_attempts_one_after_another_with_separate_logs(horse: Horse) -> None:
    first, first_log = run(horse, "H_PID", {"marker": "one"})
    second, second_log = run(horse, "H_PID", {"marker": "two"})
    assert first.status is second.status is TaskStatus.SUCCESS
    assert first.output == second.output == horse.pid
    assert horse.forks == 1
    assert first_log == "hello from one\n"
    assert second_log == "hello from two\n"


def test_a_task_that_leaves_a_child_gets_it_killed_and_the_next_attempt_a_fresh_horse(
    horse: Horse,
) -> None:
    first_pid = run(horse, "H_PID")[0].output
    outcome, _ = run(horse, "H_LEAVE_CHILD")
    assert outcome.status is TaskStatus.SUCCESS
    assert "child processes" in (horse.retired_because or "")
    wait_until(lambda: process_gone(outcome.output), timeout=5, what="the leftover child to die")
    assert run(horse, "H_PID")[0].output != first_pid
    assert horse.forks == 2


def test_a_command_whose_child_outlives_it_retires_the_horse_and_the_child_dies(
    horse: Horse,
) -> None:
    outcome, log = run(horse, "H_CMD_ORPHAN")
    assert outcome.status is TaskStatus.SUCCESS
    orphan = int(log.strip().splitlines()[-1])
    assert "child processes" in (horse.retired_because or "")
    wait_until(lambda: process_gone(orphan), timeout=5, what="the command's orphan to die")


def test_a_task_that_leaves_a_thread_retires_the_horse(horse: Horse) -> None:
    pid = run(horse, "H_LEAVE_THREAD")[0].output
    assert "threads" in (horse.retired_because or "")
    assert run(horse, "H_PID")[0].output != pid


def test_an_environment_change_does_not_reach_the_next_attempt(horse: Horse) -> None:
    assert run(horse, "H_SET_ENV", {"value": "dirty"})[0].status is TaskStatus.SUCCESS
    assert "environment" in (horse.retired_because or "")
    assert run(horse, "H_READ_ENV")[0].output is None


def test_a_task_that_closes_stdout_retires_the_horse_and_the_next_one_still_logs(
    horse: Horse,
) -> None:
    assert run(horse, "H_CLOSE_STDOUT")[0].status is TaskStatus.SUCCESS
    assert "stdout" in (horse.retired_because or "")
    outcome, log = run(horse, "H_PID", {"marker": "after"})
    assert outcome.status is TaskStatus.SUCCESS
    assert log == "hello from after\n"


def test_a_few_files_left_open_are_reuse_but_a_leak_retires_the_horse(horse: Horse) -> None:
    pid = run(horse, "H_PID")[0].output
    run(horse, "H_LEAK_FILES", {"count": 3})
    assert horse.pid == pid
    run(horse, "H_LEAK_FILES", {"count": 100})
    assert "files open" in (horse.retired_because or "")
    assert horse.pid is None


def test_a_task_that_exits_the_process_is_an_exception_and_the_next_attempt_runs(
    horse: Horse,
) -> None:
    outcome, log = run(horse, "H_EXIT", {"code": 3})
    assert outcome.status is TaskStatus.EXCEPTION
    assert outcome.error == "the task process exited with code 3 without a result"
    assert "leaving abruptly" in log
    assert run(horse, "H_PID")[0].status is TaskStatus.SUCCESS


def test_a_timeout_kills_the_horse_and_the_next_attempt_gets_another(horse: Horse) -> None:
    pid = run(horse, "H_PID")[0].output
    outcome, log = run(horse, "H_SLEEP", {"seconds": 30}, timeout=0.3)
    assert outcome.status is TaskStatus.TIMEOUT
    assert "kill_timeout of 0.3s reached" in log
    assert process_gone(pid)
    assert run(horse, "H_PID")[0].output != pid


def test_a_horse_dead_between_attempts_is_replaced(horse: Horse) -> None:
    pid = run(horse, "H_PID")[0].output
    os.kill(pid, 9)
    wait_until(lambda: process_gone(pid), timeout=5, what="the horse to die")
    assert run(horse, "H_PID")[0].status is TaskStatus.SUCCESS


def test_max_tasks_one_forks_a_fresh_process_for_every_attempt() -> None:
    horse = Horse(TYPES, HorseLimits(max_tasks=1))
    try:
        pids = {run(horse, "H_PID")[0].output for _ in range(3)}
    finally:
        horse.close()
    assert len(pids) == 3
    assert horse.forks == 3


def test_a_stop_request_kills_the_attempt(horse: Horse) -> None:
    outcome, buffer = horse.run(
        TYPES["H_SLEEP"],
        {"seconds": 30},
        kill_timeout_seconds=None,
        tick=lambda _buf: True,
        tick_interval_seconds=0.1,
    )
    assert outcome.status is TaskStatus.STOPPED
    assert isinstance(buffer, LogBuffer)
    assert "stopped on request" in buffer.take()
    assert horse.pid is None
