"""How a process that `stepd serve` (or `stepd worker`) spawns and supervises begins,
and when it stops: the reactor process and the local worker processes.

Such a process does not decide on its own when to stop. Ctrl-C reaches the whole
foreground process group, so it ignores SIGINT and lets its parent stop it. It stops
when its parent sets the shared `stop`, when it gets a SIGTERM itself (systemd and
`timeout` signal the whole process group), or when its parent died (even by kill -9):
the restarted server starts children of its own.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field

from stepd.proctitle import set_process_name
from stepd.wakeup import Wakeup

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


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


def begin_child(name: str, stop: Wakeup) -> ChildProcess:
    """Name this process, set up its logging and signals; the child it now is."""
    set_process_name(name)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    child = ChildProcess(stop=stop, parent_pid=os.getppid())
    # The handler only raises a flag of this process. Setting the shared `stop` would stop
    # the siblings too, and a handler should not touch what other processes wait on.
    signal.signal(signal.SIGTERM, lambda *_: child.terminated.append(True))
    return child
