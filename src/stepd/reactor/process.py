"""The reactor in a process of its own, started and supervised by `stepd serve`.

Evaluating events against configs is Python work. In the server's process it would
share the GIL with the request handlers, so the more configs match, the slower the
server would take events in. In a process of its own it runs on another core.

Wake-ups cross the process boundary as pipes (`WakePipe`, no lock: a killed
process cannot block another): the server sets the reactor's when it stores events,
and the reactor sets the local workers' and the Celery dispatcher's when it makes
tasks. On PostgreSQL the reactor process also LISTENs for events other replicas and
workers store; on SQLite it polls.
Exactly-once does not depend on there being one reactor (the triggers' unique key
does that), so a restart after a crash is always safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from stepd.instruments import instruments, observe
from stepd.logs import LogFormat
from stepd.proc.childproc import begin_child, spawn_context
from stepd.proc.wakepipe import WakePipe
from stepd.reactor.loop import ReactorLoop
from stepd.reactor.reactor import Reactor
from stepd.settings import REACTOR_POLL_INTERVAL_SECONDS
from stepd.store import open_store
from stepd.store.lookup import DEFAULT_JOIN_ROWS, DEFAULT_JOIN_STEPS, JoinBudget
from stepd.store.notify import EVENTS_CHANNEL

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ReactorConfig:
    """What the reactor process needs: plain values, so it pickles into a spawned process."""

    database_url: str
    sqlite_synchronous: str = "NORMAL"
    poll_interval_seconds: float = REACTOR_POLL_INTERVAL_SECONDS
    join_budget_rows: int = DEFAULT_JOIN_ROWS  # Settings.join_budget_rows
    join_budget_steps: int = DEFAULT_JOIN_STEPS
    log_format: LogFormat = "plain"  # Settings.log_format


def reactor_main(
    config: ReactorConfig, wake: WakePipe, stop: WakePipe, task_wakes: Sequence[WakePipe]
) -> None:
    """The body of the reactor process."""
    child = begin_child("stepd-reactor", stop, config.log_format)
    store = open_store(
        config.database_url, migrate=False, sqlite_synchronous=config.sqlite_synchronous
    )
    loop = ReactorLoop(
        Reactor(
            store,
            join_budget=JoinBudget(rows=config.join_budget_rows, steps=config.join_budget_steps),
        ),
        poll_interval_seconds=config.poll_interval_seconds,
        _wake=wake,
    )
    for task_wake in task_wakes:
        loop.reactor.on_tasks.append(task_wake.set)
    observe(loop.reactor, instruments())  # to the server's multiprocess directory
    # Events other replicas and workers store, at once where the store notifies (else polled).
    listener = store.listener_for(EVENTS_CHANNEL, loop.notify)
    if listener is not None:
        listener.start()
    loop.start()
    try:
        # A reactor whose server died stops too: the restarted server starts its own, and
        # a second evaluation of an event would be a no-op anyway.
        while not child.should_stop():
            stop.wait(0.5)
        log.info("the reactor process stops: %s", child.stop_reason())
    finally:
        loop.stop()
        if listener is not None:
            listener.stop()
        store.close()


class ReactorProcess:
    """Starts the reactor process, restarts it if it dies, stops it with the server."""

    def __init__(self, config: ReactorConfig, task_wakes: Sequence[WakePipe] = ()) -> None:
        self.config = config
        self._ctx = spawn_context()  # a child that dies with this process, even at its start
        # Both outlive the reactor process: a restarted one is woken and stopped the same way.
        self.wake = WakePipe()
        self._stop = WakePipe()  # set once, at shutdown, and never cleared
        self._task_wakes = list(task_wakes)
        self._proc: BaseProcess | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """Events were stored: evaluate them now rather than at the next poll."""
        self.wake.set()

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(
            target=self._supervise, name="stepd-reactor-supervisor", daemon=True
        )
        self._thread.start()

    def _spawn(self) -> None:
        proc = self._ctx.Process(
            target=reactor_main,
            args=(self.config, self.wake, self._stop, self._task_wakes),
            name="stepd-reactor",
            daemon=True,
        )
        proc.start()
        self._proc = proc
        log.info("started the reactor process (pid %s)", proc.pid)

    def _supervise(self) -> None:
        while not self._done.wait(0.5):
            proc = self._proc
            if proc is not None and not proc.is_alive() and not self._done.is_set():
                log.warning("the reactor process exited with code %s; restarting it", proc.exitcode)
                self._spawn()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def stop(self, timeout: float = 15.0) -> None:
        self._done.set()
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(5)
        proc = self._proc
        if proc is not None:
            proc.join(timeout)
            if proc.is_alive():
                log.warning("the reactor process did not stop in %ss; killing it", timeout)
                proc.kill()
                proc.join(5)
