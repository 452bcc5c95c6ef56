"""The fleet (issue 10): every worker announces itself with its task types and beats;
`GET /api/v1/workers` shows it live, with what it runs now; `GET /api/v1/task_types` is
what the live workers run. On every store and executor (the contract servers), then a
worker that is killed, or stops, is `gone`."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from conftest import run_stepd

from .conftest import CELERY_WORKERS, EXECUTORS, running_server
from .helpers import RunnerServer, process_gone, unique, wait_until

OWN_TYPES = {"T_ECHO", "T_SLEEP", "T_TYPED", "T_CHAIN_A"}  # a few of tasks_for_tests.py's


def _workers(server: RunnerServer, **query: str) -> list[dict[str, Any]]:
    response = server.http.get("/api/v1/workers", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["result"]
    return found


def test_every_worker_announces_itself_and_shows_what_it_runs(
    runner_server: RunnerServer,
) -> None:
    executor = runner_server.backend.split("-", 1)[1]
    live = _workers(runner_server, state="live")
    assert len(live) >= 1, live
    for worker in live:
        assert worker["executor"] == ("local" if executor == "local" else "celery"), worker
        assert worker["state"] == "live" and worker["stopped"] is None
        assert set(worker["task_types"]) >= OWN_TYPES, worker["task_types"]
        assert worker["host"] and worker["pid"] > 0 and worker["version"]
        assert (worker["queue"] is None) == (executor == "local"), worker
    # A running attempt is listed under the one worker that runs it.
    marker = unique("fleet")
    task = runner_server.post_task("T_SLEEP", {"seconds": 30, "marker": marker})
    try:
        runner_server.wait(task["id"], {"EXECUTING"}, timeout=30)

        def holder() -> list[dict[str, Any]] | None:
            found = [
                w
                for w in _workers(runner_server)
                if any(r["task_id"] == task["id"] for r in w["running"])
            ]
            return found or None

        (worker,) = wait_until(holder, timeout=10, what="the worker running the task")
        (running,) = [r for r in worker["running"] if r["task_id"] == task["id"]]
        assert running == {"task_id": task["id"], "type": "T_SLEEP", "attempt": 1}
        one = runner_server.http.get(f"/api/v1/workers/{worker['name']}").json()["result"]
        assert one["name"] == worker["name"] and one["state"] == "live"
        described = {t["name"]: t for t in one["task_type_details"]}
        assert described["T_TYPED"]["params"] == [
            {"name": "count", "required": True, "type": "int"},
            {"name": "label", "required": True, "type": "str"},
            {"name": "ratio", "required": False, "type": "float"},
        ]
    finally:
        runner_server.stop_quietly(task["id"])
    # The task types are the fleet's, each with the live workers that run it.
    types = {t["name"]: t for t in runner_server.http.get("/api/v1/task_types").json()["result"]}
    assert set(types) >= OWN_TYPES
    live_names = {w["name"] for w in _workers(runner_server, state="live")}
    assert types["T_ECHO"]["live"] is True
    assert set(types["T_ECHO"]["workers"]) <= live_names and types["T_ECHO"]["workers"]
    missing = runner_server.http.get("/api/v1/workers/no-such-worker")
    assert missing.status_code == 404 and "no worker named" in missing.json()["message"]


def test_a_type_no_worker_announced_is_accepted_with_a_warning(
    runner_server: RunnerServer,
) -> None:
    unknown = unique("T_NOBODY_RUNS")
    made = runner_server.post_task_raw(unknown, {})
    assert made.status_code == 200, made.text
    (warning,) = made.json()["warnings"]
    assert f"no worker has announced task type {unknown!r}" in warning
    assert "T_ECHO" in warning  # what the fleet does run
    known = runner_server.post_task_raw("T_ECHO", {"marker": unique("known")})
    assert known.status_code == 200 and "warnings" not in known.json(), known.text
    config = runner_server.post_config_raw(
        {"name": unique("c"), "event_deps": [{"name": unique("e")}], "task_type": unknown}
    )
    assert config.status_code == 200, config.text
    assert config.json()["warnings"][0] == warning  # (then: its event was never sent)
    checked = runner_server.http.post(
        "/api/v1/configs/validate",
        json={"configs": [{"name": "v", "event_deps": [{"name": "e"}], "task_type": unknown}]},
    ).json()["result"]
    assert checked[0]["ok"] is True and checked[0]["warnings"][0] == warning
    # No worker claims a task it cannot run: it waits ENQUEUED for a worker that runs its
    # type (the story says so; /healthz turns degraded once it has waited a minute).
    task_id = made.json()["result"]["id"]
    try:
        runner_server.wait(known.json()["result"]["id"], timeout=30)  # (the workers do claim)
        waiting = runner_server.task(task_id)
        assert (waiting["status"], waiting["attempts"]) == ("ENQUEUED", 0), waiting
    finally:
        runner_server.stop_quietly(task_id)


def test_a_task_type_names_its_own_status_event(runner_server: RunnerServer) -> None:
    # A config waiting for it is not warned of an event nothing sends, before any was sent.
    own = unique("ownTaskDone")  # (the name the type reports is fixed; the config's dep too)
    config = runner_server.post_config_raw(
        # (on a marker no task reports: it never fires on this shared server)
        {
            "name": own,
            "event_deps": [{"name": "ownTaskDone", "params": {"marker": own}}],
            "task_type": "T_ECHO",
        }
    )
    assert config.status_code == 200, config.text
    assert not [w for w in config.json().get("warnings", []) if "no event named" in w]
    marker = unique("own")
    task = runner_server.run("T_OWN_EVENT", {"marker": marker})
    assert task["status"] == "SUCCESS", task
    found = runner_server.http.get(
        "/api/v1/events", params={"name": "ownTaskDone", "params__marker": marker}
    ).json()["result"]
    assert [(e["params"]["taskType"], e["params"]["taskStatus"]) for e in found] == [
        ("T_OWN_EVENT", "SUCCESS")
    ]
    types = {t["name"]: t for t in runner_server.http.get("/api/v1/task_types").json()["result"]}
    assert types["T_OWN_EVENT"]["status_event"] == "ownTaskDone"


def test_a_killed_worker_is_gone_after_the_timeout_and_a_stopped_one_at_once(
    tmp_path: Path,
) -> None:
    with running_server("sqlite", EXECUTORS["local"], tmp_path) as server:

        def both() -> dict[str, dict[str, Any]] | None:  # (the second may still be starting)
            live = {w["name"]: w for w in _workers(server, state="live")}
            return live if len(live) == 2 else None

        before = wait_until(both, timeout=30, what="both workers to announce themselves")
        victim = next(iter(before.values()))
        os.kill(victim["pid"], signal.SIGKILL)

        def gone() -> dict[str, Any] | None:
            listed = {w["name"]: w for w in _workers(server)}
            replaced = len([w for w in listed.values() if w["state"] == "live"]) == 2
            return listed if listed[victim["name"]]["state"] == "gone" and replaced else None

        listed = wait_until(gone, timeout=30, what="the killed worker to be gone")
        assert listed[victim["name"]]["stopped"] is None  # it wrote nothing: silence told
        doctor = run_stepd("doctor", "--url", server.url, "--json")
        assert '"workers"' in doctor.stdout and doctor.returncode == 0, doctor.stdout
        names = {w["name"] for w in _workers(server, state="live")}
        os.kill(server.pid, signal.SIGTERM)  # a clean stop: each worker departs
        wait_until(lambda: process_gone(server.pid) or None, timeout=30, what="the stop")
    from stepd.services.fleet import FleetService
    from stepd.store import open_store

    store = open_store(server.db_url, migrate=False)
    try:
        after = {v.row.name: v for v in FleetService(store).workers()}
    finally:
        store.close()
    for name in names:
        assert after[name].state == "gone" and after[name].row.stopped is not None, name


def test_a_celery_worker_announces_its_queue_and_departs_when_stopped(tmp_path: Path) -> None:
    with running_server("sqlite", EXECUTORS["celery-redis"], tmp_path) as server:
        (worker,) = _workers(server, state="live")
        assert worker["executor"] == "celery" and worker["queue"].startswith("stepd-test-")
        # Its pool processes run attempts as NAME/PID, counted as its own.
        task = server.post_task("T_SLEEP", {"seconds": 30, "marker": unique("pool")})
        server.wait(task["id"], {"EXECUTING"}, timeout=30)
        running = _workers(server, state="live")[0]["running"]
        assert [r["task_id"] for r in running] == [task["id"]]
        server.stop_quietly(task["id"])
        server.wait(task["id"], timeout=30)
        celery = CELERY_WORKERS[server.pid]
        celery.terminate()
        celery.wait(30)
        (left,) = _workers(server)
        assert left["name"] == worker["name"] and left["state"] == "gone"
        assert left["stopped"] is not None
        health = server.http.get("/healthz").json()
        assert health["checks"]["workers"]["status"] == "degraded", health
        assert "no live worker" in health["checks"]["workers"]["message"]
