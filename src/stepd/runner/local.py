"""The local executor: N worker processes on this machine, supervised.

Workers are separate processes (spawned, so each is single-threaded and may fork
its work horses safely). The supervisor restarts a worker that dies and, at
once, ends the attempt that worker held (EXCEPTION, or a retry), releasing its
semaphores; a reaper ends the attempts of workers on other machines that
stopped beating.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

from stepd.proc.childproc import begin_child, spawn_context
from stepd.proc.wakepipe import WakePipe
from stepd.runner.registry import load_task_types
from stepd.runner.worker import Worker, WorkerSettings, default_worker_name
from stepd.store import open_store, runs
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LocalConfig:
    """What a worker process needs: plain values, so it pickles into a spawned process."""

    database_url: str
    tasks: tuple[str, ...]
    sqlite_synchronous: str = "NORMAL"
    worker: WorkerSettings = field(default_factory=WorkerSettings)


def worker_process(config: LocalConfig, name: str, stop: WakePipe, wake: WakePipe) -> None:
    """The body of one worker process."""
    child = begin_child("stepd-worker", stop)
    store = open_store(
        config.database_url, migrate=False, sqlite_synchronous=config.sqlite_synchronous
    )
    worker = Worker(
        store,
        load_task_types(config.tasks),
        name,
        config.worker,
        abandon=lambda: None if os.getppid() == child.parent_pid else "its server died",
    )
    durability = store.durability()  # read back from this process's own connection
    if durability is not None:
        log.info("worker %s: %s", name, durability)

    def idle(seconds: float) -> None:
        # The server sets `wake` when it makes tasks: no poll interval between them and us.
        if wake.wait(seconds):
            wake.clear()

    try:
        # A worker whose server died stops claiming: the restarted server starts its own,
        # and reaps what this one held if it dies mid-task.
        worker.run(child.should_stop, idle=idle)
        log.info("worker %s exits: %s", name, child.stop_reason())
    finally:
        store.close()


@dataclass
class LocalExecutor:
    config: LocalConfig
    workers: int = 2
    heartbeat_timeout_seconds: float = 30.0
    # Set when tasks are made (by the reactor, in this process or its own): every idle
    # worker looks at once. One pipe per worker slot, as a byte in one shared pipe would
    # wake only the worker that reads it first; a slot's pipe outlives its worker's restarts.
    wakes: list[WakePipe] = field(init=False)
    _stop: WakePipe = field(default_factory=WakePipe)  # set once, at shutdown; never cleared
    _procs: dict[str, BaseProcess] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _generation: int = 0

    def __post_init__(self) -> None:
        self.wakes = [WakePipe() for _ in range(self.workers)]

    def start(self) -> None:
        for i in range(self.workers):
            self._spawn(i)
        self._thread = threading.Thread(
            target=self._supervise, name="stepd-local-executor", daemon=True
        )
        self._thread.start()

    def _spawn(self, slot: int) -> None:
        self._generation += 1
        name = default_worker_name(f"local-{slot}.{self._generation}")
        # Spawned with a boot program that makes it die with this process, even mid-start-up.
        proc = spawn_context().Process(
            target=worker_process,
            args=(self.config, name, self._stop, self.wakes[slot]),
            name=f"stepd-worker-{slot}",
            daemon=True,
        )
        proc.start()
        self._procs[name] = proc
        log.info("started worker %s (pid %s)", name, proc.pid)

    def _supervise(self) -> None:
        store = open_store(
            self.config.database_url,
            migrate=False,
            sqlite_synchronous=self.config.sqlite_synchronous,
        )
        status_events = self.config.worker.status_events
        last_reap = 0.0
        try:
            while not self._done.wait(0.5):
                for name, proc in list(self._procs.items()):
                    if proc.is_alive():
                        continue
                    slot = int(name.rsplit("local-", 1)[1].split(".")[0])
                    log.warning(
                        "worker %s exited with code %s; ending its attempt and starting another",
                        name,
                        proc.exitcode,
                    )
                    del self._procs[name]
                    with store.write() as conn:
                        runs.reap(
                            conn,
                            utcnow(),
                            heartbeat_timeout_seconds=0,
                            events=status_events,
                            worker=name,
                        )
                    if not self._done.is_set():
                        self._spawn(slot)
                last_reap += 0.5
                if last_reap >= 5.0:
                    last_reap = 0.0
                    with store.write() as conn:
                        lost = runs.reap(
                            conn,
                            utcnow(),
                            heartbeat_timeout_seconds=self.heartbeat_timeout_seconds,
                            events=status_events,
                        )
                    if lost:
                        log.warning("ended the attempts of tasks %s: their workers were lost", lost)
        except Exception:
            log.exception("the local executor's supervisor failed")
        finally:
            store.close()

    def notify(self) -> None:
        """Tasks were made: idle workers look for them now rather than at their next poll."""
        for wake in self.wakes:
            wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the workers to finish their attempts and exit; kill those that do not."""
        self._done.set()
        self._stop.set()
        self.notify()  # idle workers see `_stop` now, not at their next poll
        for proc in self._procs.values():
            proc.join(timeout)
            if proc.is_alive():
                log.warning("worker %s did not stop in %ss; killing it", proc.name, timeout)
                proc.kill()
        if self._thread is not None:
            self._thread.join(5)
