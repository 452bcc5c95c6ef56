"""Running one attempt in a work horse and watching it: logs, heartbeat, timeout, stop."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from stepd.domain.tasks import TaskStatus
from stepd.runner.horse import horse_main
from stepd.runner.registry import TaskType
from stepd.store.runs import Outcome

MAX_LOG_BYTES = 1024 * 1024  # per attempt; the rest is dropped with a note
READ_BYTES = 65536
DRAIN_SECONDS = 2.0  # how long to wait for the log after the horse ended


class LogBuffer:
    """The log of one attempt: text not yet shipped, capped in total."""

    def __init__(self, cap_bytes: int = MAX_LOG_BYTES) -> None:
        self.cap = cap_bytes
        self.kept = 0
        self.dropped = 0
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> None:
        room = self.cap - self.kept
        if room > 0:
            self._pending.append(data[:room])
            self.kept += min(room, len(data))
        self.dropped += max(0, len(data) - max(room, 0))

    def note(self, text: str) -> None:
        self._pending.append(text.encode())

    def take(self) -> str:
        """What arrived since the last take (decoded leniently: logs may hold any bytes)."""
        data = b"".join(self._pending)
        self._pending.clear()
        return data.decode("utf-8", errors="replace")


def _kill_tree(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _exit_outcome(task: TaskType, status: int) -> Outcome:
    if os.WIFSIGNALED(status):
        return Outcome(
            status=TaskStatus.EXCEPTION,
            error=f"the task process was killed by signal {os.WTERMSIG(status)}",
        )
    code = os.WEXITSTATUS(status)
    if task.kind == "command":
        if code == 0:
            return Outcome(status=TaskStatus.SUCCESS, output={"exit_code": 0})
        return Outcome(
            status=TaskStatus.FAILURE,
            output={"exit_code": code},
            error=f"the command exited with code {code}",
        )
    return Outcome(
        status=TaskStatus.EXCEPTION,
        error=f"the task process exited with code {code} without a result",
    )


def run_attempt(
    task: TaskType,
    params: Mapping[str, Any],
    *,
    kill_timeout_seconds: float | None,
    tick: Callable[[LogBuffer], bool],
    tick_interval_seconds: float = 0.5,
) -> tuple[Outcome, LogBuffer]:
    """Fork a horse for `task`, watch it, and say how it ended.

    `tick` runs every `tick_interval_seconds` with the log buffer (to ship it and
    beat the heart); when it returns True the task is stopped. The caller must be
    single-threaded: a fork copies only the calling thread.
    """
    log_r, log_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the horse
        os.close(log_r)
        os.close(res_r)
        horse_main(task, params, log_w, res_w)
    os.close(log_w)
    os.close(res_w)
    log = LogBuffer()
    result = b""
    started = time.monotonic()
    deadline = None if kill_timeout_seconds is None else started + kill_timeout_seconds
    next_tick = started + tick_interval_seconds
    open_fds = {log_r, res_r}
    killed_for: TaskStatus | None = None
    exit_status: int | None = None
    drain_until: float | None = None
    try:
        while open_fds:
            now = time.monotonic()
            wait = next_tick - now
            if deadline is not None and killed_for is None:
                wait = min(wait, deadline - now)
            if drain_until is not None:
                wait = min(wait, drain_until - now)
            ready, _, _ = select.select(list(open_fds), [], [], max(0.0, min(wait, 0.05)))
            for fd in ready:
                data = os.read(fd, READ_BYTES)
                if not data:
                    open_fds.discard(fd)
                elif fd == log_r:
                    log.feed(data)
                else:
                    result += data
            if exit_status is None:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exit_status = status
                    # Leftover children of the task die with it; then drain the pipes.
                    _kill_tree(pid)
                    drain_until = time.monotonic() + DRAIN_SECONDS
            now = time.monotonic()
            if drain_until is not None and now >= drain_until:
                break
            if deadline is not None and killed_for is None and now >= deadline:
                killed_for = TaskStatus.TIMEOUT
                log.note(f"\n[stepd: kill_timeout of {kill_timeout_seconds:g}s reached; killed]\n")
                _kill_tree(pid)
            if now >= next_tick:
                next_tick = now + tick_interval_seconds
                if tick(log) and killed_for is None and exit_status is None:
                    killed_for = TaskStatus.STOPPED
                    log.note("\n[stepd: stopped on request; killed]\n")
                    _kill_tree(pid)
        if exit_status is None:
            _, exit_status = os.waitpid(pid, 0)
    finally:
        for fd in (log_r, res_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        _kill_tree(pid)
    if log.dropped:
        log.note(f"\n[stepd: log capped at {log.cap} bytes; {log.dropped} bytes dropped]\n")
    if killed_for is TaskStatus.TIMEOUT:
        return Outcome(
            status=TaskStatus.TIMEOUT,
            error=f"killed after kill_timeout of {kill_timeout_seconds:g}s",
        ), log
    if killed_for is TaskStatus.STOPPED:
        return Outcome(status=TaskStatus.STOPPED, error="stopped on request"), log
    if result:
        try:
            body = json.loads(result)
            return Outcome(
                status=TaskStatus(body["status"]),
                output=body.get("output"),
                error=body.get("error"),
            ), log
        except (ValueError, KeyError):
            return Outcome(
                status=TaskStatus.EXCEPTION, error="the task wrote a malformed result"
            ), log
    return _exit_outcome(task, exit_status), log
