"""Command task types (no shell, exit codes, output) and HTTP task types (JSON body, status)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .helpers import RunnerServer, unique


def test_command_task_exiting_zero_succeeds_with_stdout_and_stderr_in_its_log(
    runner_server: RunnerServer,
) -> None:
    token = unique("tok")
    task = runner_server.run("T_CMD_EXIT", {"token": token, "code": 0})

    assert task["status"] == "SUCCESS", task
    assert task["output"] == {"exit_code": 0}
    log = runner_server.log_text(task["id"])
    assert f"out-{token}" in log
    assert f"err-{token}" in log


def test_command_task_exiting_non_zero_fails_with_its_exit_code(
    runner_server: RunnerServer,
) -> None:
    token = unique("tok")
    task = runner_server.run("T_CMD_EXIT", {"token": token, "code": 3})

    assert task["status"] == "FAILURE", task
    assert task["output"] == {"exit_code": 3}
    assert "3" in task["error"], task["error"]
    log = runner_server.log_text(task["id"])
    assert f"out-{token}" in log
    assert f"err-{token}" in log


def test_command_task_passes_a_param_as_one_argument_and_never_through_a_shell(
    runner_server: RunnerServer,
) -> None:
    pwned = [Path(f"/tmp/{unique('pwned')}") for _ in range(3)]
    value = f"x; touch {pwned[0]} && echo $(touch {pwned[1]}) `touch {pwned[2]}` | cat > /dev/null"
    try:
        task = runner_server.run("T_CMD_ARGV", {"value": value})

        assert task["status"] == "SUCCESS", task
        assert "argv=" + json.dumps([value]) in runner_server.log_text(task["id"])
        assert not any(p.exists() for p in pwned)
    finally:
        for p in pwned:
            p.unlink(missing_ok=True)


def test_command_task_refuses_a_param_that_would_be_read_as_an_option(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    touched = tmp_path / unique("injected")
    task = runner_server.run("T_CMD_OPTIONS", {"name": f"--touch={touched}"})

    assert task["status"] == "EXCEPTION", task
    assert "'name'" in task["error"] and "option" in task["error"], task["error"]
    assert "'name'" in runner_server.log_text(task["id"])
    assert not touched.exists()
    # A value that does not start with '-' runs as before.
    plain = runner_server.run("T_CMD_OPTIONS", {"name": "a-b"})
    assert plain["status"] == "SUCCESS", plain
    assert "name='a-b'" in runner_server.log_text(plain["id"])


def test_command_task_passes_a_dash_value_after_a_literal_double_dash(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    touched = tmp_path / unique("after-dashes")
    task = runner_server.run("T_CMD_OPTIONS_DASHES", {"name": f"--touch={touched}"})

    assert task["status"] == "SUCCESS", task
    assert f"name='--touch={touched}'" in runner_server.log_text(task["id"])
    assert not touched.exists()  # after `--` the program reads it as a name, not an option


def test_command_task_passes_a_dash_value_of_a_param_its_type_allows(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    touched = tmp_path / unique("allowed")
    task = runner_server.run("T_CMD_OPTIONS_ALLOWED", {"name": f"--touch={touched}"})

    assert task["status"] == "SUCCESS", task
    assert touched.exists()  # the type opted in: the option reached the program


def test_command_task_passes_a_dash_value_inside_an_item_that_starts_with_literal_text(
    runner_server: RunnerServer, tmp_path: Path
) -> None:
    # `--touch={path}` is the type's own option; a path starting with '-' is its value.
    task = runner_server.run("T_CMD_OPTIONS_EMBEDDED", {"path": "-dash", "dir": str(tmp_path)})

    assert task["status"] == "SUCCESS", task
    assert (tmp_path / "-dash").exists()


@dataclass
class Hook:
    """A tiny HTTP server: answers with the status named in the path, keeps what it got."""

    port: int
    received: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, body)


@pytest.fixture
def hook() -> Iterator[Hook]:
    seen: list[tuple[str, str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            seen.append(("POST", self.path, json.loads(raw) if raw else None))
            status = int(self.path.strip("/").split("/")[0])
            body = json.dumps({"answered": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hook(port=server.server_address[1], received=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_task_answered_2xx_succeeds_and_the_body_sent_is_its_params(
    runner_server: RunnerServer, hook: Hook
) -> None:
    params = {"port": hook.port, "code": 200, "marker": unique("m"), "date": "2020-01-01"}
    task = runner_server.run("T_HTTP", params)

    assert task["status"] == "SUCCESS", task
    assert hook.received == [("POST", "/200", params)]
    assert task["output"] == {"status_code": 200, "body": {"answered": 200}}


def test_http_task_answered_500_fails(runner_server: RunnerServer, hook: Hook) -> None:
    params = {"port": hook.port, "code": 500, "marker": unique("m")}
    task = runner_server.run("T_HTTP", params)

    assert task["status"] == "FAILURE", task
    assert "500" in task["error"], task["error"]
    assert hook.received == [("POST", "/500", params)]
