"""The reactor's loop: a Reactor run in a thread (proc/loop.py), woken at once by this
process's submits and polled for the events of other processes.

What it adds to the loop helper is the gathering of concurrent submits: a wake-up soon
after a batch means events are coming in, so the round waits a few milliseconds for those
of concurrent requests and one batch (one transaction) evaluates them all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from stepd.proc.loop import Loop
from stepd.proc.wakeup import Wakeup
from stepd.reactor.reactor import Reactor
from stepd.settings import REACTOR_POLL_INTERVAL_SECONDS


@dataclass
class ReactorLoop:
    reactor: Reactor
    poll_interval_seconds: float = REACTOR_POLL_INTERVAL_SECONDS
    gather_seconds: float = 0.002  # wait after a wake-up: batches concurrent submits
    max_gather_seconds: float = 0.048  # the longest such wait, under sustained load
    busy_gap_seconds: float = 0.01  # a wake-up sooner than this after a batch: gather
    # A WakePipe (wakepipe.py) when the loop runs in the reactor process (reactor/process.py).
    _wake: Wakeup = field(default_factory=threading.Event)
    _loop: Loop | None = None
    _pause: float = 0.0  # the gathering wait of the next woken round
    _finished: float = 0.0  # time.monotonic() when the last batch ended

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._pause = self.gather_seconds
        self._finished = time.monotonic()
        self._loop = Loop("stepd-reactor", self._round, what="reactor batch", wake=self._wake)
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None:
            self._loop.stop(timeout, reason="the server is stopping")

    def _round(self) -> float:
        assert self._loop is not None
        woken = self._loop.woken
        if woken and self._pause > 0 and time.monotonic() - self._finished < self.busy_gap_seconds:
            # Woken by a submit soon after the last batch: let concurrent submits gather
            # (a submit after a quiet spell is evaluated at once). Their wake-ups are
            # answered by this batch, not by another round.
            time.sleep(self._pause)
            self._wake.clear()
        evaluated = self.reactor.run_once(known_pending=woken)
        self._finished = time.monotonic()
        if evaluated >= self.reactor.batch_size:
            self._pause = 0.0  # a backlog: the next batch is waiting already
            return 0.0
        # Under load (several events gathered) wait longer, up to max_gather_seconds:
        # fewer, larger batches cost less per event and take the GIL and SQLite's write
        # lock from the request handlers less often.
        if evaluated > 1:
            self._pause = min(self.max_gather_seconds, max(self._pause, self.gather_seconds) * 2)
        else:
            self._pause = self.gather_seconds
        return self.poll_interval_seconds
