"""A wake-up that crosses processes without a lock: a byte in a pipe.

A `multiprocessing.Event` keeps its flag behind semaphores, and `set()` waits for every
sleeper to acknowledge. A process killed (kill -9, the OOM killer) while waiting on one,
or while holding its lock, leaves every later `set()` and `wait()` blocked for good; the
server sets the reactor's on its event loop, so one dead reactor would hang the API.

A pipe has no lock. `set()` writes a byte and never blocks: a full pipe is set already,
and with no reader left there is nobody to wake. `wait()` polls the read end, `clear()`
reads it empty. Whoever is killed, no other process can block on it.

Like an Event it stays set until cleared, and every process polling it sees it set. But
one process clearing it clears it for all: a wake-up that several processes wait on and
each clear (the local workers) is one pipe per process (`LocalExecutor.wakes`). A flag
nobody clears (a stop) may be shared.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import weakref
from multiprocessing.reduction import DupFd
from typing import Any, Protocol


class _Fd(Protocol):
    def detach(self) -> int: ...


class WakePipe:
    """A `Wakeup` that pickles into `spawn` children (as a `Process` argument) and never
    blocks its setter. Each process that gets it holds both ends, so the pipe outlives the
    restart of any one of them."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self._adopt(read_fd, write_fd)

    def _adopt(self, read_fd: int, write_fd: int) -> None:
        # O_NONBLOCK belongs to the open file, which every process's copy shares.
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._close = weakref.finalize(self, _close_both, read_fd, write_fd)

    def set(self) -> None:
        # Full: set already (64 KiB of wake-ups nobody read). No reader: nobody to wake.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._write_fd, b"!")

    def clear(self) -> None:
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass  # empty

    def is_set(self) -> bool:
        return self._readable(0)

    def wait(self, timeout: float | None = None) -> bool:
        """True once set (it stays set: `clear()` it), False after `timeout` seconds."""
        return self._readable(None if timeout is None else max(0, math.ceil(timeout * 1000)))

    def _readable(self, timeout_ms: int | None) -> bool:
        # poll(), not select(): a server's descriptors can number beyond select's 1024.
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN)
        return bool(poller.poll(timeout_ms))

    def close(self) -> None:
        """Close this process's ends (also done when it is garbage-collected)."""
        self._close()

    def __reduce__(self) -> tuple[Any, ...]:
        # DupFd hands the descriptors to the child `Process` being spawned (or, outside
        # a spawn, through multiprocessing's resource sharer).
        return (_rebuild, (DupFd(self._read_fd), DupFd(self._write_fd)))


def _rebuild(read_fd: _Fd, write_fd: _Fd) -> WakePipe:
    pipe = WakePipe.__new__(WakePipe)
    pipe._adopt(read_fd.detach(), write_fd.detach())
    return pipe


def _close_both(read_fd: int, write_fd: int) -> None:
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)
