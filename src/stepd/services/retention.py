"""Retention's rounds: delete what is past the deployment's retention, a small batch per
write transaction, so that ingest never waits long (on SQLite the write turn is shared:
a batch holds it for milliseconds, then gives it back for longer).

A round walks events, then request ids, then tasks, then logs, each in creation order
from the oldest, and stops at the first row younger than its cutoff (ids grow with time,
so nothing past it can be due). Rows it must keep (an event not evaluated yet, one a
join may still look up, one whose task is still active; a task not finished) are
stepped over and met again by the next round. What the cutoffs mean:
domain/retention.py. The server's loop (daemon.py) runs a round every
`retention_interval_seconds`; `stepd prune` runs one now (or counts, `--dry-run`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import Connection

from stepd.domain import retention as rules
from stepd.proc.loop import Loop
from stepd.store import configs as config_store
from stepd.store import deployment
from stepd.store import retention as rows
from stepd.store.engine import Store
from stepd.timeutil import iso, utcnow

log = logging.getLogger(__name__)

# After a batch, the pause before the next is this many times as long as the batch held
# the write turn: retention takes at most 1/(1+PAUSE_FACTOR) of it (5%) while there is a
# backlog, and as little of the GIL of the API it shares a process with. Measured beside
# ingest that saturates the write turn (benchmarks/retention_bench.py, 200,000 events,
# quiet machine): a factor of 9 cost ingest 10.5% and deleted 3,600 events/s, 19 cost it
# 2.7% and deleted 1,900 events/s (a backlog of 1,000,000 in about 9 minutes).
PAUSE_FACTOR = 19.0
MIN_PAUSE_SECONDS = 0.005


@dataclass
class Tally:
    """What one round deleted (or, dry, would delete), by kind."""

    events: int = 0
    params: int = 0  # params (and object sources') index rows of those events
    triggers: int = 0  # their firings (not counted by a dry run)
    requests: int = 0  # request ids older than the events they named
    tasks: int = 0
    attempts: int = 0  # (not counted by a dry run)
    logs: int = 0  # log chunks (a dry run counts the tasks whose logs go)
    kept_events: int = 0  # old events kept for a task that is not finished
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class Report:
    """One round: its policy, cutoffs and tally."""

    policy: rules.Policy
    cutoffs: rules.Cutoffs | None  # None: retention is off
    tally: Tally
    dry_run: bool
    seconds: float

    def to_json(self) -> dict[str, object]:
        c = self.cutoffs
        return {
            "dry_run": self.dry_run,
            "off": c is None,
            "cutoffs": None
            if c is None
            else {
                "events": None if c.events is None else iso(c.events),
                "kept_longer": {name: iso(at) for name, at in sorted(c.kept_longer.items())},
                "tasks": None if c.tasks is None else iso(c.tasks),
                "logs": None if c.logs is None else iso(c.logs),
            },
            "deleted" if not self.dry_run else "would_delete": self.tally.as_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Round:
    """One walk over the store, a batch per `step` (so a loop can pace it and stop it)."""

    store: Store
    cutoffs: rules.Cutoffs
    batch_rows: int
    apply: bool = True  # False: count only (a dry run, in reads)
    tally: Tally = field(default_factory=Tally)
    _phase: int = 0
    _after: int = 0

    @property
    def done(self) -> bool:
        return self._phase >= len(_PHASES)

    def step(self) -> float:
        """One batch; the seconds it held the write turn (0 for a read)."""
        started = time.perf_counter()
        more = _PHASES[self._phase](self)
        if not more:
            self._phase += 1
            self._after = 0
        return time.perf_counter() - started if self.apply else 0.0

    # -- the phases: each one batch, True while there may be more ----------------------

    def _events(self) -> bool:
        cutoff = self.cutoffs.events
        if cutoff is None:
            return False
        with self.store.read() as conn:
            batch = rows.event_batch(conn, self._after, self.batch_rows)
        if not batch:
            return False
        # Stop at the first event young enough to keep: every later one is younger.
        young = next((i for i, e in enumerate(batch) if e.created >= cutoff), None)
        scanned = batch if young is None else batch[:young]
        due = [e for e in scanned if self._event_due(e)]
        if due:
            with self._txn() as conn:
                gone = rows.delete_events(conn, due, apply=self.apply)
            self.tally.events += gone.events
            self.tally.params += gone.params
            self.tally.triggers += gone.triggers
            self.tally.kept_events += gone.kept_for_tasks
            self.tally.batches += 1
        if scanned:
            self._after = scanned[-1].seq
        return young is None and len(batch) == self.batch_rows

    def _event_due(self, e: rows.OldEvent) -> bool:
        cutoff = self.cutoffs.event_cutoff(e.name)
        return e.state != "NEW" and cutoff is not None and e.created < cutoff

    def _requests(self) -> bool:
        cutoff = self.cutoffs.events
        if cutoff is None:
            return False
        if not self.apply:
            with self.store.read() as conn:
                self.tally.requests += rows.count_requests(conn, cutoff)
            return False
        with self.store.write() as conn:
            gone = rows.delete_requests(conn, cutoff, self.batch_rows)
        self.tally.requests += gone
        self.tally.batches += 1
        return gone == self.batch_rows

    def _tasks(self) -> bool:
        return self._walk_tasks(self.cutoffs.tasks, logs_only=False)

    def _logs(self) -> bool:
        return self._walk_tasks(self.cutoffs.logs, logs_only=True)

    def _walk_tasks(self, cutoff: datetime | None, *, logs_only: bool) -> bool:
        if cutoff is None:
            return False
        with self.store.read() as conn:
            batch = rows.task_batch(conn, self._after, self.batch_rows)
        if not batch:
            return False
        # A task finishes after it was made: none made after the cutoff finished before it.
        young = next((i for i, t in enumerate(batch) if t.created >= cutoff), None)
        scanned = batch if young is None else batch[:young]
        due = {t.id for t in scanned if rules.finished_before(t.status, t.finished, cutoff)}
        if due:
            with self._txn() as conn:
                # Checked again in the transaction: a restart may have made one active.
                now = rows.tasks_now(conn, min(due), max(due), lock=self.apply)
                going = {
                    t.id
                    for t in now
                    if t.id in due and rules.finished_before(t.status, t.finished, cutoff)
                }
                if not self.apply:
                    if logs_only:
                        self.tally.logs += len(going)
                    else:
                        self.tally.tasks += len(going)
                elif logs_only:
                    self.tally.logs += rows.delete_logs(conn, going)
                else:
                    gone = rows.delete_tasks(conn, going)
                    self.tally.tasks += gone.tasks
                    self.tally.attempts += gone.attempts
                    self.tally.logs += gone.logs
            self.tally.batches += 1
        if scanned:
            self._after = scanned[-1].id
        return young is None and len(batch) == self.batch_rows

    def _txn(self) -> AbstractContextManager[Connection]:
        """A batch's transaction: a short write, or a read for a dry run."""
        return self.store.write() if self.apply else self.store.read()


_PHASES: tuple[Callable[[Round], bool], ...] = (
    Round._events,
    Round._requests,
    Round._tasks,
    Round._logs,
)


@dataclass
class RetentionService:
    """Rounds of retention on `store`, with this process's own retention settings as the
    fallback for what the store does not hold (store/deployment.py `retention`)."""

    store: Store
    own: tuple[str | None, str | None, str | None] = (None, None, None)
    batch_rows: int = 500
    now: Callable[[], datetime] = utcnow

    def policy(self) -> rules.Policy:
        with self.store.read() as conn:
            return deployment.retention(conn, self.own)

    def begin(self, *, apply: bool = True, policy: rules.Policy | None = None) -> Round | None:
        """A round at the current time (None: retention is off)."""
        policy = self.policy() if policy is None else policy
        if policy.off:
            return None
        with self.store.read() as conn:
            configs = config_store.list_configs(conn)
            oldest = rows.oldest_unevaluated(conn)
        cutoffs = rules.cutoffs(policy, configs, now=self.now(), oldest_unevaluated=oldest)
        return Round(self.store, cutoffs, self.batch_rows, apply=apply)

    def run(
        self,
        *,
        apply: bool = True,
        policy: rules.Policy | None = None,
        paced: bool = True,
        progress: Callable[[Tally], None] = lambda _t: None,
    ) -> Report:
        """One whole round now (`stepd prune`): paced as the server's loop is, unless not
        `paced`; `progress` is told the tally after each batch."""
        started = time.perf_counter()
        policy = self.policy() if policy is None else policy
        round_ = self.begin(apply=apply, policy=policy)
        if round_ is not None:
            while not round_.done:
                held = round_.step()
                progress(round_.tally)
                if paced and held > 0:
                    time.sleep(pause_after(held))
        return Report(
            policy=policy,
            cutoffs=None if round_ is None else round_.cutoffs,
            tally=Tally() if round_ is None else round_.tally,
            dry_run=not apply,
            seconds=time.perf_counter() - started,
        )


def pause_after(held_seconds: float) -> float:
    """The pause after a batch that held the write turn `held_seconds`."""
    return max(MIN_PAUSE_SECONDS, held_seconds * PAUSE_FACTOR)


@dataclass
class RetentionLoop:
    """The server's background retention: a round every `interval_seconds`, paced."""

    service: RetentionService
    interval_seconds: float = 300.0
    _round: Round | None = None
    _started: float = 0.0
    _loop: Loop | None = None

    def step(self) -> float:
        if self._round is None:
            self._round = self.service.begin()
            self._started = time.perf_counter()
            if self._round is None:
                return self.interval_seconds  # off: asked again later (settings change)
        round_ = self._round
        try:
            held = round_.step()
        except Exception:
            self._round = None  # the next attempt starts a fresh round, with fresh cutoffs
            raise
        if not round_.done:
            return pause_after(held)
        self._round = None
        t = round_.tally
        if t.events or t.tasks or t.logs or t.requests:
            log.info(
                "retention: deleted %d events (%d index rows, %d triggers), %d request ids, "
                "%d tasks (%d attempts), %d log chunks in %.1f s; kept %d old events of "
                "unfinished tasks",
                t.events,
                t.params,
                t.triggers,
                t.requests,
                t.tasks,
                t.attempts,
                t.logs,
                time.perf_counter() - self._started,
                t.kept_events,
            )
        return self.interval_seconds

    def start(self) -> None:
        # A failed batch (the store down) is tried again with a backoff (proc/loop.py).
        self._loop = Loop("stepd-retention", self.step, what="retention batch")
        self._loop.start()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
