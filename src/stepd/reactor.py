"""The reactor: new events -> triggers -> tasks, in one transaction per batch.

Events are evaluated one at a time in store order, each against the events
evaluated before it, and marked PROCESSED in the same transaction that records
its firings and creates their tasks. A crash anywhere rolls all of that back,
so the batch is simply evaluated again: no event is lost and, thanks to the
unique key on (config, event, binding), no task is doubled. On PostgreSQL an
advisory lock makes reactors on several servers take turns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from stepd.catalog import Catalog, Snapshot
from stepd.domain.config_index import ConfigIndex
from stepd.domain.configs import ActionConfig
from stepd.domain.events import EventState
from stepd.domain.firing import task_params_for
from stepd.domain.matching import Firing, MatchEvent, evaluate
from stepd.domain.templates import TemplateProblem
from stepd.store import dbapi
from stepd.store import lookup as event_lookup
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.schema import events
from stepd.timeutil import utcnow
from stepd.wakeup import Wakeup

log = logging.getLogger(__name__)

REACTOR_LOCK = 7210002  # PostgreSQL advisory lock key: one evaluator at a time


@dataclass
class Reactor:
    """Evaluates NEW events against the configs; `run_once` is one batch."""

    store: Store
    batch_size: int = 200
    on_tasks: list[Callable[[], None]] = field(default_factory=list)  # runner wake-ups
    catalog: Catalog = field(default_factory=Catalog)
    _estimate_cache: event_lookup.Estimates = field(default_factory=dict)
    _estimated_at: float = field(default_factory=time.monotonic)

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
        # The configs are checked inside the write transaction (one cheap read) and, when
        # they changed, loaded outside it: with 10,000 configs a load takes about a second,
        # which must not be spent holding SQLite's write lock.
        snapshot = self.catalog.current or self.catalog.refresh(self.store)
        made = evaluated = 0
        planned = self._planned(snapshot) if self.store.is_sqlite else None
        if planned is not None:
            evaluated, made = planned
        else:
            for attempt in range(3):
                with self.store.write() as conn:
                    if not self.store.is_sqlite:
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({REACTOR_LOCK})")
                    generation = event_lookup.config_generation(conn)
                    if generation != snapshot.generation and attempt == 2:
                        snapshot = self.catalog.snapshot(conn)  # configs keep changing: load
                    if generation == snapshot.generation:
                        evaluated, made = self._batch(conn, snapshot.index)
                        break
                snapshot = self.catalog.refresh(self.store)  # a config changed: load, retry
        if made:
            for hook in self.on_tasks:
                hook()
        return evaluated

    def _planned(self, snapshot: Snapshot) -> tuple[int, int] | None:
        """SQLite: evaluate a batch in a read snapshot, then write what it fires in a short
        write transaction, so that ingest waits for the inserts only, not the matching.

        The write applies the plan only if nothing the evaluation read has changed: the
        configs, the newest PROCESSED event (no other reactor evaluated meanwhile), the
        batch's events (all still NEW: none rejected) and the events the firings used
        (none rejected since). New events get higher seqs and are the next batch's. When
        anything changed (None), the caller evaluates inside the write transaction.
        """
        with self.store.read() as conn:
            raw = dbapi.Raw(conn)
            if event_lookup.config_generation(raw) != snapshot.generation:
                return None
            plan = self._plan(raw, snapshot.index)
        if not plan.rows:
            return 0, 0
        with self.store.write() as conn:
            raw = dbapi.Raw(conn)
            if not (
                event_lookup.config_generation(raw) == snapshot.generation
                and event_lookup.newest_processed(raw) == plan.newest
                and event_lookup.count_new(raw, plan.rows[0].seq, plan.rows[-1].seq)
                == len(plan.rows)
                and not event_lookup.any_rejected(raw, plan.used_seqs())
            ):
                return None
            made = sum(
                self._fire(raw, config, event, firing) for config, event, firing in plan.firings
            )
            event_lookup.mark_processed(raw, [row.seq for row in plan.rows], whole_range=True)
        return len(plan.rows), made

    def _plan(self, raw: dbapi.Raw, configs: ConfigIndex[ActionConfig]) -> _Plan:
        """The planned path's evaluation, in a read snapshot (tests act between it and
        the write)."""
        return self._evaluate(raw, configs)

    def _evaluate(self, raw: dbapi.Raw, configs: ConfigIndex[ActionConfig]) -> _Plan:
        """What the oldest NEW events fire, evaluated without writing anything."""
        rows = event_lookup.new_events(raw, self.batch_size)
        # Only a reactor marks events PROCESSED (others wait on the lock), always in seq
        # order within a batch: an event past every PROCESSED one at the start is the
        # newest event its dependencies can see. One evaluated out of seq order (a
        # PostgreSQL commit that landed late, an event set back to NEW) is not.
        plan = _Plan(rows=rows, newest=event_lookup.newest_processed(raw) if rows else 0)
        # The events evaluated so far in this batch, by name: PROCESSED for the matcher
        # (the next events may join with them), marked so in the store with the rest.
        evaluated: dict[str, list[event_lookup.StoredEvent]] = {}
        estimates = self._estimates()
        for row in rows:
            # Names first: most events concern no config, and need no decoding at all.
            if not configs.listens_to(row.name):
                continue
            params = row.params()
            candidates = configs.candidates(row.name, params)
            if not candidates:
                # No config has a dependency this event satisfies, so no later
                # lookup can want it.
                continue
            event = row.event(params)
            lookup = event_lookup.StoredEvents(raw, estimates=estimates, batch=evaluated)
            for config in candidates:
                spec = config.spec
                if not spec.enabled:
                    continue
                result = evaluate(
                    spec.event_deps,
                    event,
                    lookup,
                    window_seconds=spec.window_seconds,
                    nothing_newer=event.seq > plan.newest,
                    explain=False,
                )
                plan.firings += [(config, event, firing) for firing in result.firings]
            evaluated.setdefault(event.name, []).append(event)
        return plan

    def _batch(self, conn: Connection, configs: ConfigIndex[ActionConfig]) -> tuple[int, int]:
        """Evaluate one batch in `conn`'s transaction; (events evaluated, tasks made)."""
        raw = dbapi.Raw(conn)  # every statement below runs on the driver's cursor
        plan = self._evaluate(raw, configs)
        if not plan.rows:
            return 0, 0
        made = sum(self._fire(raw, config, event, firing) for config, event, firing in plan.firings)
        # Under SQLite's write lock the batch is every NEW event in its seq range: one
        # range update. On PostgreSQL a late commit may have put another in the range.
        event_lookup.mark_processed(raw, [row.seq for row in plan.rows], whole_range=raw.sqlite)
        return len(plan.rows), made

    def _estimates(self) -> event_lookup.Estimates:
        """Lookup selectivity counts, kept across batches (they only order a lookup's
        params) and forgotten now and then, as the stored events change."""
        now = time.monotonic()
        if now - self._estimated_at > 60 or len(self._estimate_cache) > 100_000:
            self._estimate_cache, self._estimated_at = {}, now
        return self._estimate_cache

    def _fire(
        self, conn: dbapi.Raw, config: ActionConfig, event: MatchEvent, firing: Firing
    ) -> int:
        spec = config.spec
        created = dbapi.time_param(conn, utcnow())
        binding_json = dbapi.to_json(firing.binding)
        try:
            params = task_params_for(spec, firing, event)
            error = None
        except TemplateProblem as exc:
            # Recorded on the trigger, so the story says why no task was made.
            params, error = None, str(exc)
        task_id = None
        if params is not None:
            task_id = task_store.insert_encoded(
                conn,
                type=spec.task_type,
                # without task_params, the params are the binding: the same JSON
                params_json=dbapi.to_json(params) if spec.task_params else binding_json,
                author=config.author,
                priority=spec.priority,
                semaphores_json=json.dumps(
                    [{"name": s.name, "weight": s.weight} for s in spec.semaphores]
                ),
                kill_timeout=spec.kill_timeout,
                max_retries=spec.max_retries,
                config_seq=config.seq,
                config_version=config.version,
                event_seq=event.seq,
                created=created,
            )
        trigger_id = trigger_store.insert_trigger(
            conn,
            config_seq=config.seq,
            config_version=config.version,
            event_seq=event.seq,
            binding_key=firing.binding_key,
            binding_json=binding_json,
            dep_events=[e.seq for e in firing.events],
            task_id=task_id,
            error=error,
            created=created,
        )
        if trigger_id is None:
            # This event already fired this config for this binding (a second evaluation):
            # the task just made is not one to run. Deleted in the same transaction, no
            # one ever sees it.
            if task_id is not None:
                task_store.delete_unfired(conn, task_id)
            return 0
        return 0 if task_id is None else 1


@dataclass
class _Plan:
    """A batch evaluated in a read snapshot: its NEW events and what they fire."""

    rows: list[event_lookup.NewRow]
    newest: int  # the newest PROCESSED seq the evaluation saw
    firings: list[tuple[ActionConfig, MatchEvent, Firing]] = field(default_factory=list)

    def used_seqs(self) -> list[int]:
        """The stored (PROCESSED) events the firings depend on."""
        batch = {row.seq for row in self.rows}
        return sorted({e.seq for _, _, f in self.firings for e in f.events} - batch)


@dataclass
class ReactorLoop:
    """Runs a Reactor in a thread: woken at once by this process, polled for others."""

    reactor: Reactor
    poll_interval_seconds: float = 0.5
    gather_seconds: float = 0.002  # wait after a wake-up: batches concurrent submits
    max_gather_seconds: float = 0.048  # the longest such wait, under sustained load
    busy_gap_seconds: float = 0.01  # a wake-up sooner than this after a batch: gather
    # A WakePipe (wakepipe.py) when the loop runs in the reactor process (reactor_process.py).
    _wake: Wakeup = field(default_factory=threading.Event)
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
        pause = self.gather_seconds
        finished = time.monotonic()  # when the last batch ended
        while not self._stop.is_set():
            if woken and pause > 0 and time.monotonic() - finished < self.busy_gap_seconds:
                # Woken by a submit soon after the last batch: events are coming in, so let
                # those of concurrent requests gather, and one batch (one transaction)
                # evaluate them all. A submit after a quiet spell is evaluated at once.
                time.sleep(pause)
            self._wake.clear()
            try:
                evaluated = self.reactor.run_once(known_pending=woken)
                failures = 0
            except Exception:
                failures += 1
                log.exception("reactor batch failed (attempt %d); it will be retried", failures)
                self._stop.wait(min(30.0, 0.5 * 2**failures))
                continue
            finished = time.monotonic()
            if evaluated >= self.reactor.batch_size:
                woken, pause = True, 0.0  # a backlog: the next batch is waiting already
                continue
            # Under load (several events gathered) wait longer, up to max_gather_seconds:
            # fewer, larger batches cost less per event and take the GIL and SQLite's
            # write lock from the request handlers less often.
            if evaluated > 1:
                pause = min(self.max_gather_seconds, max(pause, self.gather_seconds) * 2)
            else:
                pause = self.gather_seconds
            woken = self._wake.wait(self.poll_interval_seconds)
        log.info("reactor stopped: server shutting down")
