"""The work horse: a forked child that runs one attempt, so that a task that hangs,
forks, crashes or floods its output cannot take its worker down.

The child starts its own session (its process group is the task's process tree,
killed as one on timeout or stop), asks the kernel to kill it if its worker
dies, sends stdout and stderr into the log pipe, and writes its result as JSON
to a second pipe. A command task `exec`s the command in the child, without a
shell: argv items are substituted one by one and stay one argument each.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from stepd.runner.params import ParamsMismatch, call_args, substitute
from stepd.runner.registry import TaskFailure, TaskType

PR_SET_PDEATHSIG = 1
MAX_HTTP_OUTPUT = 64 * 1024


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the heartbeat timeout still ends the attempt
        pass


def _result(fd: int, status: str, *, output: object = None, error: str | None = None) -> None:
    body = json.dumps({"status": status, "output": output, "error": error}, default=str)
    with os.fdopen(fd, "w") as out:
        out.write(body)


def _run_python(task: TaskType, params: Mapping[str, Any]) -> object:
    assert task.function is not None
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return task.function(**call_args(task.function, params))


def _run_http(task: TaskType, params: Mapping[str, Any]) -> tuple[bool, dict[str, object]]:
    url = substitute(task.url, params, quote_values=True)
    response = httpx.request(
        task.method,
        url,
        json=dict(params),
        headers=dict(task.headers),
        timeout=task.timeout_seconds,
    )
    print(f"{task.method} {url} -> {response.status_code}", flush=True)
    try:
        output: object = response.json()
    except ValueError:
        output = response.text[:MAX_HTTP_OUTPUT]
    return response.is_success, {"status_code": response.status_code, "body": output}


def _exec_command(task: TaskType, params: Mapping[str, Any], result_fd: int) -> NoReturn:
    argv = [substitute(item, params) for item in task.argv]
    env = {**os.environ, **{k: substitute(v, params) for k, v in task.env.items()}}
    if task.cwd:
        os.chdir(substitute(task.cwd, params))
    print(f"$ {' '.join(argv)}", flush=True)
    try:
        os.execvpe(argv[0], argv, env)  # the result pipe closes on exec: the exit code speaks
    except OSError as exc:
        _result(result_fd, "EXCEPTION", error=f"cannot run {argv[0]!r}: {exc.strerror}")
        os._exit(127)


def horse_main(task: TaskType, params: Mapping[str, Any], log_fd: int, result_fd: int) -> NoReturn:
    """Run in the forked child; never returns."""
    try:
        os.setsid()
        _die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        if task.kind == "command":
            _exec_command(task, params, result_fd)
        if task.kind == "http":
            ok, output = _run_http(task, params)
            _result(
                result_fd,
                "SUCCESS" if ok else "FAILURE",
                output=output,
                error=None if ok else f"HTTP {output['status_code']}",
            )
        else:
            _result(result_fd, "SUCCESS", output=_run_python(task, params))
        code = 0
    except ParamsMismatch as exc:
        print(f"stepd: {exc}", file=sys.stderr, flush=True)
        _result(result_fd, "EXCEPTION", error=str(exc))
        code = 2
    except TaskFailure as exc:
        print(f"stepd: task failed: {exc}", file=sys.stderr, flush=True)
        _result(result_fd, "FAILURE", error=str(exc) or "the task reported a failure")
        code = 1
    except BaseException as exc:  # the task's own error, whatever it is
        traceback.print_exc()
        _result(result_fd, "EXCEPTION", error=f"{type(exc).__name__}: {exc}")
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
