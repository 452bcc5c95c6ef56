"""The schedules' ticks: a round every second emits the `schedule` event of each due tick.

Exactly once, across restarts and servers: each schedule's row holds its next tick, and a
round stores a tick's event and moves `next_tick` on in one transaction, from the value
it read, on a row other rounds skip meanwhile (store/schedules.py). A tick's event also
carries the request_id `schedule:<uid>:<tick>`, so that even a replayed round would get
the first event's id back rather than store a second one.

After downtime (no server ran the rounds) a schedule's latest `catch_up` due ticks are
emitted late, oldest first, and the older ones are skipped with a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from stepd.domain import schedules as rules
from stepd.domain.schedules import Due, Schedule
from stepd.errors import InvalidInput
from stepd.proc.loop import Loop
from stepd.services.events import EventBatch, EventService
from stepd.services.schedules import MAX_SCHEDULES
from stepd.store import schedules as schedule_store
from stepd.store.engine import Store
from stepd.timeutil import iso, utcnow

log = logging.getLogger(__name__)

SOURCE_TYPE = "schedule"


def fast_clock(speed: float, epoch: datetime) -> Callable[[], datetime]:
    """Testing only (STEPD_SCHEDULE_CLOCK_SPEED): a clock running `speed` times faster than
    the wall clock from `epoch` on, so that a test of real servers sees a minute's tick
    every few seconds; servers given the same epoch agree on the time."""

    def now() -> datetime:
        return epoch + (utcnow() - epoch) * speed

    return now


class _Moved(Exception):
    """The schedule's row changed under this round: roll its tick back, emit nothing."""


def tick_batch(schedule: Schedule, tick: datetime) -> EventBatch:
    """The event of one tick, with the request_id that makes it once."""
    return EventBatch(
        events=[{"name": rules.EVENT_NAME, "params": rules.tick_params(schedule.spec, tick)}],
        request_id=f"schedule:{schedule.uid}:{iso(tick)}",
        source_type=SOURCE_TYPE,
        source=schedule.name,
    )


@dataclass
class Scheduler:
    store: Store
    events: EventService
    interval_seconds: float = 1.0
    now: Callable[[], datetime] = utcnow  # tests pass a fake clock
    # The most overdue first; as many as a deployment may hold, so that a minute when
    # every schedule ticks is one round, not several seconds of them.
    due_per_round: int = MAX_SCHEDULES
    _loop: Loop | None = None

    def round(self, now: datetime) -> int:
        """Emit every tick due at `now`; return how many events this round stored."""
        with self.store.read() as conn:
            names = schedule_store.due_names(conn, now, self.due_per_round)
        emitted = sum(self._one(name, now) for name in names)
        if emitted:
            self.events.stored()
        return emitted

    def _one(self, name: str, now: datetime, *, emit: bool = True) -> int:
        """Schedule `name`'s due ticks, in one transaction; 0 when another round has it."""
        try:
            with self.store.write() as conn:
                schedule = schedule_store.take_due(conn, name, now)
                if schedule is None:
                    return 0  # not due any more, or another server's round holds it
                due = rules.due(schedule.spec, schedule.next_tick, now)
                ticks = due.ticks if emit else []
                for tick in ticks:
                    self.events.submit_in(conn, tick_batch(schedule, tick), author=schedule.author)
                last = ticks[-1] if ticks else None  # a skipped tick was not emitted
                if not schedule_store.advance(conn, schedule, due.next_tick, last):
                    raise _Moved
        except (_Moved, IntegrityError):
            # Moved: the row changed under this round. IntegrityError: the tick's request_id
            # is taken, another round stored it (the row lock makes this all but impossible).
            return 0
        except InvalidInput as exc:
            if not emit:
                raise
            # A tick's event was refused (an event description of `schedule` that asks for
            # other fields): skip the tick rather than retry it every second forever.
            log.error("schedule %s: its tick was refused and skipped: %s", name, exc.message)
            return self._one(name, now, emit=False)
        _log_skipped(schedule, due)
        return len(ticks)

    def start(self) -> None:
        # A failed round (the store down) is tried again with a backoff (proc/loop.py).
        self._loop = Loop("stepd-schedules", self._round_now, what="round")
        self._loop.start()

    def _round_now(self) -> float:
        self.round(self.now())
        return self.interval_seconds

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop(5, reason="the server is stopping")


def _log_skipped(schedule: Schedule, due: Due) -> None:
    if due.skipped is not None:
        first, last = due.skipped
        log.warning(
            "schedule %s: skipped its ticks from %s to %s, missed while no server ran "
            "(catch_up %d: only the latest are emitted late)",
            schedule.name,
            iso(first),
            iso(last),
            schedule.spec.catch_up,
        )
