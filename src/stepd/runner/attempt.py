"""Running attempts in a work horse and watching them: logs, heartbeat, timeout, stop."""

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
from stepd.runner.horse import HorseLimits, horse_main
from stepd.runner.registry import TaskType
from stepd.store.runs import Outcome

MAX_LOG_BYTES = 1024 * 1024  # per attempt; the rest is dropped with a note
READ_BYTES = 65536
DRAIN_SECONDS = 2.0  # how long to wait for the log after the horse died


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


def _death_outcome(status: int) -> Outcome:
    if os.WIFSIGNALED(status):
        return Outcome(
            status=TaskStatus.EXCEPTION,
            error=f"the task process was killed by signal {os.WTERMSIG(status)}",
        )
    return Outcome(
        status=TaskStatus.EXCEPTION,
        error=f"the task process exited with code {os.WEXITSTATUS(status)} without a result",
    )


class Horse:
    """The worker's side of its work horse: fork it, hand it attempts, watch, retire.

    The caller must be single-threaded: a fork copies only the calling thread.
    """

    def __init__(self, types: Mapping[str, TaskType], limits: HorseLimits | None = None) -> None:
        self.types = types
        self.limits = limits or HorseLimits()
        self.pid: int | None = None
        self.forks = 0  # horses started so far (for tests and benchmarks)
        self.retired_because: str | None = None  # why the last horse was retired
        self._requests = -1
        self._results = -1
        self._log = -1

    def _spawn(self) -> int:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        log_r, log_w = os.pipe()
        worker = os.getpid()
        pid = os.fork()
        if pid == 0:  # the horse
            for fd in (req_w, res_r, log_r):
                os.close(fd)
            horse_main(self.types, req_r, res_w, log_w, self.limits, parent_pid=worker)
        for fd in (req_r, res_w, log_w):
            os.close(fd)
        os.set_blocking(log_r, False)  # drained without waiting once the result is in
        self.pid, self._requests, self._results, self._log = pid, req_w, res_r, log_r
        self.forks += 1
        return pid

    def close(self) -> None:
        """End the horse and everything the task left in its process group."""
        pid = self.pid
        if pid is None:
            return
        self.pid = None
        _kill_tree(pid)  # before reaping: the pid (and so the group) stays ours until then
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        for fd in (self._requests, self._results, self._log):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(
        self,
        task: TaskType,
        params: Mapping[str, Any],
        *,
        kill_timeout_seconds: float | None,
        tick: Callable[[LogBuffer], bool],
        tick_interval_seconds: float = 0.5,
    ) -> tuple[Outcome, LogBuffer]:
        """Run one attempt and say how it ended.

        `tick` runs every `tick_interval_seconds` with the log buffer (to ship it and
        beat the heart); when it returns True the task is stopped.
        """
        log = LogBuffer()
        pid = self.pid if self.pid is not None else self._spawn()
        request = json.dumps({"type": task.name, "params": dict(params)}).encode() + b"\n"
        try:
            os.write(self._requests, request)  # far below a pipe's buffer: never blocks
        except BrokenPipeError:  # the horse died between attempts: start another
            self.close()
            pid = self._spawn()
            os.write(self._requests, request)
        started = time.monotonic()
        deadline = None if kill_timeout_seconds is None else started + kill_timeout_seconds
        next_tick = started + tick_interval_seconds
        answer = b""
        while b"\n" not in answer:
            now = time.monotonic()
            wait = next_tick - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            ready, _, _ = select.select(
                [self._log, self._results], [], [], max(0.0, min(wait, 0.05))
            )
            if self._log in ready:
                self._drain(log)
            if self._results in ready:
                data = os.read(self._results, READ_BYTES)
                if not data:  # the horse died without answering
                    return self._died(log), log
                answer += data
                continue
            # Seen, not reaped: the pid, and so its process group, stays ours to kill.
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return self._died(log), log
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                log.note(f"\n[stepd: kill_timeout of {kill_timeout_seconds:g}s reached; killed]\n")
                self._kill(log)
                return Outcome(
                    status=TaskStatus.TIMEOUT,
                    error=f"killed after kill_timeout of {kill_timeout_seconds:g}s",
                ), log
            if now >= next_tick:
                next_tick = now + tick_interval_seconds
                if tick(log):
                    log.note("\n[stepd: stopped on request; killed]\n")
                    self._kill(log)
                    return Outcome(status=TaskStatus.STOPPED, error="stopped on request"), log
        # Everything the attempt logged was written before its result line.
        self._drain(log)
        self._cap_note(log)
        try:
            body = json.loads(answer)
            outcome = Outcome(
                status=TaskStatus(body["status"]),
                output=body.get("output"),
                error=body.get("error"),
            )
            retire = body.get("retire")
        except (ValueError, KeyError, TypeError):
            outcome = Outcome(
                status=TaskStatus.EXCEPTION, error="the task wrote a malformed result"
            )
            retire = "a malformed result"
        if retire is not None:
            self.retired_because = str(retire)
            self.close()
        return outcome, log

    def _drain(self, log: LogBuffer) -> bool:
        """Read what the log pipe holds now; False once every writer has closed it."""
        while True:
            try:
                data = os.read(self._log, READ_BYTES)
            except BlockingIOError:
                return True
            if not data:
                return False
            log.feed(data)

    @staticmethod
    def _cap_note(log: LogBuffer) -> None:
        if log.dropped:
            log.note(f"\n[stepd: log capped at {log.cap} bytes; {log.dropped} bytes dropped]\n")

    def _kill(self, log: LogBuffer) -> None:
        self._drain(log)
        self.retired_because = "killed"
        self.close()
        self._cap_note(log)

    def _died(self, log: LogBuffer) -> Outcome:
        pid = self.pid
        assert pid is not None
        # Leftover children of the task die with it; then the log is read to its end
        # (or for a while, if a child escaped to a session of its own holding the pipe).
        _kill_tree(pid)
        _, status = os.waitpid(pid, 0)
        self.pid = None
        drain_until = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < drain_until:
            select.select([self._log], [], [], max(0.0, drain_until - time.monotonic()))
            if not self._drain(log):
                break
        for fd in (self._requests, self._results, self._log):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.retired_because = "the task process died"
        self._cap_note(log)
        return _death_outcome(status)
