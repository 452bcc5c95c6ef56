"""Which processes a stepd server is made of, read from /proc (Linux).

`stepd serve` names its children (src/stepd/proctitle.py): `/proc/PID/comm` is
`stepd-reactor`, `stepd-worker` or, under a worker, `stepd-horse`. Processes that
outlive their parent are adopted by init and lose their ancestry, so the loops also
mark every process they start with an environment variable, which children inherit
and which /proc/PID/environ still shows after the parent is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARK = "STEPD_FAULTS_RUN"  # the environment variable that marks this run's processes


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def children_of(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's `children` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return sorted(set(found))


def children_named(pid: int, name: str) -> list[int]:
    return [p for p in children_of(pid) if comm(p) == name]


def horses_of(server_pid: int) -> list[int]:
    """The work horses of a server's workers."""
    return [
        h
        for w in children_named(server_pid, "stepd-worker")
        for h in children_named(w, "stepd-horse")
    ]


def gone(pid: int) -> bool:
    """The process has exited (no such pid, or a zombie: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def describe(pid: int) -> str:
    """`comm`, parent and command line of `pid`, for a message."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "gone"
    return f"{comm(pid)} (parent {stat[1]}): {line}"


def marked(run: str) -> dict[int, str]:
    """Live processes (not zombies) whose environment carries this run's mark: pid -> what
    it is."""
    needle = f"{MARK}={run}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and not gone(int(entry.name)):
            found[int(entry.name)] = describe(int(entry.name))
    return found


def kill9(pid: int, *, timeout: float = 10.0) -> None:
    """kill -9 `pid` and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} ({comm(pid)}) survived kill -9 for {timeout}s")
        time.sleep(0.02)
