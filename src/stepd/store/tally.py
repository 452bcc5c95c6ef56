"""The counters and histograms of `GET /metrics` that count stored facts: events ingested
by source type, firings by result and how long after their event they made a task, tasks
finished by type and status and how long their last attempt ran.

They are read from the store, not counted in memory by the processes that make the facts:
the reactor, the local workers and Celery workers on other hosts all write to the store,
several servers may share it, and each must answer the same figures, across restarts.

Counting whole tables at every scrape would cost too much at 1,000,000 events, so a
`Tally` (one per server process) keeps what it has counted: the facts up to a *settled*
key (an event seq, a trigger id) are added up once, and a scrape counts only the rows
after it, a range of the primary key. On SQLite writers take turns, so a key is settled
as soon as it is read. On PostgreSQL a transaction that took a seq may commit after one
with a higher seq: a key is settled once it is `SETTLE_SECONDS` old (longer than any of
stepd's write transactions runs), and the rows after it are counted again at each scrape
until then. The first scrape of a server counts everything once (about a second at
1,000,000 events), then keeps up incrementally.

Label values are bounded: at most `MAX_LABEL_VALUES` task types and source types, in
order of first appearance (the same on every server); the rest count as `other`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from stepd.domain.tasks import TERMINAL
from stepd.store import dbapi, queries
from stepd.store.engine import Store

SETTLE_SECONDS = 60.0  # PostgreSQL: a key this old has no commit still to land below it
FIRST_MARGIN_KEYS = 10_000  # the first scrape leaves the newest keys unsettled (in flight)
MAX_LABEL_VALUES = 100  # distinct task types (and source types) with a label of their own
OTHER = "other"
NONE = "none"  # the label of events without a source type

# Bucket bounds in seconds: a task runs for seconds to hours; a firing follows its event
# within milliseconds, unless the reactor lags. Few of them: every bound is a line per task
# type (up to MAX_LABEL_VALUES) in each scrape.
TASK_SECONDS = (0.01, 0.1, 1, 10, 60, 300, 900, 1800, 3600, 7200, 21600)
FIRING_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300)

_Q = queries.load("metrics")


@dataclass
class Histogram:
    """Observations by bucket (not cumulative; the last bucket is +Inf) and their sum."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        i = 0
        while i < len(self.bounds) and value > self.bounds[i]:
            i += 1
        self.counts[i] += 1
        self.total += value

    def add(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total)


@dataclass
class Facts:
    """What the counted rows add up to."""

    events: dict[str, int] = field(default_factory=dict)  # by source type
    firings: dict[str, int] = field(default_factory=lambda: {"task": 0, "error": 0})
    event_to_task: Histogram = field(default_factory=lambda: Histogram(FIRING_SECONDS))
    finished: dict[tuple[str, str], int] = field(default_factory=dict)  # (type, status)
    durations: dict[str, Histogram] = field(default_factory=dict)  # by task type
    # the label values given so far, in order of first appearance (capped)
    source_types: list[str] = field(default_factory=list)
    task_types: list[str] = field(default_factory=list)

    def copy(self) -> Facts:
        return Facts(
            events=dict(self.events),
            firings=dict(self.firings),
            event_to_task=self.event_to_task.copy(),
            finished=dict(self.finished),
            durations={k: h.copy() for k, h in self.durations.items()},
            source_types=list(self.source_types),
            task_types=list(self.task_types),
        )


def _label(value: str, given: list[str]) -> str:
    """`value`'s label: itself while fewer than MAX_LABEL_VALUES were given, else other."""
    if value in given:
        return value
    if len(given) < MAX_LABEL_VALUES:
        given.append(value)
        return value
    return OTHER


def _seconds(later: object, earlier: object) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (dbapi.read_time(later) - dbapi.read_time(earlier)).total_seconds())


def count_events(r: dbapi.Raw, facts: Facts, after: int, upto: int) -> None:
    """Add the events, and the tasks they report finished, with keys in (after, upto]."""
    cur = dbapi.run(r, _Q["tally_events"], {"after": after, "upto": upto})
    rows = sorted(cur.fetchall(), key=lambda row: int(row[2]))
    cur.close()
    for source_type, n, _first in rows:
        label = _label(NONE if source_type is None else str(source_type), facts.source_types)
        facts.events[label] = facts.events.get(label, 0) + int(n)
    cur = dbapi.run(r, _Q["tally_finished"], {"after": after, "upto": upto})
    for params, started, finished in cur:
        p = json.loads(params)
        status = str(p.get("taskStatus"))
        if status not in _TERMINAL:
            continue
        task_type = _label(str(p.get("taskType")), facts.task_types)
        key = (task_type, status)
        facts.finished[key] = facts.finished.get(key, 0) + 1
        seconds = _seconds(finished, started)
        if seconds is not None:
            facts.durations.setdefault(task_type, Histogram(TASK_SECONDS)).observe(seconds)
    cur.close()


_TERMINAL = frozenset(s.value for s in TERMINAL)


def count_firings(r: dbapi.Raw, facts: Facts, after: int, upto: int) -> None:
    """Add the firings with trigger ids in (after, upto]."""
    cur = dbapi.run(r, _Q["tally_firings"], {"after": after, "upto": upto})
    for task_id, fired, event_created in cur:
        if task_id is None:
            facts.firings["error"] += 1
            continue
        facts.firings["task"] += 1
        seconds = _seconds(fired, event_created)
        if seconds is not None:
            facts.event_to_task.observe(seconds)
    cur.close()


@dataclass
class _Keys:
    """One key sequence (event seqs, trigger ids): how far it is settled, and the newest
    keys seen by recent scrapes, which settle once SETTLE_SECONDS old."""

    settled: int = 0
    started: bool = False
    seen: deque[tuple[float, int]] = field(default_factory=deque)

    def due(self, now: float, newest: int, settle_seconds: float) -> int:
        """The key to settle up to at this scrape (`settled` when none is due)."""
        if settle_seconds == 0:
            return newest
        if not self.started:
            # Only a commit still in flight can land below the newest key: leave a margin.
            self.started = True
            return max(self.settled, newest - FIRST_MARGIN_KEYS)
        due = self.settled
        while self.seen and self.seen[0][0] <= now - settle_seconds:
            due = max(due, self.seen.popleft()[1])
        return due


class Tally:
    """The counted facts of one store, kept up to date scrape by scrape (thread-safe)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.settle_seconds = 0.0 if store.writers_take_turns else SETTLE_SECONDS
        self._clock = clock
        self._base = Facts()  # everything up to the settled keys
        self._events = _Keys()
        self._triggers = _Keys()
        self._lock = threading.Lock()

    def read(self, r: dbapi.Raw, newest_event: int) -> Facts:
        """The facts as of `r`'s snapshot, whose newest event seq is `newest_event`."""
        (last_trigger,) = _one(r, "last_trigger")
        newest_trigger = 0 if last_trigger is None else int(str(last_trigger))
        with self._lock:
            now = self._clock()
            for keys, newest, count in (
                (self._events, newest_event, count_events),
                (self._triggers, newest_trigger, count_firings),
            ):
                due = keys.due(now, newest, self.settle_seconds)
                if due > keys.settled:
                    count(r, self._base, keys.settled, due)
                    keys.settled = due
                if newest > keys.settled:
                    keys.seen.append((now, newest))
            facts = self._base.copy()
            events_after, triggers_after = self._events.settled, self._triggers.settled
        # The unsettled rows: counted afresh, on top of a copy of the settled ones.
        if newest_event > events_after:
            count_events(r, facts, events_after, newest_event)
        if newest_trigger > triggers_after:
            count_firings(r, facts, triggers_after, newest_trigger)
        return facts


def _one(r: dbapi.Raw, name: str) -> tuple[object, ...]:
    cur = dbapi.run(r, _Q[name], {})
    row = cur.fetchone()
    cur.close()
    return tuple(row) if row is not None else (None,)
