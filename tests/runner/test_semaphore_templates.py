"""Per-key concurrency with a templated semaphore name (issue 12), on every store and
executor: `{"name": "yt-{{ cluster }}"}` makes each firing take the semaphore its
binding names, so tasks of one cluster never run together while another cluster's run
beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .helpers import RunnerServer, dep, unique, wait_until


def _span(task: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(task["started"]), datetime.fromisoformat(task["finished"])


def _overlap(one: dict[str, Any], other: dict[str, Any]) -> bool:
    (a0, a1), (b0, b1) = _span(one), _span(other)
    return a0 < b1 and b0 < a1


def test_a_templated_semaphore_serializes_each_cluster_and_not_the_others(
    runner_server: RunnerServer,
) -> None:
    name = unique("perCluster")
    prefix = unique("yt")
    config_id = runner_server.create_config(
        "T_HOLD",
        dep(name, cluster="~", date="~"),
        task_params={"seconds": 0.6},
        semaphores=[{"name": prefix + "-{{ cluster }}", "weight": 1}],
    )
    for cluster, date in (("a", "01"), ("b", "01"), ("a", "02"), ("b", "02"), ("a", "03")):
        runner_server.send_event(name, cluster=cluster, date=f"2019-01-{date}")

    def made() -> list[dict[str, Any]] | None:
        found = runner_server.tasks(config_id=config_id)
        return found if len(found) == 5 else None

    tasks = wait_until(made, timeout=30, what="the 5 firings' tasks")
    done = runner_server.wait_all([t["id"] for t in tasks], timeout=60)
    assert {t["status"] for t in done} == {"SUCCESS"}, done
    by_cluster = {c: [t for t in done if t["params"]["cluster"] == c] for c in "ab"}
    assert {t["semaphores"][0]["name"] for t in by_cluster["a"]} == {f"{prefix}-a"}
    for cluster, group in by_cluster.items():
        for i, one in enumerate(group):
            for other in group[i + 1 :]:
                assert not _overlap(one, other), (cluster, _span(one), _span(other))
    # The clusters' semaphores are two (each of capacity 1): b ran beside a.
    assert any(_overlap(a, b) for a in by_cluster["a"] for b in by_cluster["b"]), [
        _span(t) for t in done
    ]
    literal = runner_server.http.get(f"/api/v1/semaphores/{prefix}-{{{{ cluster }}}}")
    assert literal.status_code == 404, literal.text
    made_one = runner_server.semaphore(f"{prefix}-a")
    assert made_one["capacity"] == 1
