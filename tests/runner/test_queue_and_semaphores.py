"""The queue: priorities, semaphores, stopping and restarting tasks."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from .helpers import TERMINAL, RunnerServer, assert_error, unique, when


def _journal(path: Path) -> list[tuple[str, str]]:
    """(start|end, marker) lines, in the order the tasks wrote them."""
    return [
        (what, marker)
        for what, marker in (line.split(" ", 1) for line in path.read_text().splitlines())
    ]


def test_higher_priority_tasks_start_first_when_workers_are_busy(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    semaphore = runner_server.new_semaphore(1)
    uses = [{"name": semaphore, "weight": 1}]
    journal = tmp_path / "journal"
    # The blocker holds the semaphore until the test opens its gate: however slow the
    # machine, every task is queued behind it before any of them may start.
    gate = tmp_path / "gate"
    blocker = runner_server.post_task("T_GATE", {"path": str(gate)}, semaphores=uses)
    runner_server.wait(blocker["id"], {"EXECUTING"})
    priorities = [1, 7, 3, 10, 5, -2, 12, 4, 9, 0]
    queued = {
        runner_server.post_task(
            "T_RECORD",
            {"journal": str(journal), "marker": str(p), "seconds": 0.05},
            priority=p,
            semaphores=uses,
        )["id"]: p
        for p in priorities
    }
    assert runner_server.task(blocker["id"])["status"] == "EXECUTING", (
        "the blocker ended before every task was queued: the test proves nothing"
    )
    gate.touch()

    done = runner_server.wait_all([blocker["id"], *queued], timeout=40)

    assert {t["status"] for t in done} == {"SUCCESS"}, done
    highest_first = sorted(priorities, reverse=True)
    # The order the tasks really ran in (capacity 1: one at a time), by their own account...
    ran = [int(marker) for what, marker in _journal(journal) if what == "start"]
    assert ran == highest_first
    # ... and the order the API says they started in.
    started = sorted(done[1:], key=lambda t: when(t["started"]))
    assert [queued[t["id"]] for t in started] == highest_first


def test_semaphore_of_capacity_one_never_lets_tasks_overlap_and_shows_its_use(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    name = unique("sem")
    put = runner_server.put_semaphore(name, 1)
    assert put.status_code == 200, put.text
    assert put.json()["result"]["capacity"] == 1
    assert runner_server.semaphore(name)["used"] == 0
    uses = [{"name": name, "weight": 1}]
    journal = tmp_path / "journal"
    ids = [
        runner_server.post_task(
            "T_RECORD",
            {"journal": str(journal), "marker": f"s{i}", "seconds": 0.3},
            semaphores=uses,
        )["id"]
        for i in range(6)
    ]

    seen_used: set[int] = set()
    seen_statuses: set[str] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen_used.add(runner_server.semaphore(name)["used"])
        statuses = {i: runner_server.task(i)["status"] for i in ids}
        seen_statuses |= set(statuses.values())
        if all(s in TERMINAL for s in statuses.values()):
            break
        time.sleep(0.02)
    done = [runner_server.task(i) for i in ids]

    assert {t["status"] for t in done} == {"SUCCESS"}, done
    # By the tasks' own account: each ended before the next began.
    entries = _journal(journal)
    assert [what for what, _ in entries] == ["start", "end"] * 6, entries
    assert all(a[1] == b[1] for a, b in zip(entries[::2], entries[1::2], strict=True)), entries
    # By the API's times: the intervals do not overlap either.
    intervals = sorted((when(t["started"]), when(t["finished"])) for t in done)
    for (_, finished), (next_started, _) in itertools.pairwise(intervals):
        assert next_started >= finished, intervals
    assert 1 in seen_used and max(seen_used) == 1, seen_used
    assert "WAIT_MUTEX" in seen_statuses, seen_statuses
    assert runner_server.semaphore(name)["used"] == 0
    listed = runner_server.http.get("/api/v1/semaphores").json()["result"]
    assert [(s["capacity"], s["used"]) for s in listed if s["name"] == name] == [(1, 0)]


def test_semaphore_capacity_below_zero_and_a_weight_over_capacity_are_refused(
    runner_server: RunnerServer,
) -> None:
    name = unique("sem")
    assert_error(runner_server.put_semaphore(name, -1), 400, "capacity")
    assert runner_server.http.get(f"/api/v1/semaphores/{name}").status_code == 404
    runner_server.put_semaphore(name, 2)

    response = runner_server.post_task_raw(
        "T_ECHO", {"marker": unique("m")}, semaphores=[{"name": name, "weight": 3}]
    )

    assert_error(response, 400, name, "capacity")


def test_stopping_an_executing_task_ends_it_stopped_quickly(runner_server: RunnerServer) -> None:
    task = runner_server.post_task("T_SLEEP", {"seconds": 60, "marker": unique("m")})
    runner_server.wait(task["id"], {"EXECUTING"})
    asked = time.monotonic()

    response = runner_server.stop_task(task["id"])
    ended = runner_server.wait(task["id"], timeout=10)
    took = time.monotonic() - asked

    assert response.status_code == 200, response.text
    assert ended["status"] == "STOPPED", ended
    assert took < 5, f"stopping an executing task took {took:.1f}s"
    assert "stopped" in runner_server.log_text(task["id"]).lower()


def test_stopping_an_enqueued_task_blocked_on_a_full_semaphore_ends_it_at_once(
    runner_server: RunnerServer,
) -> None:
    semaphore = runner_server.new_semaphore(1)
    uses = [{"name": semaphore, "weight": 1}]
    blocker = runner_server.post_task("T_SLEEP", {"seconds": 60}, semaphores=uses)
    try:
        runner_server.wait(blocker["id"], {"EXECUTING"})
        waiting = runner_server.post_task("T_SLEEP", {"seconds": 0.1}, semaphores=uses)
        runner_server.wait(waiting["id"], {"WAIT_MUTEX"}, timeout=10)

        response = runner_server.stop_task(waiting["id"])

        assert response.status_code == 200, response.text
        assert response.json()["result"]["status"] == "STOPPED"
        stopped = runner_server.task(waiting["id"])
        assert stopped["status"] == "STOPPED", stopped
        assert stopped["attempts"] == 0
    finally:
        runner_server.stop_quietly(blocker["id"])
    assert runner_server.semaphore(semaphore)["used"] == 0


def test_stopping_a_finished_task_is_a_conflict(runner_server: RunnerServer) -> None:
    task = runner_server.run("T_ECHO", {"marker": unique("m")})
    assert task["status"] == "SUCCESS", task

    assert_error(runner_server.stop_task(task["id"]), 409, "SUCCESS")
    assert runner_server.task(task["id"])["status"] == "SUCCESS"


def test_restarting_a_finished_task_runs_it_again_as_a_second_attempt(
    runner_server: RunnerServer,
) -> None:
    marker = unique("m")
    first = runner_server.run("T_ECHO", {"marker": marker})
    assert first["status"] == "SUCCESS", first

    response = runner_server.restart_task(first["id"])
    assert response.status_code == 200, response.text
    again = runner_server.wait(first["id"])

    assert again["status"] == "SUCCESS", again
    assert again["attempts"] == 2
    assert [(a["attempt"], a["status"]) for a in again["attempt_history"]] == [
        (1, "SUCCESS"),
        (2, "SUCCESS"),
    ]
    assert runner_server.logs(first["id"])["attempt"] == 2
    for attempt in (1, 2):
        assert f"echo {marker}" in runner_server.log_text(first["id"], attempt=attempt)


def test_restarting_a_running_task_is_a_conflict(runner_server: RunnerServer) -> None:
    task = runner_server.post_task("T_SLEEP", {"seconds": 60, "marker": unique("m")})
    try:
        runner_server.wait(task["id"], {"EXECUTING"})
        assert_error(runner_server.restart_task(task["id"]), 409, "EXECUTING")
    finally:
        runner_server.stop_quietly(task["id"])
    assert runner_server.task(task["id"])["attempts"] == 1
