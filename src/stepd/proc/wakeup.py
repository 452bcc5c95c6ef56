"""What a thread waits on to be woken: a `threading.Event`, or a `WakePipe` (wakepipe.py)
when the waker is another process (the reactor process waking the server's dispatcher)."""

from __future__ import annotations

from typing import Protocol


class Wakeup(Protocol):
    def set(self) -> None: ...

    def clear(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...
