"""Python task types: typed params, output, log, and how a task ends badly."""

from __future__ import annotations

from .helpers import RunnerServer, unique


def test_python_task_coerces_typed_params_returns_its_output_and_logs_prints_and_logging(
    runner_server: RunnerServer,
) -> None:
    label = unique("label")
    task = runner_server.run("T_TYPED", {"count": "3", "label": label})

    assert task["status"] == "SUCCESS", task
    assert task["output"] == {
        "count": 3,
        "count_type": "int",
        "double": 6,
        "label": label,
        "ratio": 0.5,
    }
    assert task["params"] == {"count": "3", "label": label}  # stored as given
    log = runner_server.log_text(task["id"])
    assert f"print says {label}" in log
    assert f"logging says {label}" in log


def test_python_task_missing_a_param_ends_in_exception_naming_it(
    runner_server: RunnerServer,
) -> None:
    task = runner_server.run("T_TYPED", {"label": unique("label")})

    assert task["status"] == "EXCEPTION", task
    assert "'count'" in task["error"], task["error"]
    assert "missing" in task["error"].lower(), task["error"]
    assert "'count'" in runner_server.log_text(task["id"])


def test_python_task_with_an_ill_typed_param_ends_in_exception_naming_it(
    runner_server: RunnerServer,
) -> None:
    task = runner_server.run("T_TYPED", {"count": "three", "label": unique("label")})

    assert task["status"] == "EXCEPTION", task
    assert "'count'" in task["error"], task["error"]
    assert "three" in task["error"], task["error"]


def test_python_task_that_raises_ends_in_exception_with_the_traceback_in_its_log(
    runner_server: RunnerServer,
) -> None:
    marker = unique("m")
    task = runner_server.run("T_RAISES", {"marker": marker})

    assert task["status"] == "EXCEPTION", task
    assert "ValueError" in task["error"], task["error"]
    log = runner_server.log_text(task["id"])
    assert f"about to raise {marker}" in log
    assert "Traceback (most recent call last)" in log
    assert f"ValueError: boom {marker}" in log
    assert "tasks_for_tests.py" in log  # the frame of the task's own code


def test_python_task_raising_task_failure_ends_in_failure(runner_server: RunnerServer) -> None:
    marker = unique("m")
    task = runner_server.run("T_FAILS", {"marker": marker})

    assert task["status"] == "FAILURE", task
    assert f"business failure {marker}" in task["error"]
    assert f"failing on purpose {marker}" in runner_server.log_text(task["id"])
