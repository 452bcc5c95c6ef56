"""The turn of SQLite writers across processes: an flock on a file next to the database.

The server, its local workers and Celery workers write to one SQLite file. SQLite
makes a writer that finds the file locked sleep in its busy handler (1, 2, 5, 10,
... 100 ms between tries), so under a steady load every process waits tens of
milliseconds for the others. A blocking flock is handed over by the kernel the
moment it is released. Writers that are not stepd (the sqlite3 shell) still go
through SQLite's own lock and busy timeout, which stay in place.

The lock belongs to the process that opened it: a forked child (a work horse, a
Celery pool process) closes its inherited copy at once, so that a child outliving
its parent can never keep the database locked, and opens its own if it writes.
"""

from __future__ import annotations

import fcntl
import os
import weakref
from types import TracebackType

_OPEN: weakref.WeakSet[WriteTurn] = weakref.WeakSet()


class WriteTurn:
    """An exclusive, blocking, cross-process lock on `path` (created if missing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        _OPEN.add(self)

    def __enter__(self) -> WriteTurn:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without holding the GIL
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _forget_after_fork(self) -> None:
        # The description is shared with the parent: closing our copy leaves its lock alone.
        self.close()


def _after_fork_in_child() -> None:
    for turn in list(_OPEN):
        turn._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
