"""The documented plain Celery worker: `celery -A stepd.runner.celery_app worker -Q QUEUE`,
configured only by STEPD_* variables, runs what `stepd serve --executor celery` dispatches."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from conftest import make_token, start_server
from kombu import Connection

from stepd.store import open_store

from .conftest import TASKS_FILE, _require_broker
from .helpers import wait_until

BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def test_a_plain_celery_worker_on_the_documented_app_runs_dispatched_tasks(
    tmp_path: Path,
) -> None:
    _require_broker(BROKER)
    db_url = f"sqlite:///{tmp_path / 'stepd.db'}"
    store = open_store(db_url)
    token = make_token(store, "robot-crypta")
    store.close()
    queue = f"stepd-plain-{uuid.uuid4().hex[:8]}"
    server = start_server(
        db_url,
        tmp_path / "server.log",
        "--executor", "celery", "--broker", BROKER, "--queue", queue,
        "--tasks", str(TASKS_FILE), "--no-clock",
    )  # fmt: skip
    env = {
        **os.environ,
        "STEPD_BROKER_URL": BROKER,
        "STEPD_DATABASE_URL": db_url,
        "STEPD_TASKS": str(TASKS_FILE),
        # (no STEPD_QUEUE: the worker announces the queue it consumes, its -Q, and the
        # server's dispatcher routes the tasks of its types there)
        "STEPD_TASK_EVENT_NAME": "cryptaTaskEvent",
        "STEPD_HORSE_MAX_TASKS": "1",
    }
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "stepd.runner.celery_app", "worker",
            "-Q", queue, "-c", "1", "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING", "--hostname", f"{queue}@%h",
        ],
        env=env,
        stdout=(tmp_path / "celery.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"OAuth {token}"}, timeout=10
        ) as client:
            ids = [
                client.post(
                    "/api/v1/tasks", json={"type": "T_ECHO", "params": {"marker": f"plain-{i}"}}
                ).json()["result"]["id"]
                for i in range(2)
            ]

            def finished() -> list[dict[str, object]] | None:
                tasks = [client.get(f"/api/v1/tasks/{i}").json()["result"] for i in ids]
                done = all(t["status"] == "SUCCESS" for t in tasks)
                return tasks if done else None

            tasks = wait_until(finished, timeout=60, what="the plain Celery worker to run both")
            # The status event uses the worker's STEPD_TASK_EVENT_NAME.
            events = client.get(
                "/api/v1/events",
                params={"name": "cryptaTaskEvent", "params__taskType": "T_ECHO", "limit": 10},
            ).json()["result"]
        assert {t["output"]["marker"] for t in tasks} == {"plain-0", "plain-1"}
        assert len(events) == 2
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.stop()
        with Connection(BROKER, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(queue)
