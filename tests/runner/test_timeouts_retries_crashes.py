"""Tasks that hang, keep failing, or lose their worker: TIMEOUT, retries, crash recovery."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .helpers import RunnerServer, process_gone, unique, wait_until, when

HEARTBEAT_SLACK_SECONDS = 8.0  # a lost worker's task must end within this


def _pid_in(path: Path, *, timeout: float = 15.0) -> int:
    def written() -> str | None:
        return path.read_text() if path.exists() else None

    return int(wait_until(written, timeout=timeout, what=str(path)))


def test_kill_timeout_ends_a_hanging_task_in_timeout_and_kills_the_children_it_spawned(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    task = runner_server.post_task(
        "T_SPAWN_AND_SLEEP", {"pid_file": str(pid_file), "seconds": 60}, kill_timeout=1
    )
    child = _pid_in(pid_file)
    started = time.monotonic()

    ended = runner_server.wait(task["id"], timeout=10)
    took = time.monotonic() - started

    assert ended["status"] == "TIMEOUT", ended
    assert took < 6, f"a kill_timeout of 1s took {took:.1f}s to end the task"
    assert "kill_timeout" in runner_server.log_text(task["id"])
    wait_until(lambda: process_gone(child), timeout=5, what=f"the task's child {child} to die")


def test_max_retries_reruns_an_always_failing_task_with_backoff_and_keeps_every_attempt(
    runner_server: RunnerServer,
) -> None:
    task = runner_server.post_task("T_FAILS", {"marker": unique("m")}, max_retries=2)

    ended = runner_server.wait(task["id"], timeout=20)

    assert ended["status"] == "FAILURE", ended
    assert ended["attempts"] == 3
    history = ended["attempt_history"]
    assert [a["attempt"] for a in history] == [1, 2, 3]
    assert [a["status"] for a in history] == ["FAILURE"] * 3
    # Exponential backoff: 1 s before the second attempt, 2 s before the third.
    gaps = [
        (when(history[i + 1]["started"]) - when(history[i]["finished"])).total_seconds()
        for i in range(2)
    ]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps
    for attempt in (1, 2, 3):
        assert "failing on purpose" in runner_server.log_text(task["id"], attempt=attempt)


@dataclass(frozen=True)
class Crash:
    worker: int  # the worker killed
    horse: int  # the task's own process, which must die with it
    workers_before: int  # how many workers there were
    at: float  # time.monotonic() of the kill


def _crash_worker_of(runner_server: RunnerServer, state: Path) -> Crash:
    """Wait for the T_CRASHABLE task's first attempt, then kill -9 the worker running it."""
    worker = _pid_in(state / "worker.pid")
    horse = _pid_in(state / "horse.pid")
    workers = runner_server.worker_pids()
    assert worker in workers, (worker, workers)
    os.kill(worker, signal.SIGKILL)
    return Crash(worker=worker, horse=horse, workers_before=len(workers), at=time.monotonic())


def _wait_for_a_replacement(runner_server: RunnerServer, crash: Crash) -> None:
    """As many workers as before, the killed one not among them."""
    wait_until(
        lambda: (
            len(pids := runner_server.worker_pids()) == crash.workers_before
            and crash.worker not in pids
        ),
        timeout=20,
        what=f"a worker to replace {crash.worker}",
    )


def test_worker_killed_mid_task_ends_it_in_exception_releases_its_semaphore_and_is_replaced(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    semaphore = runner_server.new_semaphore(1)
    task = runner_server.post_task(
        "T_CRASHABLE",
        {"state_dir": str(tmp_path)},
        semaphores=[{"name": semaphore, "weight": 1}],
    )
    crash = _crash_worker_of(runner_server, tmp_path)

    ended = runner_server.wait(task["id"], timeout=HEARTBEAT_SLACK_SECONDS + 5)
    took = time.monotonic() - crash.at

    assert ended["status"] == "EXCEPTION", ended
    assert took < HEARTBEAT_SLACK_SECONDS, f"the lost task took {took:.1f}s to end"
    assert [a["status"] for a in ended["attempt_history"]] == ["EXCEPTION"]
    assert runner_server.semaphore(semaphore)["used"] == 0
    # The task's own process must not outlive its worker (no task runs twice at once).
    wait_until(lambda: process_gone(crash.horse), timeout=5, what=f"horse {crash.horse} to die")
    # The server keeps running tasks, on a replacement worker.
    after = runner_server.run("T_ECHO", {"marker": unique("after-crash")}, timeout=20)
    assert after["status"] == "SUCCESS", after
    _wait_for_a_replacement(runner_server, crash)
    assert runner_server.healthy()


def test_worker_killed_mid_task_is_retried_when_max_retries_allows(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    semaphore = runner_server.new_semaphore(1)
    task = runner_server.post_task(
        "T_CRASHABLE",
        {"state_dir": str(tmp_path)},
        max_retries=1,
        semaphores=[{"name": semaphore, "weight": 1}],
    )
    crash = _crash_worker_of(runner_server, tmp_path)

    ended = runner_server.wait(task["id"], timeout=HEARTBEAT_SLACK_SECONDS + 15)

    assert ended["status"] == "SUCCESS", ended
    assert ended["output"] == {"attempt": "again"}
    assert [a["status"] for a in ended["attempt_history"]] == ["EXCEPTION", "SUCCESS"]
    assert runner_server.semaphore(semaphore)["used"] == 0
    _wait_for_a_replacement(runner_server, crash)
