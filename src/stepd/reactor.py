"""The reactor: new events -> triggers -> tasks, in one transaction per batch.

Events are evaluated one at a time in store order, each against the events
evaluated before it, and marked PROCESSED in the same transaction that records
its firings and creates their tasks. A crash anywhere rolls all of that back,
so the batch is simply evaluated again: no event is lost and, thanks to the
unique key on (config, event, binding), no task is doubled. On PostgreSQL an
advisory lock makes reactors on several servers take turns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from stepd.catalog import Catalog
from stepd.domain.config_index import ConfigIndex
from stepd.domain.configs import ActionConfig
from stepd.domain.events import Event, EventState
from stepd.domain.firing import task_params_for
from stepd.domain.matching import Firing, evaluate
from stepd.domain.templates import TemplateProblem
from stepd.store import lookup as event_lookup
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.schema import events
from stepd.timeutil import utcnow

log = logging.getLogger(__name__)

REACTOR_LOCK = 7210002  # PostgreSQL advisory lock key: one evaluator at a time


@dataclass
class Reactor:
    """Evaluates NEW events against the configs; `run_once` is one batch."""

    store: Store
    batch_size: int = 200
    on_tasks: list[Callable[[], None]] = field(default_factory=list)  # runner wake-ups
    catalog: Catalog = field(default_factory=Catalog)

    def run_once(self, *, known_pending: bool = False) -> int:
        """Evaluate up to `batch_size` NEW events; return how many were evaluated."""
        if not known_pending:
            with self.store.read() as conn:
                # A cheap read first: an idle poll must not take SQLite's write lock.
                pending = conn.execute(
                    select(events.c.seq).where(events.c.state == EventState.NEW.value).limit(1)
                ).first()
            if pending is None:
                return 0
        made = evaluated = 0
        for attempt in range(3):
            # Configs are (re)loaded in a read transaction first: with 10,000 configs that
            # takes about a second, which must not be spent holding SQLite's write lock.
            snapshot = self.catalog.refresh(self.store)
            with self.store.write() as conn:
                if not self.store.is_sqlite:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({REACTOR_LOCK})")
                if event_lookup.config_generation(conn) != snapshot.generation:
                    if attempt < 2:
                        continue  # a config changed meanwhile: load it, again outside
                    snapshot = self.catalog.snapshot(conn)  # configs keep changing: load here
                evaluated, made = self._batch(conn, snapshot.index)
            break
        if made:
            for hook in self.on_tasks:
                hook()
        return evaluated

    def _batch(self, conn: Connection, configs: ConfigIndex[ActionConfig]) -> tuple[int, int]:
        """Evaluate one batch in `conn`'s transaction; (events evaluated, tasks made)."""
        rows = event_lookup.new_events(conn, self.batch_size)
        if not rows:
            return 0, 0
        made = 0
        quiet: list[int] = []
        newest: int | None = None  # the newest PROCESSED seq when the batch began
        estimates: event_lookup.Estimates = {}  # lookup selectivity, shared by the batch
        for row in rows:
            # Names first: most events concern no config, and need no decoding at all.
            if not configs.listens_to(row.name):
                quiet.append(row.seq)
                continue
            event = row.decode()
            candidates = configs.candidates(event.name, event.params)
            if not candidates:
                # No config has a dependency this event satisfies, so no later
                # lookup can want it: mark it with the rest in one statement.
                quiet.append(event.seq)
                continue
            if newest is None:
                newest = event_lookup.newest_processed(conn)
            # Only this reactor marks events PROCESSED (others wait on the lock), always in
            # seq order within a batch: an event past every PROCESSED one at the start is
            # the newest event its dependencies can see. One evaluated out of seq order
            # (a PostgreSQL commit that landed late, an event set back to NEW) is not.
            lookup = event_lookup.StoredEvents(conn, estimates=estimates)
            for config in candidates:
                spec = config.spec
                if not spec.enabled:
                    continue
                result = evaluate(
                    spec.event_deps,
                    event,
                    lookup,
                    window_seconds=spec.window_seconds,
                    nothing_newer=event.seq > newest,
                )
                for firing in result.firings:
                    made += self._fire(conn, config, event, firing)
            # Marked now: the next events of this batch may join with it.
            event_lookup.mark_processed(conn, event.seq)
        if quiet and self.store.is_sqlite:
            # Under SQLite's write lock the batch is every NEW event in its seq range,
            # and those evaluated above are PROCESSED already: one range update.
            event_lookup.mark_range_processed(conn, rows[0].seq, rows[-1].seq)
        elif quiet:
            event_lookup.mark_all_processed(conn, quiet)
        return len(rows), made

    def _fire(self, conn: Connection, config: ActionConfig, event: Event, firing: Firing) -> int:
        trigger_id = trigger_store.insert_trigger(
            conn,
            config_seq=config.seq,
            config_version=config.version,
            event_seq=event.seq,
            binding_key=firing.binding_key,
            binding=firing.binding,
            dep_events=[e.seq for e in firing.events],
            created=utcnow(),
        )
        if trigger_id is None:
            return 0  # this event already fired this config for this binding
        try:
            params = task_params_for(config.spec, firing, event)
        except TemplateProblem as exc:
            # Recorded on the trigger, so the story says why no task was made.
            trigger_store.attach(conn, trigger_id, task_id=None, error=str(exc))
            return 0
        spec = config.spec
        task_id = task_store.insert_task(
            conn,
            task_store.NewTask(
                type=spec.task_type,
                params=params,
                author=config.author,
                priority=spec.priority,
                semaphores=[{"name": s.name, "weight": s.weight} for s in spec.semaphores],
                kill_timeout=spec.kill_timeout,
                max_retries=spec.max_retries,
                config_seq=config.seq,
                config_version=config.version,
                event_seq=event.seq,
            ),
        )
        trigger_store.attach(conn, trigger_id, task_id=task_id, error=None)
        return 1


@dataclass
class ReactorLoop:
    """Runs a Reactor in a thread: woken at once by this process, polled for others."""

    reactor: Reactor
    poll_interval_seconds: float = 0.5
    gather_seconds: float = 0.002  # wait after a wake-up: batches concurrent submits
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stepd-reactor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log.info("reactor started")
        failures = 0
        woken = False
        while not self._stop.is_set():
            if woken and self.gather_seconds > 0:
                # Woken by a submit: let the events of concurrent requests gather for a
                # moment, so one batch (two transactions) evaluates them all.
                time.sleep(self.gather_seconds)
            self._wake.clear()
            try:
                evaluated = self.reactor.run_once(known_pending=woken)
                failures = 0
            except Exception:
                failures += 1
                log.exception("reactor batch failed (attempt %d); it will be retried", failures)
                self._stop.wait(min(30.0, 0.5 * 2**failures))
                continue
            woken = True
            if evaluated < self.reactor.batch_size:
                woken = self._wake.wait(self.poll_interval_seconds)
        log.info("reactor stopped: server shutting down")
