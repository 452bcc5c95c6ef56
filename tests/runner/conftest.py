"""Fixtures of the runner contract suite: a real `stepd serve` per (store, executor).

`runner_server` is parametrised over every store and every executor, so the same
tests run on each. Starting a server costs seconds, so one server per (store,
executor) serves the whole session; tests keep out of each other's way by using
task types, semaphores, event names and params of their own.

To add an executor (celery+RabbitMQ, celery+Redis), add it to `EXECUTORS` with the
server flags it needs and, if its workers are separate processes (`stepd worker
--executor celery`), start them in `running_server` and list them in `worker_pids`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import (
    IN_CI,
    LiveServer,
    fresh_database,
    make_token,
    start_server,
)

from stepd.store import open_store

from .helpers import RunnerServer, children_of

TASKS_FILE = Path(__file__).resolve().parent / "tasks_for_tests.py"
STORES = ("sqlite", "postgres")
HEARTBEAT_TIMEOUT_SECONDS = 3
WARM_UP_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class Executor:
    """How to run tasks: the flags `stepd serve` gets, and how to find its workers."""

    name: str  # the id in test names
    server_args: tuple[str, ...]  # extra `stepd serve` flags
    worker_pids: Callable[[LiveServer], list[int]]  # the worker processes, now
    broker: str | None = None  # celery: the broker URL; workers run as `stepd worker`


# Flags a Celery worker must share with its server: it writes the status events.
SHARED_WITH_WORKERS = ("--task-event-name", "--environment")


def _broker_up(url: str) -> bool:
    parsed = urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=2):
            return True
    except OSError:
        return False


def _require_broker(url: str) -> None:
    if _broker_up(url):
        return
    if IN_CI:
        pytest.fail(f"the broker at {url} is not reachable (CI must provide it)")
    pytest.skip(f"the broker at {url} is not reachable")


def _start_celery_workers(
    db_url: str, broker: str, queue: str, log_path: Path, extra: tuple[str, ...]
) -> subprocess.Popen[bytes]:
    shared: list[str] = []
    for flag in SHARED_WITH_WORKERS:
        if flag in extra:
            shared += [flag, extra[extra.index(flag) + 1]]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stepd",
            "worker",
            "--executor",
            "celery",
            "--broker",
            broker,
            "--queue",
            queue,
            "--db",
            db_url,
            "--tasks",
            str(TASKS_FILE),
            "--concurrency",
            "2",
            "--log-level",
            "warning",
            *shared,
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _local_worker_pids(server: LiveServer) -> list[int]:
    """The local executor's workers: the server's children named so (not its reactor process,
    not its resource tracker)."""
    return [p for p in children_of(server.process.pid) if _comm(p) == "stepd-worker"]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


EXECUTORS = {
    "local": Executor(
        name="local",
        server_args=(
            "--executor",
            "local",
            "--workers",
            "2",
            "--heartbeat-timeout",
            str(HEARTBEAT_TIMEOUT_SECONDS),
        ),
        worker_pids=_local_worker_pids,
    ),
}
CELERY_WORKERS: dict[int, subprocess.Popen[bytes]] = {}  # server pid -> its celery workers


def _celery_worker_pids(server: LiveServer) -> list[int]:
    """The Celery pool processes: the children of this server's `stepd worker`."""
    workers = CELERY_WORKERS.get(server.process.pid)
    return [] if workers is None else children_of(workers.pid)


for _name, _broker in (
    ("celery-rabbitmq", "amqp://guest:guest@127.0.0.1:5672//"),
    ("celery-redis", "redis://127.0.0.1:6379/0"),
):
    EXECUTORS[_name] = Executor(
        name=_name,
        server_args=(
            "--executor",
            "celery",
            "--broker",
            _broker,
            "--heartbeat-timeout",
            str(HEARTBEAT_TIMEOUT_SECONDS),
        ),
        worker_pids=_celery_worker_pids,
        broker=_broker,
    )
BACKENDS = [(store, executor) for executor in EXECUTORS for store in STORES]


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _warm_up(server: RunnerServer) -> None:
    """Wait until a worker runs tasks: worker processes start after the API answers, and
    their start-up (seconds on a loaded machine) must not count against a test's timings."""
    task = server.post_task("T_ECHO", {"marker": "warm-up"})
    ended = server.wait(task["id"], timeout=WARM_UP_SECONDS)
    assert ended["status"] == "SUCCESS", ended


@contextlib.contextmanager
def running_server(
    store: str, executor: Executor, tmp: Path, *extra: str
) -> Iterator[RunnerServer]:
    """`stepd serve --tasks tasks_for_tests.py` with `executor` on a fresh `store`."""
    if executor.broker is not None:
        _require_broker(executor.broker)
    queue = f"stepd-test-{uuid.uuid4().hex[:8]}"  # one queue per server: no stray deliveries
    queue_args = ("--queue", queue) if executor.broker is not None else ()
    with fresh_database(store, tmp) as db_url:
        live = start_server(
            db_url,
            tmp / "server.log",
            "--tasks",
            str(TASKS_FILE),
            *executor.server_args,
            *queue_args,
            *extra,
        )
        workers = None
        if executor.broker is not None:
            workers = _start_celery_workers(
                db_url, executor.broker, queue, tmp / "workers.log", extra
            )
            CELERY_WORKERS[live.process.pid] = workers
        server: RunnerServer | None = None
        try:
            token_store = open_store(db_url, migrate=False)
            try:
                token = make_token(token_store, "robot-runner-tests")
            finally:
                token_store.close()
            server = RunnerServer(
                url=live.url,
                db_url=db_url,
                backend=f"{store}-{executor.name}",
                token=token,
                log_path=live.log_path,
                worker_pids=lambda: executor.worker_pids(live),
                pid=live.process.pid,
            )
            _warm_up(server)
            yield server
        finally:
            if server is not None:
                server.close()
            spawned = _descendants(live.process.pid)
            if workers is not None:
                spawned += _descendants(workers.pid)
                workers.terminate()
                try:
                    workers.wait(15)
                except subprocess.TimeoutExpired:
                    workers.kill()
                CELERY_WORKERS.pop(live.process.pid, None)
            live.stop()
            # A server killed rather than stopped leaves its workers behind: end them, by pid.
            for pid in spawned:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(
    scope="session", params=BACKENDS, ids=[f"{store}-{executor}" for store, executor in BACKENDS]
)
def runner_backend(request: pytest.FixtureRequest) -> tuple[str, Executor]:
    """Which (store, executor) this run of a contract test is on."""
    store, executor = request.param
    return store, EXECUTORS[executor]


@pytest.fixture(scope="session")
def runner_server(
    runner_backend: tuple[str, Executor], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunnerServer]:
    """One server per (store, executor), shared by every runner test of the session."""
    store, executor = runner_backend
    tmp = tmp_path_factory.mktemp(f"runner-{store}-{executor.name}")
    with running_server(store, executor, tmp) as server:
        yield server


@pytest.fixture
def start_runner_server(
    runner_backend: tuple[str, Executor], tmp_path: Path
) -> Iterator[Callable[..., RunnerServer]]:
    """Start another server on the same (store, executor) with extra flags; stopped after."""
    store, executor = runner_backend
    with contextlib.ExitStack() as stack:

        def start(*extra: str) -> RunnerServer:
            tmp = tmp_path / uuid.uuid4().hex[:8]
            tmp.mkdir()
            return stack.enter_context(running_server(store, executor, tmp, *extra))

        yield start
