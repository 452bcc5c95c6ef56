"""One background loop: a step run again and again on a thread until it is stopped.

What the daemon's threads share (the Celery dispatcher, the local executor's supervisor,
the clock): woken early by `notify`, a failing step logged and retried with a capped
exponential backoff (one bad database minute must not spin a core nor end the loop), and
every exit logged with its reason, so that a loop that stopped is never a mystery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from stepd.proc.wakeup import Wakeup

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0


def backoff(failures: int) -> float:
    """The wait after the `failures`-th failure in a row: 1 s, 2 s, 4 s, ... up to 30 s."""
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(failures, 16)))


@dataclass
class Loop:
    name: str  # the thread's name, and the loop's in its log lines
    # One round of work; returns how long to wait for a wake-up before the next (0: at once).
    step: Callable[[], float]
    what: str = "step"  # what a failed round is called in the log ("dispatch", "tick")
    wake: Wakeup = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _reason: str = "asked to stop"
    # Whether this round was called for: by a wake-up, or by the last round's asking for
    # another at once (a backlog). False for the first round and after a timed-out wait.
    woken: bool = field(default=False, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self.wake.set()

    def stop(self, timeout: float = 10.0, reason: str = "asked to stop") -> None:
        self._reason = reason
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s did not stop within %.0f s", self.name, timeout)

    @property
    def alive(self) -> bool:
        """Its thread runs (started and not yet ended)."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        log.info("%s started", self.name)
        failures = 0
        exit_reason = None
        try:
            while not self._stop.is_set():
                self.wake.clear()
                try:
                    wait = self.step()
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception(
                        "%s: %s failed (%d in a row); retried in %.1f s",
                        self.name,
                        self.what,
                        failures,
                        backoff(failures),
                    )
                    self._stop.wait(backoff(failures))
                    self.woken = False
                    continue
                self.woken = self.wake.wait(wait) if wait > 0 else True
        except BaseException as exc:  # not an Exception (a step cannot catch it): say so
            exit_reason = f"ended by {type(exc).__name__}: {exc}"
            raise
        finally:
            log.info("%s stopped: %s", self.name, exit_reason or self._reason)
