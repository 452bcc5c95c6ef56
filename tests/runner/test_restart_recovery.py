"""A server that dies (with its workers, as when a machine goes down) and starts again
on the same store recovers every task: the attempt in flight is given up after the
heartbeat timeout and retried, and the queued tasks run (issue 4, crashes)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from conftest import fresh_database, make_token, start_server

from stepd.store import open_store

from .conftest import HEARTBEAT_TIMEOUT_SECONDS, TASKS_FILE, _descendants
from .helpers import RunnerServer, unique, wait_until

LOCAL = (
    "--executor",
    "local",
    "--workers",
    "2",
    "--heartbeat-timeout",
    str(HEARTBEAT_TIMEOUT_SECONDS),
)


def _serve(db_url: str, log: Path, token: str) -> tuple[RunnerServer, int]:
    live = start_server(db_url, log, "--tasks", str(TASKS_FILE), *LOCAL)
    server = RunnerServer(
        url=live.url,
        db_url=db_url,
        backend="restart",
        token=token,
        log_path=log,
        worker_pids=lambda: [],
        pid=live.process.pid,
    )
    return server, live.process.pid


def _crash(pid: int) -> None:
    """SIGKILL a server and everything it started: nothing gets to clean up."""
    for victim in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_restarted_server_recovers_the_task_in_flight_and_runs_the_queue(
    store: str, tmp_path: Path
) -> None:
    with fresh_database(store, tmp_path) as db_url:
        opened = open_store(db_url)
        token = make_token(opened, "robot-restart")
        opened.close()
        first, pid = _serve(db_url, tmp_path / "first.log", token)
        second: RunnerServer | None = None
        try:
            semaphore = first.new_semaphore(1)
            uses = [{"name": semaphore, "weight": 1}]
            marker = unique("flight")
            # Long enough to be killed mid-flight (the crash follows EXECUTING within
            # milliseconds; a task that ended first would leave no EXCEPTION attempt), and
            # run once more, in full, by the second server.
            flying = first.post_task(
                "T_SLEEP", {"seconds": 2, "marker": marker}, max_retries=1, semaphores=uses
            )
            queued = [
                first.post_task("T_ECHO", {"marker": unique("queued")}, semaphores=uses)
                for _ in range(3)
            ]
            wait_until(
                lambda: first.task(flying["id"])["status"] == "EXECUTING",
                timeout=30,
                what="the long task to start",
            )
            first.close()
            _crash(pid)

            second, pid = _serve(db_url, tmp_path / "second.log", token)
            ended = second.wait(flying["id"], timeout=HEARTBEAT_TIMEOUT_SECONDS + 30)
            assert ended["status"] == "SUCCESS", ended
            history = [a["status"] for a in ended["attempt_history"]]
            assert history == ["EXCEPTION", "SUCCESS"], history  # given up, then run again
            for task in second.wait_all([t["id"] for t in queued], timeout=30):
                assert task["status"] == "SUCCESS", task
            assert second.semaphore(semaphore)["used"] == 0
        finally:
            if second is not None:
                second.close()
            _crash(pid)
