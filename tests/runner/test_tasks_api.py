"""The tasks API: unknown types, logs (with offset and a cap), and list filters."""

from __future__ import annotations

from typing import Any

from .helpers import RunnerServer, assert_error, dep, unique, wait_until

MIB = 1024 * 1024


def test_a_task_of_a_type_no_worker_runs_is_made_with_a_warning(
    runner_server: RunnerServer,
) -> None:
    # As the original STEP's clients expect (any Sandbox type): made, and said.
    name = unique("NO_SUCH_TYPE")

    response = runner_server.post_task_raw(name, {"date": "2020-01-01"})

    assert response.status_code == 200, response.text
    assert f"no worker has announced task type {name!r}" in response.json()["warnings"][0]
    assert [t["type"] for t in runner_server.tasks(type=name)] == [name]


def test_a_config_of_a_type_no_worker_runs_is_saved_with_a_warning(
    runner_server: RunnerServer,
) -> None:
    name = unique("NO_SUCH_TYPE")

    response = runner_server.post_config_raw(
        {"name": unique("cfg"), "event_deps": [dep(unique("ev"), date="~")], "task_type": name}
    )

    assert response.status_code == 200, response.text
    assert f"no worker has announced task type {name!r}" in response.json()["warnings"][0]


def test_logs_from_an_offset_return_only_the_rest(runner_server: RunnerServer) -> None:
    marker = unique("m")
    task = runner_server.run("T_LINES", {"count": 200, "marker": marker})
    assert task["status"] == "SUCCESS", task

    whole = runner_server.logs(task["id"])
    text = whole["text"]
    assert f"{marker} line 0000" in text and f"{marker} line 0199" in text
    assert whole["offset"] == 0 and whole["next_offset"] == len(text)
    assert whole["finished"] is True
    for offset in (1, len(text) // 2, len(text) - 1, len(text)):
        part = runner_server.logs(task["id"], offset=offset)
        assert part["text"] == text[offset:], offset
        assert part["next_offset"] == len(text)


def test_a_task_printing_megabytes_finishes_with_its_log_capped_and_the_server_healthy(
    runner_server: RunnerServer,
) -> None:
    marker = unique("m")
    task = runner_server.run("T_HUGE_LOG", {"megabytes": 5, "marker": marker}, timeout=60)

    assert task["status"] == "SUCCESS", task
    text = runner_server.log_text(task["id"])
    assert f"start {marker}" in text
    assert "[stepd: log capped" in text
    assert MIB <= len(text.encode()) <= MIB + 4096, len(text)
    assert runner_server.healthy()
    after = runner_server.run("T_ECHO", {"marker": unique("after-huge")})
    assert after["status"] == "SUCCESS", after


def test_task_list_filters_by_type_status_config_and_event(runner_server: RunnerServer) -> None:
    event_name = unique("filterEvent")
    config_id = runner_server.create_config("T_FILTERED", dep(event_name, n="~"))
    first_event = runner_server.send_event(event_name, n="1")
    second_event = runner_server.send_event(event_name, n="2")
    by_hand = runner_server.post_task("T_FILTERED", {"n": 3, "fail": True})

    def from_config() -> list[dict[str, Any]] | None:
        found = runner_server.tasks(config_id=config_id)
        return found if len(found) == 2 else None

    configured = wait_until(from_config, timeout=15, what="the config's two tasks")
    ids = {t["id"] for t in configured}
    runner_server.wait_all([*ids, by_hand["id"]])

    def found(**filters: Any) -> set[int]:
        return {t["id"] for t in runner_server.tasks(**filters)}

    first = found(event_id=first_event)
    second = found(event_id=second_event)
    assert len(first) == 1 and len(second) == 1 and first | second == ids
    [first_task] = runner_server.tasks(event_id=first_event)
    assert first_task["params"] == {"n": "1"} and first_task["config_id"] == config_id
    assert found(config_id=config_id) == ids
    of_type = runner_server.tasks(type="T_FILTERED")
    assert {t["type"] for t in of_type} == {"T_FILTERED"}
    assert ids | {by_hand["id"]} <= {t["id"] for t in of_type}
    assert by_hand["id"] in found(type="T_FILTERED", status="FAILURE")
    assert found(type="T_FILTERED", status="FAILURE") & ids == set()
    assert found(config_id=config_id, status="SUCCESS") == ids
    assert found(config_id=config_id, status="FAILURE") == set()
    assert found(type="T_ECHO", config_id=config_id) == set()
    assert_error(runner_server.http.get("/api/v1/tasks", params={"status": "DONE"}), 400, "DONE")
    assert_error(runner_server.http.get("/api/v1/tasks", params={"colour": "red"}), 400, "colour")
