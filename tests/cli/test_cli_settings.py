"""The real `stepd` in a subprocess reads its settings from one Settings: `stepd worker`'s
processes use STEPD_SQLITE_SYNCHRONOUS, flags override variables, and a malformed variable
is a usage error naming it, not a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer, free_port, run_stepd

from stepd.settings import Settings, env_name
from stepd.store import open_store

SYNCHRONOUS_LINE = re.compile(r"worker (\S+): SQLite synchronous=(\w+)")


def _env(**variables: str) -> dict[str, str]:
    """This process's environment without any STEPD_* of the shell, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**env, **variables, "COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def _wait_for(path: Path, pattern: re.Pattern[str], proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if pattern.search(text):
            return text
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode} before logging {pattern.pattern}:\n{text}")
        time.sleep(0.1)
    pytest.fail(f"no {pattern.pattern} in 60 s:\n{path.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.mark.parametrize(("variable", "expected"), [("full", "FULL"), (None, "NORMAL")])
def test_stepd_worker_processes_write_with_stepd_sqlite_synchronous(
    tmp_path: Path, variable: str | None, expected: str
) -> None:
    # Before, `stepd worker` never built Settings: its processes always used NORMAL.
    db_url = f"sqlite:///{tmp_path / 'stepd.db'}"
    open_store(db_url).close()
    extra = {} if variable is None else {"STEPD_SQLITE_SYNCHRONOUS": variable}
    # STEPD_WORKERS=3, overridden by the flag: one worker process.
    env = _env(STEPD_DATABASE_URL=db_url, STEPD_WORKERS="3", **extra)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stepd", "worker", "--concurrency", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        text = _wait_for(log, SYNCHRONOUS_LINE, proc)
    finally:
        _stop(proc)
    # (the line is read back from the worker process's own store connection: PRAGMA)
    assert [m.group(2) for m in SYNCHRONOUS_LINE.finditer(text)] == [expected]
    assert len(re.findall(r"started worker", text)) == 1, text


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["tokens", "list"]])
def test_a_malformed_variable_is_a_usage_error_naming_it(
    tmp_path: Path, command: list[str]
) -> None:
    env = _env(STEPD_DATABASE_URL=f"sqlite:///{tmp_path / 'stepd.db'}", STEPD_PORT="abc")
    done = run_stepd(*command, env=env, timeout=30)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "STEPD_PORT='abc'" in done.stderr
    assert "valid integer" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_malformed_synchronous_stops_stepd_worker_at_once(tmp_path: Path) -> None:
    # Before, the worker ignored it and ran with NORMAL (this run would time out).
    env = _env(
        STEPD_DATABASE_URL=f"sqlite:///{tmp_path / 'stepd.db'}",
        STEPD_SQLITE_SYNCHRONOUS="sometimes",
    )
    done = run_stepd("worker", env=env, timeout=30)
    assert done.returncode == 2
    assert "STEPD_SQLITE_SYNCHRONOUS='SOMETIMES'" in done.stderr
    assert "Traceback" not in done.stderr


def test_stepd_serve_takes_variables_and_its_flags_win(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'stepd.db'}"
    env_port, flag_port = free_port(), free_port()
    env = _env(
        STEPD_DATABASE_URL=db_url,
        STEPD_PORT=str(env_port),
        STEPD_PRIVATE_READS="yes",
        STEPD_EXECUTOR="none",
        STEPD_CLOCK="false",
        STEPD_ACCESS_LOG="0",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stepd", "serve", "--port", str(flag_port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{flag_port}", db_url, proc, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        # private reads (from the variable): a read without a token is refused
        assert httpx.get(f"{server.url}/api/v1/events", timeout=5).status_code == 401
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{env_port}/healthz", timeout=1)
    finally:
        server.stop()


def test_serve_help_and_stepd_settings_list_every_setting() -> None:
    env = _env()
    shown = run_stepd("serve", "--help", env=env).stdout
    listed = run_stepd("settings", env=env)
    assert listed.returncode == 0, listed.stderr
    for field in Settings.model_fields:
        assert env_name(field) in shown, field
        assert env_name(field) in listed.stdout, field
