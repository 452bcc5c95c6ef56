"""A backfill on real workers, on every store and executor (issue 11): a 31-day backfill
with `max_in_flight: 2` ends with 31 successful tasks, and at no moment had more than 2
of them unfinished (from each task's creation to its end, as the tasks themselves say)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .helpers import RunnerServer, dep, unique, wait_until


def most_unfinished_at_once(tasks: list[dict[str, Any]]) -> int:
    """The most tasks alive at one moment, each from its `created` to its `finished`."""
    moments: list[tuple[datetime, int]] = []
    for task in tasks:
        moments.append((datetime.fromisoformat(task["created"]), 1))
        moments.append((datetime.fromisoformat(task["finished"]), -1))
    alive = most = 0
    for _, change in sorted(moments):  # at the same instant an end (-1) comes first
        alive += change
        most = max(most, alive)
    return most


def test_a_31_day_backfill_runs_31_tasks_never_more_than_2_at_once(
    runner_server: RunnerServer,
) -> None:
    marker = unique("backfill")
    config_id = runner_server.create_config(
        "T_ECHO", dep(unique("bfLive"), date="~"), task_params={"marker": marker}
    )
    body = {
        "params": {"date": {"from": "2019-01-01", "to": "2019-01-31"}},
        "max_in_flight": 2,
        "request_id": marker,
    }
    response = runner_server.http.post(f"/api/v1/configs/{config_id}/backfill", json=body)
    assert response.status_code == 201, response.text
    backfill_id = response.json()["id"]

    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = runner_server.http.get(f"/api/v1/backfills/{backfill_id}").json()
        return found["result"] if found["result"]["state"] != "running" else None

    done = wait_until(ended, timeout=90, what=f"backfill {backfill_id} on {runner_server.backend}")
    assert done["state"] == "done", done
    assert done["counts"] == {"SUCCESS": 31} and done["made"] == 31 and done["progress"] == 1.0

    tasks = [t for t in runner_server.tasks(type="T_ECHO") if t["params"].get("marker") == marker]
    assert sorted(t["params"]["date"] for t in tasks) == [
        f"2019-01-{day:02}" for day in range(1, 32)
    ]
    assert most_unfinished_at_once(tasks) <= 2, [(t["created"], t["finished"]) for t in tasks]
    # Sent again with its request_id: the same backfill, nothing new made.
    again = runner_server.http.post(f"/api/v1/configs/{config_id}/backfill", json=body)
    assert again.status_code == 200 and again.json()["id"] == backfill_id, again.text
    assert len(runner_server.tasks(type="T_ECHO", config_id=config_id)) == 31
