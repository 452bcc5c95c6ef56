"""How a process that `stepd serve` (or `stepd worker`) spawns and supervises begins,
and when it stops: the reactor process and the local worker processes.

Such a process does not decide on its own when to stop. Ctrl-C reaches the whole
foreground process group, so it ignores SIGINT and lets its parent stop it. It stops
when its parent sets the shared `stop`, when it gets a SIGTERM itself (systemd and
`timeout` signal the whole process group), or when its parent died (even by kill -9):
the restarted server starts children of its own.

It must notice its parent's death from its very first instruction. Such a process is
spawned (a fresh interpreter), and its imports take up to seconds on a loaded machine:
a parent killed meanwhile leaves it adopted by init, and a parent pid recorded after
the imports is init's. So `spawn_context()` starts it with a boot program that, before
any import of stepd or of the parent's main module, asks the kernel to SIGKILL it when
its parent dies (PR_SET_PDEATHSIG) and exits if that parent (whose pid the program
carries) is gone already. `begin_child` then turns the signal into SIGTERM, which it
handles as a stop, and keeps comparing `getppid()` with that pid as the fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from multiprocessing import context, popen_spawn_posix, reduction, resource_tracker, spawn, util
from typing import Any

from stepd import logs
from stepd.logs import LogFormat
from stepd.proc.proctitle import set_process_name
from stepd.proc.wakeup import Wakeup

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s%(ids)s"
PR_SET_PDEATHSIG = 1

# Run by the child's interpreter before the `spawn_main` that multiprocessing starts it
# with (which first imports the parent's main module, then the target's): standard
# modules only, nothing of stepd. {parent} is the spawning process's pid.
BOOT = (
    "import os\n"
    "try:\n"
    "    import ctypes\n"
    f"    ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, {int(signal.SIGKILL)})\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != {parent}:\n"  # it died before the prctl: nobody would signal us
    "    os._exit(0)\n"
)


def set_parent_death_signal(signum: int) -> None:
    """Ask Linux to send `signum` to this process when its parent thread ends."""
    # Not Linux: the periodic getppid() check remains.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)


class _BootingPopen(popen_spawn_posix.Popen):
    """multiprocessing's spawn, with BOOT run first in the child.

    `_launch` is CPython's own (popen_spawn_posix, unchanged from 3.8 to 3.13) but for
    the command line, which gets BOOT in front of its `-c` program.
    """

    def _launch(self, process_obj: Any) -> None:
        fds: list[int] = vars(self)["_fds"]  # what the pickled arguments hand the child
        tracker_fd = resource_tracker.getfd()
        if tracker_fd is not None:
            fds.append(tracker_fd)
        prep_data = spawn.get_preparation_data(process_obj._name)
        fp = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, fp)
            reduction.dump(process_obj, fp)
        finally:
            context.set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            program = cmd.index("-c") + 1
            cmd[program] = BOOT.replace("{parent}", str(os.getpid())) + cmd[program]
            fds.extend([child_r, child_w])
            self.pid = util.spawnv_passfds(os.fsencode(spawn.get_executable()), cmd, fds)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as f:
                f.write(fp.getbuffer())
        finally:
            self.finalizer = util.Finalize(
                self, _close_fds, [fd for fd in (parent_r, parent_w) if fd is not None]
            )
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)


def _close_fds(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class _BootingProcess(context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _BootingPopen:
        return _BootingPopen(process_obj)


class _BootingContext(context.SpawnContext):
    Process = _BootingProcess


def spawn_context() -> context.SpawnContext:
    """The `spawn` start method, its children dying with their parent from the start."""
    return _BootingContext()


@dataclass
class ChildProcess:
    """This process, as its supervisor's child."""

    stop: Wakeup  # set by the parent at shutdown, shared with the other children
    parent_pid: int  # the parent this process started under
    terminated: list[bool] = field(default_factory=list)  # appended to by the SIGTERM handler

    def stop_reason(self) -> str | None:
        """Why this process should stop now, or None while it should not."""
        if self.terminated:
            return "got SIGTERM"
        if self.stop.is_set():
            return "asked to stop by its supervisor"
        if os.getppid() != self.parent_pid:
            return "its supervisor died"
        return None

    def should_stop(self) -> bool:
        return self.stop_reason() is not None


def begin_child(name: str, stop: Wakeup, log_format: LogFormat = "plain") -> ChildProcess:
    """Name this process, set up its logging (in its server's format) and signals; the
    child it now is."""
    set_process_name(name)
    logs.start("info", log_format, plain=LOG_FORMAT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    # The pid the parent had when it made us (carried in the pickled Process), not
    # getppid(): a parent dead by now has made init our parent.
    parent = multiprocessing.parent_process()
    parent_pid = None if parent is None else parent.pid
    child = ChildProcess(stop=stop, parent_pid=os.getppid() if parent_pid is None else parent_pid)
    # The handler only raises a flag of this process. Setting the shared `stop` would stop
    # the siblings too, and a handler should not touch what other processes wait on.
    signal.signal(signal.SIGTERM, lambda *_: child.terminated.append(True))
    # Up and able to stop cleanly: the parent's death now stops us as a SIGTERM does,
    # finishing the attempt in hand, rather than killing us mid-write.
    set_parent_death_signal(signal.SIGTERM)
    return child
