"""The reactor: new events -> triggers -> tasks, in one transaction per batch.

Events are evaluated one at a time in store order, each against the events
evaluated before it, and marked PROCESSED in the same transaction that records
its firings and creates their tasks. A crash anywhere rolls all of that back,
so the batch is simply evaluated again: no event is lost and, thanks to the
unique key on (config, event, binding), no task is doubled. On PostgreSQL an
advisory lock makes reactors on several servers take turns.

One config can never stop the others: an evaluation or a firing that fails for a
reason of its own (a template that raises, a number a task row cannot hold, a
window too long for a date, a join past its JoinBudget) is recorded as an error on its
trigger, makes no task,
and the batch goes on. Only an error of the database itself fails the batch. On
PostgreSQL a failed statement aborts the transaction; the batch is then evaluated
again with the item that failed under a SAVEPOINT, so the hot path needs none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from sqlalchemy import Connection, select

from stepd import logs
from stepd.domain.config_index import ConfigIndex
from stepd.domain.configs import ActionConfig, limit_problem
from stepd.domain.events import EventState, format_event_id
from stepd.domain.firing import task_params_for, task_semaphores
from stepd.domain.matching import (
    Evaluation,
    Firing,
    MatchEvent,
    SearchLimitReached,
    binding_key,
    evaluate,
)
from stepd.domain.templates import TemplateProblem
from stepd.errors import StepdError
from stepd.reactor.catalog import Catalog, Snapshot
from stepd.store import dbapi, faults, queries
from stepd.store import lookup as event_lookup
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.schema import events
from stepd.timeutil import utcnow

_Q = queries.load("reactor")  # the per-item savepoints, by name: store/sql/reactor.sql

log = logging.getLogger(__name__)

MAX_AGAIN = 100  # batches evaluated again in one run_once, each with one more item isolated
MAX_ERROR_TEXT = 2000  # characters of an error kept on a trigger
NO_BINDING = binding_key({})  # the binding an evaluation that failed is recorded under
_T = TypeVar("_T")
_P = ParamSpec("_P")


class _Again(Exception):
    """An item failed in a way that aborted the transaction: evaluate the batch again,
    that item under a savepoint."""


class _ItemFailed(Exception):
    """One evaluation or firing failed for a reason of its own; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StepdError):
        text = exc.message
    elif isinstance(exc, TemplateProblem):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


@dataclass
class Reactor:
    """Evaluates NEW events against the configs; `run_once` is one batch."""

    store: Store
    batch_size: int = 200
    on_tasks: list[Callable[[], None]] = field(default_factory=list)  # runner wake-ups
    # Observers (the metrics): the seconds of each batch that evaluated events, and the
    # firings a batch found made already (a second evaluation of the same event).
    on_batch: list[Callable[[float], None]] = field(default_factory=list)
    on_skipped: list[Callable[[int], None]] = field(default_factory=list)
    _skipped: int = 0  # firings found made already in the batch being written
    catalog: Catalog = field(default_factory=Catalog)
    _estimate_cache: event_lookup.Estimates = field(default_factory=dict)
    _estimated_at: float = field(default_factory=time.monotonic)
    # Items (evaluations, firings) whose failure aborted a transaction: run under a
    # savepoint until their batch commits.
    _suspects: set[Hashable] = field(default_factory=set)
    # limit_problem per config version: asked by every firing, the same answer each time
    _limits: dict[tuple[int, int], str | None] = field(default_factory=dict)
    # what one config's evaluation on one event may cost (Settings.join_budget_*): past
    # it, that evaluation fails and is recorded, and the batch goes on
    join_budget: event_lookup.JoinBudget = field(default_factory=event_lookup.JoinBudget)

    def run_once(self, *, known_pending: bool = False) -> int:
        """Evaluate up to `batch_size` NEW events; return how many were evaluated."""
        for _ in range(MAX_AGAIN):
            started = time.perf_counter()
            self._skipped = 0
            try:
                evaluated = self._run_once(known_pending=known_pending)
            except _Again:
                continue  # rolled back; the item that failed is isolated next time
            self._suspects.clear()
            if evaluated:  # an idle poll is no batch
                seconds = time.perf_counter() - started
                for observe in self.on_batch:
                    observe(seconds)
            if self._skipped:
                for count in self.on_skipped:
                    count(self._skipped)
            return evaluated
        raise RuntimeError(f"{MAX_AGAIN} items of one batch failed; the batch is retried")

    def _run_once(self, *, known_pending: bool) -> int:
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
        planned = self._planned(snapshot) if self.store.evaluates_in_snapshot else None
        if planned is not None:
            evaluated, made = planned
        else:
            for attempt in range(3):
                with self.store.write() as conn:
                    self.store.reactor_lock(conn)  # reactors on other servers wait
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
        """Where writers take turns (SQLite): evaluate a batch in a read snapshot, then
        write what it fires in a short write transaction, so that ingest waits for the
        inserts only, not the matching.

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
            made = self._write_plan(raw, plan)
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
                # A disabled or paused config is skipped: the events it misses meanwhile
                # are PROCESSED without it and never fire it later (docs/configs.md).
                if not config.fires:
                    continue
                try:
                    result = self._guard(
                        raw,
                        ("evaluate", config.seq, event.seq),
                        self._evaluate_one,
                        config,
                        event,
                        lookup,
                        plan.newest,
                    )
                except _ItemFailed as failed:
                    plan.failures.append((config, event, f"evaluation failed: {failed.message}"))
                    continue
                plan.firings += [(config, event, firing) for firing in result.firings]
            evaluated.setdefault(event.name, []).append(event)
        return plan

    def _evaluate_one(
        self,
        config: ActionConfig,
        event: MatchEvent,
        lookup: event_lookup.StoredEvents,
        newest: int,
    ) -> Evaluation:
        spec = config.spec
        budget = self.join_budget
        # Each config's evaluation gets bounds of its own: one config's product of events
        # must not spend the others' (the lookup, and what it cached, are shared).
        lookup.budget = budget.scan()
        try:
            return evaluate(
                spec.event_deps,
                event,
                lookup,
                window_seconds=spec.window_seconds,
                nothing_newer=event.seq > newest,
                explain=False,
                max_steps=budget.steps,
            )
        except (event_lookup.ScanLimitReached, SearchLimitReached) as exc:
            raise budget.exceeded(exc) from exc

    def _guard(
        self,
        conn: dbapi.Raw,
        key: Hashable,
        action: Callable[_P, _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """`action()`, or _ItemFailed when it fails for a reason of its own.

        A transient database error propagates (the batch fails, to be retried). A
        failure that aborted the transaction raises _Again, and the next evaluation of
        the batch runs this item under a savepoint; only suspects pay for one.
        """
        if key in self._suspects:
            return self._isolated(conn, action, *args, **kwargs)
        try:
            return action(*args, **kwargs)
        except Exception as exc:
            if faults.is_transient(exc):
                raise
            if faults.transaction_failed(conn):
                self._suspects.add(key)
                raise _Again from exc
            raise _ItemFailed(_describe(exc)) from exc

    @staticmethod
    def _isolated(
        conn: dbapi.Raw, action: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        dbapi.run(conn, _Q["savepoint"]).close()
        try:
            result = action(*args, **kwargs)
        except Exception as exc:
            if faults.is_transient(exc):
                raise
            dbapi.run(conn, _Q["rollback_to_savepoint"]).close()
            raise _ItemFailed(_describe(exc)) from exc
        dbapi.run(conn, _Q["release_savepoint"]).close()
        return result

    def _batch(self, conn: Connection, configs: ConfigIndex[ActionConfig]) -> tuple[int, int]:
        """Evaluate one batch in `conn`'s transaction; (events evaluated, tasks made)."""
        raw = dbapi.Raw(conn)  # every statement below runs on the driver's cursor
        plan = self._evaluate(raw, configs)
        if not plan.rows:
            return 0, 0
        made = self._write_plan(raw, plan)
        # Where writers take turns (SQLite) the batch is every NEW event in its seq range:
        # one range update. Otherwise (PostgreSQL) a late commit may have put another there.
        event_lookup.mark_processed(
            raw, [row.seq for row in plan.rows], whole_range=self.store.writers_take_turns
        )
        return len(plan.rows), made

    def _estimates(self) -> event_lookup.Estimates:
        """Lookup selectivity counts, kept across batches (they only order a lookup's
        params) and forgotten now and then, as the stored events change."""
        now = time.monotonic()
        if now - self._estimated_at > 60 or len(self._estimate_cache) > 100_000:
            self._estimate_cache, self._estimated_at = {}, now
        return self._estimate_cache

    def _write_plan(self, conn: dbapi.Raw, plan: _Plan) -> int:
        """Record the plan's failed evaluations and its firings; how many tasks it made."""
        if plan.failures:
            created = dbapi.time_param(conn, utcnow())
            for config, event, error in plan.failures:
                self._record(conn, config, event, NO_BINDING, "{}", (), error, created)
        return sum(self._fire(conn, config, event, f) for config, event, f in plan.firings)

    def _fire(
        self, conn: dbapi.Raw, config: ActionConfig, event: MatchEvent, firing: Firing
    ) -> int:
        created = dbapi.time_param(conn, utcnow())
        binding_json = dbapi.to_json(firing.binding)
        deps = [e.seq for e in firing.events]
        # Everything that can fail on the config's values, before any write: numbers a
        # task row cannot hold (a config stored before they were refused at save), and
        # the params (templates).
        spec = config.spec
        version = (config.seq, config.version)
        if version not in self._limits:
            if len(self._limits) > 100_000:
                self._limits.clear()
            problem = limit_problem(spec)
            self._limits[version] = None if problem is None else problem.message
        if (error := self._limits[version]) is not None:
            return self._record(
                conn, config, event, firing.binding_key, binding_json, deps, error, created
            )
        try:
            params = task_params_for(spec, firing, event)
            # without task_params, the params are the binding: the same JSON
            params_json = dbapi.to_json(params) if spec.task_params else binding_json
            uses = task_semaphores(spec, firing, event)  # None: the config's own names
        except Exception as exc:
            # Recorded on the trigger, so the story says why no task was made.
            return self._record(
                conn, config, event, firing.binding_key, binding_json, deps, _describe(exc), created
            )
        try:
            return self._guard(
                conn,
                ("fire", config.seq, event.seq, firing.binding_key),
                self._write,
                conn,
                config,
                event,
                firing,
                params_json,
                binding_json,
                created,
                uses,
            )
        except _ItemFailed as failed:
            error = f"the task could not be stored: {failed.message}"
            return self._record(
                conn, config, event, firing.binding_key, binding_json, deps, error, created
            )

    def _write(
        self,
        conn: dbapi.Raw,
        config: ActionConfig,
        event: MatchEvent,
        firing: Firing,
        params_json: str,
        binding_json: str,
        created: object,
        uses: list[dict[str, object]] | None = None,
    ) -> int:
        """Insert the firing's task and trigger; 1, or 0 when it had fired already."""
        task_id = task_store.insert_for_config(
            conn,
            config,
            params_json=params_json,
            event_seq=event.seq,
            created=created,
            semaphores=uses,
        )
        try:
            trigger_id = trigger_store.insert_trigger(
                conn,
                config_seq=config.seq,
                config_version=config.version,
                event_seq=event.seq,
                binding_key=firing.binding_key,
                binding_json=binding_json,
                dep_events=[e.seq for e in firing.events],
                task_id=task_id,
                error=None,
                created=created,
            )
        except Exception:
            # SQLite undid the failed insert only: the task must go too.
            if not faults.transaction_failed(conn):
                task_store.delete_unfired(conn, task_id)
            raise
        if trigger_id is None:
            # This event already fired this config for this binding (a second evaluation):
            # the task just made is not one to run. Deleted in the same transaction, no
            # one ever sees it.
            task_store.delete_unfired(conn, task_id)
            self._skipped += 1
            return 0
        log.info(
            "config %s (%s) fired task %s on event %s",
            config.id,
            config.spec.name,
            task_id,
            format_event_id(event.seq),
            extra=logs.ids(
                config_id=config.id, event_id=format_event_id(event.seq), task_id=task_id
            ),
        )
        return 1

    def _record(
        self,
        conn: dbapi.Raw,
        config: ActionConfig,
        event: MatchEvent,
        key: str,
        binding_json: str,
        deps: list[int] | tuple[()],
        error: str,
        created: object,
    ) -> int:
        """Record a trigger with `error` and no task (once per config, event, binding)."""
        log.warning(
            "config %s (%s) on event %s: %s",
            config.id,
            config.spec.name,
            format_event_id(event.seq),
            error,
            extra=logs.ids(config_id=config.id, event_id=format_event_id(event.seq)),
        )
        try:
            self._guard(
                conn,
                ("record", config.seq, event.seq, key),
                trigger_store.insert_trigger,
                conn,
                config_seq=config.seq,
                config_version=config.version,
                event_seq=event.seq,
                binding_key=key,
                binding_json=binding_json,
                dep_events=deps,
                task_id=None,
                error=error,
                created=created,
            )
        except _ItemFailed as failed:
            # Not even the error could be stored: the event is evaluated all the same.
            log.error("the error could not be recorded either: %s", failed.message)
        return 0


@dataclass
class _Plan:
    """A batch evaluated in a read snapshot: its NEW events and what they fire."""

    rows: list[event_lookup.NewRow]
    newest: int  # the newest PROCESSED seq the evaluation saw
    firings: list[tuple[ActionConfig, MatchEvent, Firing]] = field(default_factory=list)
    # evaluations that failed, and why: each recorded as a trigger with an error
    failures: list[tuple[ActionConfig, MatchEvent, str]] = field(default_factory=list)

    def used_seqs(self) -> list[int]:
        """The stored (PROCESSED) events the firings depend on."""
        batch = {row.seq for row in self.rows}
        return sorted({e.seq for _, _, f in self.firings for e in f.events} - batch)
