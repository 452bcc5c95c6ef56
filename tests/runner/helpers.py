"""The helper API of the runner contract suite: one running server, spoken to over HTTP.

Tests only use what a client could: the HTTP API (and, for crash tests, the
process ids a task reports). Nothing here knows which executor runs the tasks,
except `worker_pids`, which each executor's fixture provides.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

TERMINAL = frozenset({"SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED"})
POLL_SECONDS = 0.05


def unique(prefix: str) -> str:
    """A name or value no other test on a shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def when(stamp: str) -> datetime:
    """An API timestamp (`...Z`) as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def wait_until(
    check: Callable[[], T | None], *, timeout: float, what: str, poll: float = POLL_SECONDS
) -> T:
    """`check()`'s first truthy value; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(poll)


def process_gone(pid: int) -> bool:
    """The process has exited: no such pid, or a zombie nobody reaped yet.

    In a container the reaper of orphans may be slow or absent; a zombie runs
    nothing, so for "was it killed" it counts as gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def children_of(pid: int) -> list[int]:
    """The direct children of `pid`, from /proc (every thread's `children` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class RunnerServer:
    """A running stepd with its executor, and a token to write with."""

    url: str  # where the API answers
    db_url: str  # the store it runs on
    backend: str  # "<store>-<executor>", for messages
    token: str  # a writer's token
    log_path: Path  # the server's own output
    worker_pids: Callable[[], list[int]]  # the executor's worker processes, now
    pid: int  # the server process
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"OAuth {self.token}"},
            timeout=30,
        )

    def close(self) -> None:
        self.http.close()

    # -- tasks ------------------------------------------------------------------------------

    def post_task_raw(
        self, task_type: str, params: dict[str, Any] | None = None, **fields: Any
    ) -> httpx.Response:
        body = {"type": task_type, "params": params or {}, **fields}
        return self.http.post("/api/v1/tasks", json=body)

    def post_task(
        self, task_type: str, params: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Create a task by hand (must be accepted); the task as the API shows it."""
        response = self.post_task_raw(task_type, params, **fields)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()["result"]
        return task

    def task(self, task_id: int) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()["result"]
        return task

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/tasks", params={"limit": 1000, **filters})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["result"]
        return found

    def wait(
        self, task_id: int, statuses: Collection[str] = TERMINAL, *, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The task once its status is one of `statuses` (a terminal one by default)."""

        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["status"] in statuses else None

        return wait_until(
            reached,
            timeout=timeout,
            what=f"task {task_id} to be {sorted(statuses)} on {self.backend}",
        )

    def wait_all(self, task_ids: Iterable[int], *, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        return [self.wait(i, timeout=max(0.1, deadline - time.monotonic())) for i in task_ids]

    def run(
        self,
        task_type: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float = 20.0,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a task and wait for its end."""
        return self.wait(self.post_task(task_type, params, **fields)["id"], timeout=timeout)

    def logs(self, task_id: int, *, offset: int = 0, attempt: int | None = None) -> dict[str, Any]:
        query: dict[str, int] = {"offset": offset}
        if attempt is not None:
            query["attempt"] = attempt
        response = self.http.get(f"/api/v1/tasks/{task_id}/logs", params=query)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["result"]
        return result

    def log_text(self, task_id: int, *, attempt: int | None = None) -> str:
        text: str = self.logs(task_id, attempt=attempt)["text"]
        return text

    def stop_task(self, task_id: int) -> httpx.Response:
        return self.http.post(f"/api/v1/tasks/{task_id}/stop")

    def restart_task(self, task_id: int) -> httpx.Response:
        return self.http.post(f"/api/v1/tasks/{task_id}/restart")

    def stop_quietly(self, *task_ids: int) -> None:
        """Cleanup: stop tasks that may still run, so the shared workers are free again."""
        for task_id in task_ids:
            self.stop_task(task_id)
        for task_id in task_ids:
            self.wait(task_id, timeout=20)

    # -- semaphores --------------------------------------------------------------------------

    def put_semaphore(self, name: str, capacity: object) -> httpx.Response:
        return self.http.put(f"/api/v1/semaphores/{name}", json={"capacity": capacity})

    def semaphore(self, name: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/semaphores/{name}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["result"]
        return found

    def new_semaphore(self, capacity: int = 1) -> str:
        name = unique("sem")
        response = self.put_semaphore(name, capacity)
        assert response.status_code == 200, response.text
        return name

    # -- events, configs, stories -------------------------------------------------------------

    def send_event(self, name: str, **params: object) -> str:
        response = self.http.post(
            "/api/v1/events", json={"events": [{"name": name, "params": params}]}
        )
        assert response.status_code == 200, response.text
        [event_id] = response.json()["ids"]
        return str(event_id)

    def event(self, event_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/events/{event_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["result"]
        return found

    def post_config_raw(self, body: dict[str, Any]) -> httpx.Response:
        return self.http.post("/api/v1/configs", json=body)

    def create_config(self, task_type: str, *deps: dict[str, object], **fields: object) -> str:
        body = {"name": unique(task_type), "event_deps": list(deps), "task_type": task_type}
        response = self.post_config_raw({**body, **fields})
        assert response.status_code in (200, 201), response.text
        config_id: str = response.json()["id"]
        return config_id

    def story(self, event_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/events/{event_id}/story")
        assert response.status_code == 200, response.text
        told: dict[str, Any] = response.json()["result"]
        return told

    def healthy(self) -> bool:
        try:
            return self.http.get("/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


def dep(name: str, **params: object) -> dict[str, object]:
    return {"name": name, "params": params}


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    """`response` is a `status` error whose message names every word."""
    assert response.status_code == status, (response.status_code, response.text)
    message = str(response.json().get("message", ""))
    for word in words:
        assert word.lower() in message.lower(), (word, message)
