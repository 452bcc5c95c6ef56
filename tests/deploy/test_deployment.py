"""docs/deploy.md's "Try it on one machine", process by process: one PostgreSQL database,
`stepd migrate` once, two API servers without the pipeline's code (one dispatching to
Celery, one `--executor none`), two Celery workers on RabbitMQ that have it. The seed
team's own walkthrough runs unchanged against the server that dispatches nothing; the
task it makes runs on a worker started without `--task-event-name` and reports the
name set once with `stepd settings set`, so the chain goes on to a join on `date`; a
config for a type nobody announced is taken with a warning; stopped workers show as
gone, the task that then waits says why in its story, and /healthz and `stepd doctor`
say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conftest import LiveServer, fresh_database, run_stepd, server_token, start_server

from stepd.client import Client, ServerWarning

ROOT = Path(__file__).resolve().parents[2]
TASKS = str(ROOT / "examples" / "crypta_tasks.py")
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
WALKTHROUGH = ROOT.parent / "shared" / "scenarios" / "seed-walkthrough.sh"
if not WALKTHROUGH.exists():
    WALKTHROUGH = Path("/work/shared/scenarios/seed-walkthrough.sh")
T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def celery_worker(db_url: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    """`stepd worker --executor celery` as deploy.md runs it: no --task-event-name."""
    return subprocess.Popen(
        [sys.executable, "-m", "stepd", "worker", "--executor", "celery", "--broker", BROKER,
         "--queue", queue, "--db", db_url, "--tasks", TASKS, "-c", "1", "--log-level", "warning"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer, list[Any], str]]:
    with ExitStack() as stack, fresh_database("postgres", tmp_path) as db_url:
        migrated = run_stepd("migrate", "--db", db_url)
        assert migrated.returncode == 0, migrated.stderr
        # The team's status event name, set once for every process (no flag anywhere).
        named = run_stepd("settings", "set", "status_event_name", "cryptaTaskEvent", "--db", db_url)
        assert named.returncode == 0, named.stderr
        queue = f"stepd-deploy-{uuid.uuid4().hex[:8]}"
        dispatching = start_server(
            db_url, tmp_path / "api-a.log", "--executor", "celery", "--broker", BROKER,
            "--queue", queue,
        )  # fmt: skip
        stack.callback(dispatching.stop)
        quiet = start_server(db_url, tmp_path / "api-b.log", "--executor", "none", "--no-clock")
        stack.callback(quiet.stop)
        workers = [celery_worker(db_url, queue, tmp_path / f"worker-{i}.log") for i in (1, 2)]
        for worker in workers:
            stack.callback(worker.kill)
        yield dispatching, quiet, workers, db_url


def test_the_documented_deployment_runs_the_seed_walkthrough(
    deployment: tuple[LiveServer, LiveServer, list[Any], str], tmp_path: Path
) -> None:
    dispatching, quiet, workers, db_url = deployment
    env = {**os.environ, "STEPD_URL": quiet.url}

    def listed() -> list[dict[str, Any]] | None:
        done = run_stepd("workers", "list", "--json", env=env)
        assert done.returncode == 0, done.stderr
        live = [w for w in json.loads(done.stdout) if w["state"] == "live"]
        return live if len(live) == 2 else None

    live = eventually(listed, "both Celery workers to announce themselves")
    assert {w["executor"] for w in live} == {"celery"}
    assert all("CRYPTA_GRAPH_HUMAN_MATCHING_YAML" in w["task_types"] for w in live)
    table = run_stepd("workers", "list", env=env)
    assert all(w["name"] in table.stdout for w in live), table.stdout

    # A join on `date`: once both the soup and the human matching of a day succeeded, a
    # third task runs for that day (the chain goes through the Celery workers twice).
    token = server_token(quiet)
    crypta = "cryptaTaskEvent"
    ok = {"taskStatus": "SUCCESS", "date": "~"}
    with Client(quiet.url, token) as client:
        client.create_config({
            "name": "echo-after-both", "task_type": "ECHO_DATE",
            "event_deps": [
                {"name": crypta, "params": {"taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML", **ok}},
                {"name": crypta, "params": {"taskType": "CRYPTA_GRAPH_HUMAN_MATCHING_YAML", **ok}},
            ],
        })  # fmt: skip
        # The original client's call for a type no worker announced: taken, with a warning.
        with pytest.warns(ServerWarning, match="no worker has announced task type 'SANDBOX_X'"):
            never = {"name": crypta, "params": {"taskType": "NOT_IN_THIS_TEST"}}
            client.create_config(
                {"name": "any-type", "task_type": "SANDBOX_X", "event_deps": [never]}
            )

    # The seed team's recipe, unchanged, against the server that has no pipeline code.
    walked = subprocess.run(
        ["bash", str(WALKTHROUGH)],
        env={**env, "STEPD_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert walked.returncode == 0, walked.stdout[-3000:] + walked.stderr[-3000:]
    assert "produced 1 task(s)" in walked.stdout
    assert '"warnings"' not in walked.stdout  # the workers announced the config's type

    # The task it made ran on a Celery worker and reported the deployment's event name,
    # though no worker was given --task-event-name: the chain goes on.
    with httpx.Client(base_url=quiet.url, timeout=10) as client:

        def reported() -> list[dict[str, Any]] | None:
            found: list[dict[str, Any]] = client.get(
                "/api/v1/events",
                params={
                    "name": "cryptaTaskEvent",
                    "params__taskType": "CRYPTA_GRAPH_HUMAN_MATCHING_YAML",
                },
            ).json()["result"]
            return found or None

        (event,) = eventually(reported, "the human matching task's status event")
        assert event["params"]["taskStatus"] == "SUCCESS", event
        task = client.get(f"/api/v1/tasks/{event['params']['taskId']}").json()["result"]
        ran_on = task["attempt_history"][-1]["worker"]  # a pool process: NAME/PID
        assert any(ran_on.startswith(w["name"] + "/") for w in live), (ran_on, live)

        def joined() -> list[dict[str, Any]] | None:
            found: list[dict[str, Any]] = client.get(
                "/api/v1/tasks", params={"type": "ECHO_DATE", "status": "SUCCESS"}
            ).json()["result"]
            return found or None

        (echo,) = eventually(joined, "the task of the join on date")
        assert echo["params"]["date"] == "2019-01-01", echo
        assert client.get("/healthz").json()["checks"]["workers"]["status"] == "ok"

        # Workers stopped (Celery's warm shutdown): gone at once, and /healthz says so.
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)
        gone = client.get("/api/v1/workers").json()["result"]
        assert {w["state"] for w in gone} == {"gone"}, gone
        # The next soup status fires the config again: its task waits, and its story says why.
        reported_soup = client.post(
            "/api/v1/task/status",
            headers={"Authorization": f"OAuth {token}"},
            data={
                "taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                "taskStatus": "SUCCESS",
                "environment": "stable",
                "body": '{"date": "2019-01-02"}',
            },
        )
        assert reported_soup.status_code == 200, reported_soup.text
        soup_id = reported_soup.json()["id"]

        def waiting() -> list[dict[str, Any]] | None:
            told = client.get(f"/api/v1/events/{soup_id}/story").json()["result"]
            found: list[dict[str, Any]] = told["produced_tasks"]
            return found or None

        (queued,) = eventually(waiting, "the second firing")
        assert queued["status"] == "ENQUEUED"
        assert (
            "no live worker runs task type 'CRYPTA_GRAPH_HUMAN_MATCHING_YAML'"
            in (queued["waiting"])
        )
        health = client.get("/healthz").json()
        assert health["status"] == "degraded", health
        assert health["checks"]["workers"]["status"] == "degraded"
        doctor = run_stepd("doctor", "--db", db_url)
        assert doctor.returncode == 1 and "no live worker" in doctor.stdout, doctor.stdout
    assert dispatching.process.poll() is None  # the servers served throughout
