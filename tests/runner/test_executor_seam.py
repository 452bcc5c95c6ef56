"""The executor seam (issue 10): an executor is one `Spec` in `runner/executor.py`'s
registry; the daemon, `stepd serve` and `stepd worker` find it there. Here a new one (a
worker thread in the server's own process) is registered and runs a task end to end
through the API, with no other change; unknown names are refused naming the ones there are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from conftest import make_token, run_stepd, serving

from stepd import task_type
from stepd.runner import executor as executors
from stepd.runner.worker import Worker, WorkerSettings
from stepd.settings import Settings
from stepd.store.engine import Store


@task_type("T_INLINE")
def inline(word: str) -> dict[str, str]:
    return {"echo": word}


@dataclass
class InlineExecutor:
    """Runs tasks on a thread of the server: what a new executor module would hold."""

    side: executors.ServerSide
    _stop: threading.Event = field(default_factory=threading.Event)
    _woken: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        worker = Worker(
            self.side.store,
            {"T_INLINE": inline.__stepd_task_type__},  # type: ignore[attr-defined]
            "inline-0",
            WorkerSettings(status_events=self.side.status_events),
        )

        def loop() -> None:
            while not self._stop.is_set():
                if not worker.run_one():
                    self._woken.wait(0.05)
                    self._woken.clear()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def wakeups(self) -> list[object]:
        return []

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@pytest.fixture
def inline_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    spec = executors.Spec(name="inline", description="a thread here", serve=InlineExecutor)  # type: ignore[arg-type]
    monkeypatch.setitem(executors.EXECUTORS, "inline", spec)
    yield


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_new_executor_is_one_registry_entry(store: Store, inline_registered: None) -> None:
    settings = Settings(database_url="unused://", executor="inline", reactor=False, clock=False)
    auth = {"Authorization": f"OAuth {make_token(store, 'robot-crypta')}"}
    with serving(settings, store, daemon=True, raise_server_exceptions=True) as client:
        made = client.post(
            "/api/v1/tasks", json={"type": "T_INLINE", "params": {"word": "hi"}}, headers=auth
        )
        assert made.status_code == 200, made.text
        task_id = made.json()["result"]["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            task = client.get(f"/api/v1/tasks/{task_id}").json()["result"]
            if task["status"] == "SUCCESS":
                break
            time.sleep(0.05)
        assert task["status"] == "SUCCESS" and task["output"] == {"echo": "hi"}, task
        assert task["attempt_history"][0]["worker"] == "inline-0"


def test_an_unknown_executor_is_refused_naming_the_registered_ones(tmp_path: object) -> None:
    served = run_stepd("serve", "--db", "sqlite:///:memory:", "--executor", "k8s", "--port", "0")
    assert served.returncode == 1
    assert "--executor must be local, celery or none, not 'k8s'" in served.stderr
    worked = run_stepd("worker", "--db", "sqlite:///:memory:", "--executor", "none")
    assert worked.returncode == 1
    assert "--executor must be local or celery, not 'none'" in worked.stderr
    broker = run_stepd("worker", "--db", "sqlite:///:memory:", "--executor", "celery")
    assert broker.returncode == 1 and "--executor celery needs --broker" in broker.stderr
