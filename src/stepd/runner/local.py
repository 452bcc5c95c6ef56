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
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

from stepd import logs
from stepd.logs import LogFormat
from stepd.proc.childproc import begin_child, spawn_context
from stepd.proc.loop import Loop
from stepd.proc.wakepipe import WakePipe
from stepd.runner.executor import ServerSide
from stepd.runner.fleet import Membership
from stepd.runner.horse import HorseLimits
from stepd.runner.registry import load_task_types
from stepd.runner.worker import Worker, WorkerSettings, default_worker_name
from stepd.settings import Settings
from stepd.store import deployment, open_store, runs
from stepd.store.engine import Store
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)

SUPERVISE_SECONDS = 0.5  # how soon a dead worker is seen, its attempt ended, a new one started
REAP_SECONDS = 5.0  # how often the attempts of silent workers elsewhere are looked for


@dataclass(frozen=True, kw_only=True)
class LocalConfig:
    """What a worker process needs: plain values, so it pickles into a spawned process."""

    database_url: str
    tasks: tuple[str, ...]
    sqlite_synchronous: str = "NORMAL"
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    log_format: LogFormat = "plain"  # Settings.log_format


def worker_process(config: LocalConfig, name: str, stop: WakePipe, wake: WakePipe) -> None:
    """The body of one worker process."""
    child = begin_child("stepd-worker", stop, config.log_format)
    logs.bind(worker=name)
    store = open_store(
        config.database_url, migrate=False, sqlite_synchronous=config.sqlite_synchronous
    )
    types = load_task_types(config.tasks)
    worker = Worker(
        store,
        types,
        name,
        config.worker,
        abandon=lambda: None if os.getppid() == child.parent_pid else "its server died",
        membership=Membership(store, name, "local", types),
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
    _loop: Loop | None = None
    _store: Store | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _generation: int = 0
    _since_reap: float = 0.0

    def __post_init__(self) -> None:
        self.wakes = [WakePipe() for _ in range(self.workers)]

    def start(self) -> None:
        self._store = open_store(
            self.config.database_url,
            migrate=False,
            sqlite_synchronous=self.config.sqlite_synchronous,
        )
        for i in range(self.workers):
            self._spawn(i)
        self._loop = Loop("stepd-local-executor", self._supervise, what="supervision")
        self._loop.start()

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

    def _supervise(self) -> float:
        """One round of supervision (proc/loop.py runs it every 0.5 s): restart a worker
        that died, ending at once the attempt it held; every 5 s, reap the attempts of
        workers elsewhere that stopped beating."""
        store = self._store
        assert store is not None  # (opened by start)
        status_events = self.config.worker.status_events
        for name, proc in list(self._procs.items()):
            if proc.is_alive():
                continue
            slot = int(name.rsplit("local-", 1)[1].split(".")[0])
            log.warning(
                "worker %s exited with code %s; ending its attempt and starting another",
                name,
                proc.exitcode,
            )
            with store.write() as conn:
                runs.reap(
                    conn,
                    utcnow(),
                    heartbeat_timeout_seconds=0,
                    events=status_events,
                    worker=name,
                )
            del self._procs[name]  # (after the reap: a failed one is tried again)
            if not self._done.is_set():
                self._spawn(slot)
        self._since_reap += SUPERVISE_SECONDS
        if self._since_reap >= REAP_SECONDS:
            self._since_reap = 0.0
            with store.write() as conn:
                lost = runs.reap(
                    conn,
                    utcnow(),
                    # The deployment's stored timeout wins (store/deployment.py).
                    heartbeat_timeout_seconds=deployment.heartbeat_timeout(
                        conn, self.heartbeat_timeout_seconds
                    ),
                    events=status_events,
                )
            if lost:
                log.warning("ended the attempts of tasks %s: their workers were lost", lost)
        return SUPERVISE_SECONDS

    def notify(self) -> None:
        """Tasks were made: idle workers look for them now rather than at their next poll."""
        for wake in self.wakes:
            wake.set()

    wake = notify  # (the Executor protocol's name: runner/executor.py)

    def wakeups(self) -> list[WakePipe]:
        return list(self.wakes)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the workers to finish their attempts and exit; kill those that do not."""
        self._done.set()
        self._stop.set()
        self.notify()  # idle workers see `_stop` now, not at their next poll
        for proc in list(self._procs.values()):  # (the supervisor may drop one meanwhile)
            proc.join(timeout)
            if proc.is_alive():
                log.warning("worker %s did not stop in %ss; killing it", proc.name, timeout)
                proc.kill()
        if self._loop is not None:
            self._loop.stop(5, reason="the server is stopping")
        if self._store is not None:
            self._store.close()


def serve_side(side: ServerSide) -> LocalExecutor | None:
    """The local executor of `stepd serve` (runner/executor.py): `--workers` processes here."""
    settings = side.settings
    if settings.workers < 1:
        return None
    return LocalExecutor(
        LocalConfig(
            database_url=side.store.url,
            tasks=settings.tasks,
            sqlite_synchronous=settings.sqlite_synchronous,
            log_format=settings.log_format,
            worker=WorkerSettings(
                status_events=side.status_events,
                horse=HorseLimits(max_tasks=settings.horse_max_tasks),
                # Woken when this server makes tasks; the poll finds the rest (retries
                # coming due, tasks another replica made).
                poll_interval_seconds=0.1,
            ),
        ),
        workers=settings.workers,
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
    )


def work(settings: Settings, worker: WorkerSettings) -> None:
    """`stepd worker --executor local`: worker processes here until SIGTERM or SIGINT."""
    local = LocalExecutor(
        LocalConfig(
            database_url=settings.database_url,
            tasks=settings.tasks,
            sqlite_synchronous=settings.sqlite_synchronous,
            log_format=settings.log_format,
            worker=worker,
        ),
        workers=settings.workers,
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
    )
    # Set from the signal handlers: a pipe, as a `threading.Event` could be interrupted
    # inside its own lock by the signal whose handler then sets it, and hang.
    done = WakePipe()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    local.start()
    done.wait()
    log.info("stopping: finishing the attempts in hand")
    local.stop()
