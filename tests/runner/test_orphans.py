"""A child of `stepd serve` never outlives it: kill -9 the server at any moment of its
start-up, and within a couple of seconds none of its reactor and worker processes (nor
their work horses) is left running.

A child that is still importing when its server dies must notice too: it is handed its
parent's pid at spawn and asks the kernel (PR_SET_PDEATHSIG) to signal it when the parent
goes, before its imports. Each server gets a marker in its environment, which every
process it starts inherits, so the test finds them all wherever they were reparented.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import free_port, server_token, start_server
from sqlalchemy import select

from stepd.store import open_store
from stepd.store.schema import tasks

from .conftest import TASKS_FILE
from .helpers import children_of, process_gone

MARK = "STEPD_TEST_ORPHAN_MARK"
# When to kill, after the server's first child appears (None: that many seconds after the
# server's own spawn, children or not): while a child boots, imports, opens the store, runs.
KILL_AFTER_FIRST_CHILD = (0.0, 0.02, 0.08, 0.2, 0.4, 0.8, 1.5)
GRACE_SECONDS = 2.0


def _marked(mark: str) -> list[int]:
    """Live processes whose environment holds `mark`."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def _describe(pids: list[int]) -> list[str]:
    described = []
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            comm, ppid = "?", "?"
        described.append(f"{pid} ({comm}, parent {ppid})")
    return described


def _start(tmp: Path, mark: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stepd", "serve", "--db", f"sqlite:///{tmp / 'stepd.db'}",
         "--port", str(free_port()), "--no-access-log", "--workers", "2",
         "--tasks", str(TASKS_FILE)],
        stdout=(tmp / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, MARK: mark},
    )  # fmt: skip


def _kill_when(server: subprocess.Popen[bytes], after_first_child: float) -> str:
    """SIGKILL the server `after_first_child` seconds after it spawned a child; what it had."""
    deadline = time.monotonic() + 60
    while not children_of(server.pid):
        assert server.poll() is None, "the server exited before it started a child"
        assert time.monotonic() < deadline, "the server started no child in 60 s"
        time.sleep(0.005)
    time.sleep(after_first_child)
    had = _describe(children_of(server.pid))
    server.kill()
    server.wait(10)
    return f"{len(had)} children: {had}"


def test_no_child_outlives_a_server_killed_during_start_up(tmp_path: Path) -> None:
    rng = random.Random()
    delays = [d + rng.uniform(0, 0.02) for d in KILL_AFTER_FIRST_CHILD]
    left: list[str] = []
    marks = []
    try:
        for n, delay in enumerate(delays):
            tmp = tmp_path / str(n)
            tmp.mkdir()
            mark = uuid.uuid4().hex
            marks.append(mark)
            server = _start(tmp, mark)
            had = _kill_when(server, delay)
            deadline = time.monotonic() + GRACE_SECONDS
            while (alive := _marked(mark)) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive:
                when = f"killed {delay:.2f}s after its first child ({had})"
                left.append(f"{when}: {_describe(alive)}")
        assert not left, "processes outlived their server:\n" + "\n".join(left)
    finally:
        for mark in marks:
            for pid in _marked(mark):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def test_a_busy_worker_abandons_its_attempt_when_its_server_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker in the middle of a long attempt does not outlive its killed server by the
    # length of the task: it kills the attempt, records it, and exits.
    mark = uuid.uuid4().hex
    monkeypatch.setenv(MARK, mark)  # inherited by the server and everything it starts
    db_url = f"sqlite:///{tmp_path / 'stepd.db'}"
    server = start_server(
        db_url, tmp_path / "server.log", "--workers", "1", "--no-clock", "--tasks", str(TASKS_FILE)
    )
    try:
        token = server_token(server)
        made = httpx.post(
            f"{server.url}/api/v1/tasks",
            json={"type": "T_SLEEP", "params": {"seconds": 120}},
            headers={"Authorization": f"OAuth {token}"},
        )
        assert made.status_code == 200, made.text
        task_id = made.json()["result"]["id"]
        deadline = time.monotonic() + 60
        while _status(server.url, task_id) != "EXECUTING":
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        time.sleep(0.3)  # well inside the attempt
        server.process.kill()
        server.process.wait(10)
        deadline = time.monotonic() + GRACE_SECONDS
        while (alive := _marked(mark)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive, f"outlived their server: {_describe(alive)}"
        store = open_store(db_url, migrate=False)
        try:
            with store.read() as conn:
                row = conn.execute(
                    select(tasks.c.status, tasks.c.error).where(tasks.c.id == task_id)
                ).one()
        finally:
            store.close()
        assert row.status == "EXCEPTION" and "its server died" in (row.error or ""), row
    finally:
        server.stop()
        for pid in _marked(mark):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _status(url: str, task_id: int) -> str:
    status: str = httpx.get(f"{url}/api/v1/tasks/{task_id}").json()["result"]["status"]
    return status
