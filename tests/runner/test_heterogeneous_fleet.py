"""A fleet whose workers run different task types: each task runs on a worker that runs
its type, and none is ended as an unknown type by a worker that happened to take it.

Local: the server's own workers run tests/runner/tasks_for_tests.py; a `stepd worker` on
the same store runs only other_tasks_for_tests.py. Celery: two Celery workers on two
queues, one per module; the server sends each task to the queue whose workers run it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer, fresh_database, make_token, start_server

from stepd.store import open_store

from .conftest import TASKS_FILE, _require_broker
from .helpers import TERMINAL, wait_until

OTHER_TASKS = Path(__file__).resolve().parent / "other_tasks_for_tests.py"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def _worker(db_url: str, log: Path, *flags: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "stepd", "worker", "--db", db_url, "--log-level", "info"]
    return subprocess.Popen([*argv, *flags], stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _token(db_url: str) -> dict[str, str]:
    store = open_store(db_url, migrate=False)
    try:
        return {"Authorization": f"OAuth {make_token(store, 'robot-fleet')}"}
    finally:
        store.close()


def _run_both_types(server: LiveServer, auth: dict[str, str]) -> dict[str, dict[str, object]]:
    """One task of each module's type; both must end SUCCESS. Each task's detail, by type."""
    marker = uuid.uuid4().hex[:8]
    made = {}
    for type_, params in (("T_ECHO", {"marker": marker}), ("T_ONLY_HERE", {"marker": marker})):
        answer = httpx.post(
            f"{server.url}/api/v1/tasks", json={"type": type_, "params": params}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        made[type_] = answer.json()["result"]["id"]

    def ended() -> dict[str, dict[str, object]] | None:
        found = {
            t: httpx.get(f"{server.url}/api/v1/tasks/{i}").json()["result"] for t, i in made.items()
        }
        return found if all(f["status"] in TERMINAL for f in found.values()) else None

    done = wait_until(ended, timeout=60, what="both tasks to end")
    for type_, task in done.items():
        assert task["status"] == "SUCCESS", (type_, task)
    return done


def _ran_on(task: dict[str, object]) -> str:
    """The worker of a task's (only) attempt."""
    (attempt,) = task["attempt_history"]  # type: ignore[misc]
    return str(attempt["worker"])


def _announced(server: LiveServer, type_: str) -> bool:
    types = httpx.get(f"{server.url}/api/v1/task_types").json()["result"]
    return any(t["name"] == type_ and t["live"] for t in types)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_local_workers_claim_only_the_types_they_run(tmp: Path) -> None:
    with fresh_database("sqlite", tmp) as db_url:
        server = start_server(
            db_url, tmp / "server.log", "--tasks", str(TASKS_FILE), "--workers", "1"
        )
        other = _worker(db_url, tmp / "other.log", "--tasks", str(OTHER_TASKS), "-c", "1")
        try:
            auth = _token(db_url)
            wait_until(lambda: _announced(server, "T_ONLY_HERE"), timeout=60, what="announce")
            done = _run_both_types(server, auth)
            # The other worker's task ran there, the server's there.
            live = httpx.get(f"{server.url}/api/v1/workers", params={"state": "live"})
            runs = {w["name"]: set(w["task_types"]) for w in live.json()["result"]}
            assert "T_ONLY_HERE" in runs[_ran_on(done["T_ONLY_HERE"])]
            assert "T_ECHO" in runs[_ran_on(done["T_ECHO"])]
            assert _ran_on(done["T_ONLY_HERE"]) != _ran_on(done["T_ECHO"])
        finally:
            _stop(other)
            server.stop()
        assert "unknown task type" not in (tmp / "server.log").read_text()


@pytest.fixture
def two_queues(tmp: Path) -> Iterator[tuple[LiveServer, str, str]]:
    _require_broker(AMQP)
    suffix = uuid.uuid4().hex[:8]
    main_q, gpu_q = f"stepd-main-{suffix}", f"stepd-gpu-{suffix}"
    with fresh_database("postgres", tmp) as db_url:
        celery = ("--executor", "celery", "--broker", AMQP)
        server = start_server(db_url, tmp / "server.log", *celery, "--queue", main_q)
        workers = [
            _worker(db_url, tmp / f"{q}.log", *celery, "--queue", q, "--tasks", str(f), "-c", "1")
            for q, f in ((main_q, TASKS_FILE), (gpu_q, OTHER_TASKS))
        ]
        try:
            yield server, main_q, gpu_q
        finally:
            for worker in workers:
                _stop(worker)
            server.stop()


def test_celery_tasks_go_to_the_queue_whose_workers_run_their_type(
    two_queues: tuple[LiveServer, str, str],
) -> None:
    server, main_q, gpu_q = two_queues
    auth = _token(server.db_url)
    for type_ in ("T_ECHO", "T_ONLY_HERE"):
        wait_until(lambda t=type_: _announced(server, t), timeout=90, what=f"{type_} announced")
    workers = {w["name"]: w for w in httpx.get(f"{server.url}/api/v1/workers").json()["result"]}
    queue_of = {name: w["queue"] for name, w in workers.items() if w["state"] == "live"}
    assert sorted(queue_of.values()) == sorted([main_q, gpu_q])
    done = _run_both_types(server, auth)
    # An attempt's worker is the Celery worker's fleet name and its pool process: NAME/PID.
    ran_on = {t: _ran_on(d).split("/")[0] for t, d in done.items()}
    assert queue_of[ran_on["T_ONLY_HERE"]] == gpu_q
    assert queue_of[ran_on["T_ECHO"]] == main_q
