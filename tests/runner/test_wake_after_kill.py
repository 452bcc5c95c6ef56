"""A process of `stepd serve` killed (kill -9, the OOM killer) must not hang the others.

Wake-ups cross processes: the server wakes its reactor process when it stores events,
the reactor process wakes the local workers when it makes tasks. Killed while it waits
for a wake-up, a process must leave nothing behind that blocks the next one who wakes
it (a `multiprocessing.Event` does: its `set()` waits for every sleeper to acknowledge,
the dead one too, and the server sets its reactor's on the event loop).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import EXECUTORS, STORES, _comm, running_server
from .helpers import RunnerServer, children_of, dep, process_gone, unique, wait_until


def _children_named(server: RunnerServer, name: str) -> list[int]:
    return [p for p in children_of(server.pid) if _comm(p) == name]


def _wait_succeeded(server: RunnerServer, config_id: str, marker: str) -> None:
    """Wait for the task the event with `marker` made to succeed."""

    def succeeded() -> dict[str, Any] | None:
        found = [t for t in server.tasks(config_id=config_id) if t["params"]["marker"] == marker]
        return found[0] if found and found[0]["status"] == "SUCCESS" else None

    wait_until(succeeded, timeout=20, what=f"the task of event {marker!r} to succeed")


def _post_event(server: RunnerServer, name: str, marker: str) -> None:
    """One event, which the server must take within seconds (it answers from its event loop)."""
    try:
        response = server.http.post(
            "/api/v1/events",
            json={"events": [{"name": name, "params": {"marker": marker}}]},
            timeout=5,
        )
    except httpx.TimeoutException:
        pytest.fail(f"the server hung taking event {marker!r}; see {server.log_path}")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("store", STORES)
def test_server_answers_and_restarts_its_reactor_process_killed_while_idle(
    store: str, tmp_path: Path
) -> None:
    with running_server(store, EXECUTORS["local"], tmp_path) as server:
        name = unique("ping")
        config_id = server.create_config("T_ECHO", dep(name, marker="~"))
        _post_event(server, name, "before")
        _wait_succeeded(server, config_id, "before")
        [reactor] = _children_named(server, "stepd-reactor")
        time.sleep(0.5)  # idle: waiting for its next wake-up

        os.kill(reactor, signal.SIGKILL)
        wait_until(lambda: process_gone(reactor), timeout=10, what="the reactor to die")
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < 2.0:  # events keep arriving meanwhile
            _post_event(server, name, f"during-{n}")
            n += 1
            time.sleep(0.05)

        restarted = wait_until(
            lambda: [p for p in _children_named(server, "stepd-reactor") if p != reactor],
            timeout=15,
            what="a new reactor process",
        )
        assert len(restarted) == 1, restarted
        _post_event(server, name, "after")
        for marker in [f"during-{i}" for i in range(n)] + ["after"]:
            _wait_succeeded(server, config_id, marker)
        assert server.healthy()


def test_reactor_keeps_waking_workers_after_an_idle_worker_is_killed(tmp_path: Path) -> None:
    with running_server("sqlite", EXECUTORS["local"], tmp_path) as server:
        name = unique("ping")
        config_id = server.create_config("T_ECHO", dep(name, marker="~"))
        _post_event(server, name, "before")
        _wait_succeeded(server, config_id, "before")
        [reactor] = _children_named(server, "stepd-reactor")
        workers = server.worker_pids()
        time.sleep(0.5)  # idle: waiting for their next wake-up

        os.kill(workers[0], signal.SIGKILL)
        wait_until(lambda: process_gone(workers[0]), timeout=10, what="the worker to die")
        for n in range(3):  # each makes a task: the reactor wakes the workers, the dead one too
            _post_event(server, name, f"after-{n}")
            _wait_succeeded(server, config_id, f"after-{n}")
        assert _children_named(server, "stepd-reactor") == [reactor]
        wait_until(
            lambda: len(server.worker_pids()) == len(workers), timeout=15, what="a new worker"
        )
        _post_event(server, name, "replaced")
        _wait_succeeded(server, config_id, "replaced")
