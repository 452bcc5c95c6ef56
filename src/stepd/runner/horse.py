"""The work horse: a child of the worker that runs attempts one after another, so that
a task that hangs, forks, crashes or floods its output cannot take its worker down.

The horse starts its own session (its process group is the task's process tree,
killed as one on timeout or stop), asks the kernel to kill it if its worker dies,
sends stdout and stderr into the log pipe, reads one request per line (task
type and params, JSON) and answers one result per line (JSON). It is reused while
it stays clean: a task that leaves threads, child processes, a changed directory
or environment behind, or a horse grown past its memory or task limits, ends the
horse after the result, and the worker forks a fresh one for the next attempt.
Reuse is what makes a short task cheap: forking a worker costs milliseconds.

A command task runs as a child of the horse, without a shell: argv items are
substituted one by one and stay one argument each, and a value that would start an
item with `-` (read as an option) is refused unless the task type allows it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from stepd.proc.proctitle import set_process_name
from stepd.runner.params import ParamsMismatch, call_args, command_argv, substitute
from stepd.runner.registry import TaskFailure, TaskType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
MAX_HTTP_OUTPUT = 64 * 1024
# Open files a task may leave behind (a module-level session or pool) before the
# horse is retired: a few are reuse, an ever-growing number is a leak.
MAX_LEFTOVER_FDS = 64


@dataclass(frozen=True, kw_only=True)
class HorseLimits:
    """When a clean horse is still retired, so that slow leaks cannot pile up."""

    max_tasks: int = 100  # attempts per horse; 1 forks a fresh process for every attempt
    max_rss_bytes: int = 1024 * 1024 * 1024  # resident memory after an attempt


def _prctl(option: int, value: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(option, value)
    except OSError:  # not Linux: the heartbeat timeout and the horse checks still hold
        pass


def _result(status: str, *, output: object = None, error: str | None = None) -> dict[str, Any]:
    return {"status": status, "output": output, "error": error}


def _run_python(task: TaskType, params: Mapping[str, Any]) -> dict[str, Any]:
    assert task.function is not None
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _result("SUCCESS", output=task.function(**call_args(task.function, params)))


def _run_http(task: TaskType, params: Mapping[str, Any]) -> dict[str, Any]:
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
        body: object = response.json()
    except ValueError:
        body = response.text[:MAX_HTTP_OUTPUT]
    output = {"status_code": response.status_code, "body": body}
    if response.is_success:
        return _result("SUCCESS", output=output)
    return _result("FAILURE", output=output, error=f"HTTP {response.status_code}")


def _run_command(task: TaskType, params: Mapping[str, Any]) -> dict[str, Any]:
    argv = command_argv(task.argv, params, allow_option_values=task.allow_option_values)
    env = {**os.environ, **{k: substitute(v, params) for k, v in task.env.items()}}
    cwd = substitute(task.cwd, params) if task.cwd else None
    print(f"$ {' '.join(argv)}", flush=True)
    try:
        # No shell: each argv item is one argument, whatever a param put in it.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=1, stderr=2, env=env, cwd=cwd, close_fds=True
        )
    except OSError as exc:
        return _result("EXCEPTION", error=f"cannot run {argv[0]!r}: {exc.strerror}")
    code = proc.wait()
    if code == 0:
        return _result("SUCCESS", output={"exit_code": 0})
    if code < 0:
        return _result("EXCEPTION", error=f"the command was killed by signal {-code}")
    return _result(
        "FAILURE", output={"exit_code": code}, error=f"the command exited with code {code}"
    )


def run_task(task: TaskType, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run one attempt in this process and say how it ended; never raises."""
    try:
        if task.kind == "command":
            return _run_command(task, params)
        if task.kind == "http":
            return _run_http(task, params)
        return _run_python(task, params)
    except ParamsMismatch as exc:
        print(f"stepd: {exc}", file=sys.stderr, flush=True)
        return _result("EXCEPTION", error=str(exc))
    except TaskFailure as exc:
        print(f"stepd: task failed: {exc}", file=sys.stderr, flush=True)
        return _result("FAILURE", error=str(exc) or "the task reported a failure")
    except BaseException as exc:  # the task's own error, whatever it is (SystemExit too)
        traceback.print_exc()
        return _result("EXCEPTION", error=f"{type(exc).__name__}: {exc}")


def _children() -> list[int] | None:
    """Live and unreaped children of this process; None where Linux cannot tell."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as listing:
            return [int(pid) for pid in listing.read().split()]
    except OSError:
        return None


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class _Baseline:
    """What a clean horse looks like, to see what a task left behind."""

    def __init__(self) -> None:
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        self.streams = (sys.stdout, sys.stderr)
        self.fds = _open_fds()

    def leftovers(self, done: int, limits: HorseLimits) -> str | None:
        """Why this horse must not run another attempt, or None."""
        if threading.active_count() > 1:
            return "the task left threads running"
        children = _children()
        if children is None:
            return "this system cannot list a task's child processes"
        if children:
            return f"the task left child processes {children}"
        try:
            if os.getcwd() != self.cwd:
                return "the task changed the working directory"
        except OSError:
            return "the task removed the working directory"
        if dict(os.environ) != self.environ:
            return "the task changed the environment"
        if (sys.stdout, sys.stderr) != self.streams or any(s.closed for s in self.streams):
            return "the task replaced or closed stdout or stderr"
        if _open_fds() > self.fds + MAX_LEFTOVER_FDS:
            return f"the task left more than {MAX_LEFTOVER_FDS} files open"
        if done >= limits.max_tasks:
            return f"{done} attempts run (the limit)"
        if _rss_bytes() > limits.max_rss_bytes:
            return f"memory grew past {limits.max_rss_bytes} bytes"
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def horse_main(
    types: Mapping[str, TaskType],
    requests_fd: int,
    results_fd: int,
    log_fd: int,
    limits: HorseLimits,
    *,
    parent_pid: int,
) -> NoReturn:
    """The forked child's whole life; never returns. `parent_pid`: the worker that forked it."""
    code = 0
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the worker died before the prctl: nobody would kill us
            os._exit(0)
        os.setsid()
        set_process_name("stepd-horse")
        # Orphans of a task's children become ours, so that _children() sees them all.
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        baseline = _Baseline()
        done = 0
        with os.fdopen(requests_fd, "rb") as requests:
            for line in requests:  # one attempt per line; EOF: the worker is done with us
                request = json.loads(line)
                result = run_task(types[request["type"]], request["params"])
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                done += 1
                retire = baseline.leftovers(done, limits)
                result["retire"] = retire
                # The log reached its pipe before this line: the worker reads it up to here.
                _write_all(results_fd, json.dumps(result, default=str).encode() + b"\n")
                if retire is not None:
                    break
    except BaseException:  # a broken pipe, or a result that cannot be encoded
        with contextlib.suppress(Exception):
            traceback.print_exc()
        code = 70
    os._exit(code)
