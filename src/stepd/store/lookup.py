"""The reactor's reads and marks of events, and the matcher's view of stored events.

Everything here runs per evaluated event (or per reactor batch), so it runs on
the driver's cursor (`store.dbapi`): a SQLAlchemy statement would cost 20 to 30
times what SQLite spends executing it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from stepd.domain.events import MAX_SEQ
from stepd.domain.matching import SearchLimitReached
from stepd.domain.params import Params, param_text
from stepd.errors import StepdError
from stepd.store import dbapi, queries
from stepd.store.events import index_value

if TYPE_CHECKING:
    from stepd.settings import Settings

# How far to count when choosing the most selective param to lead a lookup with.
ESTIMATE_CAP = 1000
# A param known to match no more events than this leads a lookup without counting others.
RARE_ENOUGH = 32


class StoredEvent:
    """A stored event as the matcher sees it (a `MatchEvent`), straight from a row.

    The matcher reads thousands of these per second: a plain class with slots, and its
    time parsed only when something asks for it (a window, a template).
    """

    __slots__ = ("_created", "_raw_created", "name", "params", "seq")

    def __init__(self, seq: int, name: str, params: Params, created: object) -> None:
        self.seq = seq
        self.name = name
        self.params = params
        self._raw_created = created
        self._created: datetime | None = None

    @property
    def created(self) -> datetime:
        if self._created is None:
            self._created = dbapi.read_time(self._raw_created)
        return self._created

    def __repr__(self) -> str:
        return f"StoredEvent(seq={self.seq}, name={self.name!r}, params={self.params!r})"


_Q = queries.load("lookup")  # the statements, by name: sql/lookup.sql

NEWEST_PAGE = 16  # rows per page of `StoredEvents.newest`

Estimates = dict[tuple[str, str, str], int]


class ScanLimitReached(Exception):
    """A lookup under a `ScanBudget` would read more stored events than the budget allows."""


class ScanBudget:
    """How many stored events (rows) lookups may still read, shared by the lookups of one
    request: `POST /configs/test` tries up to 100 events, each with a lookup of its own,
    and must not read a store of millions for them. The reactor and stories give each
    evaluation one (see JoinBudget).

    `charge_estimates`: whether the index entries counted to choose a lookup's leading
    param count as read. A trial charges them; an evaluation under a JoinBudget does not,
    so that a legitimate config with many fixed, common params never fails on counting
    alone: a count reads at most ESTIMATE_CAP entries, is made once per value (and kept
    across a reactor's batches), and at most once per join step, which the step bound caps.
    """

    def __init__(self, rows: int, *, charge_estimates: bool = True) -> None:
        self.limit = rows
        self.used = 0
        self.charge_estimates = charge_estimates

    @property
    def left(self) -> int:
        """Rows that may still be read."""
        return max(self.limit - self.used, 0)

    def take(self, rows: int) -> None:
        """Count `rows` read; ScanLimitReached once more were read than the limit."""
        self.used += rows
        if self.used > self.limit:
            raise ScanLimitReached(f"more than {self.limit} stored events read")


DEFAULT_JOIN_ROWS = 10_000  # Settings.join_budget_rows
DEFAULT_JOIN_STEPS = 10_000  # Settings.join_budget_steps


class JoinTooLarge(StepdError):
    """One config's evaluation on one event went past its JoinBudget; the message says
    which bound, and how to fix the config."""


@dataclass(frozen=True, kw_only=True)
class JoinBudget:
    """What one evaluation of one config on one event may cost: stored events read by its
    lookups (`rows`) and partial bindings its join search tries (`steps`).

    Dependencies that share no free param join every stored event of one with every event
    of the others: 3 of 1,000 events each are 10^9 combinations, which would stall the
    reactor, and every user's events with it. A config whose dependencies share their free
    params (a join on `date`) reads a few events per event and never comes near the bounds;
    one dependency alone reads none (the trigger fills it).
    """

    rows: int = DEFAULT_JOIN_ROWS
    steps: int = DEFAULT_JOIN_STEPS

    @classmethod
    def of(cls, settings: Settings) -> JoinBudget:
        """The budget `settings` give (the reactor's and a story's are the same)."""
        return cls(rows=settings.join_budget_rows, steps=settings.join_budget_steps)

    def scan(self) -> ScanBudget:
        """A fresh row budget for one evaluation's lookups."""
        return ScanBudget(self.rows, charge_estimates=False)

    def exceeded(self, exc: ScanLimitReached | SearchLimitReached) -> JoinTooLarge:
        """The error an evaluation stopped by `exc` fails with."""
        why = (
            f"read more than {self.rows} stored events (join_budget_rows)"
            if isinstance(exc, ScanLimitReached)
            else f"tried more than {self.steps} combinations of events (join_budget_steps)"
        )
        return JoinTooLarge(
            f"the join is too large: evaluating this config on this event {why}. Its"
            " dependencies share no free param (or few), so every stored event of one is"
            " paired with every event of the others. Share a free param between the"
            ' dependencies (such as `date`: `"date": "~"` in each), or add a `window`'
            ' (such as `"window": "1d"`), so that each event joins with a few'
        )


class StoredEvents:
    """Prior events for one evaluation (the matcher's `EventLookup`).

    For the reactor, "prior" means already evaluated (PROCESSED): events are
    evaluated one at a time in order, so each firing is completed by exactly one
    event. For a story told later, it means created before the event and not
    rejected (`before_seq`).

    One instance serves every config evaluated for one event: nothing it reads
    changes meanwhile, so each distinct query runs once. `estimates` may be shared
    wider (a reactor's batches): they only choose which param leads a lookup.

    `batch`: the events a reactor evaluated earlier in its open batch, by name. They
    count as PROCESSED, though the store marks them so only when the batch ends.
    """

    def __init__(
        self,
        conn: dbapi.Conn,
        *,
        before_seq: int | None = None,
        estimates: Estimates | None = None,
        batch: Mapping[str, Sequence[StoredEvent]] | None = None,
        budget: ScanBudget | None = None,
    ) -> None:
        self.conn = dbapi.raw(conn)
        # None: unbounded. The reactor sets a fresh one for each config it evaluates.
        self.budget = budget
        self.before_seq = before_seq
        self.estimates: Estimates = {} if estimates is None else estimates
        self.batch: Mapping[str, Sequence[StoredEvent]] = {} if batch is None else batch
        self._found: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[StoredEvent, ...]] = {}

    def _prior(self, state: str) -> bool:
        """Whether an event in `state` counts (its seq is below `before_seq` already)."""
        return state != "REJECTED" if self.before_seq is not None else state == "PROCESSED"

    def _estimate(self, name: str, key: str, value: str) -> int:
        counted = self.estimates.get((name, key, value))
        if counted is None:
            cur = dbapi.run(
                self.conn,
                _Q["estimate"],
                {"name": name, "key": key, "value": value, "cap": ESTIMATE_CAP},
            )
            counted = int(cur.fetchone()[0])
            cur.close()
            if self.budget is not None and self.budget.charge_estimates:
                self.budget.take(counted)  # counting reads the index entries
            self.estimates[(name, key, value)] = counted
        return counted

    def _lead(self, name: str, items: list[tuple[str, str]]) -> None:
        """Put first the param to walk the index by: the rarest value.

        A value known (estimated before) to be rare enough leads without counting the
        others: walking a few index entries costs less than counting. Otherwise every
        value is counted (up to ESTIMATE_CAP): a join on `date` beats a scan of
        `taskType=X`. The order only changes the cost, never the result.
        """
        rare = [
            (counted, i)
            for i, (k, v) in enumerate(items)
            if (counted := self.estimates.get((name, k, v))) is not None and counted <= RARE_ENOUGH
        ]
        if rare:
            items.insert(0, items.pop(min(rare)[1]))
            return
        items.sort(key=lambda kv: self._estimate(name, kv[0], kv[1]))

    def find(self, name: str, equal: Mapping[str, str]) -> tuple[StoredEvent, ...]:
        items = [(key, index_value(value)) for key, value in equal.items()]
        query = (name, tuple(sorted(items)))
        found = self._found.get(query)
        if found is not None:
            return found
        if len(items) > 1:
            self._lead(name, items)
        below = MAX_SEQ if self.before_seq is None else self.before_seq - 1
        binds: dict[str, object] = {"name": name, "below": below}
        if items:
            binds["key"], binds["value"] = items[0]
        shape = "find_by_param" if items else "find_by_name"
        if self.budget is not None:
            # One row past the budget tells that it would be exceeded, without reading all.
            shape, binds["limit"] = f"{shape}_limited", self.budget.left + 1
        cur = dbapi.run(self.conn, _Q[shape], binds)
        rows = cur.fetchall()
        cur.close()
        if self.budget is not None:
            self.budget.take(len(rows))
        found = tuple(
            e
            for seq, row_name, params, created, state in rows
            if seq is not None and self._prior(state)
            for e in (StoredEvent(seq, row_name, json.loads(params), created),)
            if all(k in e.params and param_text(e.params[k]) == v for k, v in equal.items())
        )
        if self.batch.get(name):
            found += tuple(
                e
                for e in self.batch[name]
                if all(k in e.params and param_text(e.params[k]) == v for k, v in equal.items())
            )
        self._found[query] = found
        return found

    def newest(
        self, name: str, equal: Mapping[str, str], accept: Callable[[StoredEvent], bool]
    ) -> StoredEvent | None:
        """The newest event `find(name, equal)` would return that `accept`s, or None.

        Walks the index newest first, a page at a time: a join on `date` reads the
        newest event of that date, not every one the store ever kept.
        """
        best: StoredEvent | None = None
        for e in self.batch.get(name, ()):  # this batch's events, in memory
            if (
                (best is None or e.seq > best.seq)
                and all(k in e.params and param_text(e.params[k]) == v for k, v in equal.items())
                and accept(e)
            ):
                best = e
        items = [(key, index_value(value)) for key, value in equal.items()]
        if len(items) > 1:
            self._lead(name, items)
        # The statement walks one index (the leading param's, else the name's) and joins
        # each entry's event by its key, nothing else: the other params and the state are
        # checked here. Any other condition in SQL lets a planner without statistics (a
        # fresh PostgreSQL schema) join through the state index instead, reading every
        # PROCESSED event for each entry.
        query = _Q["newest_by_param" if items else "newest_by_name"]
        binds: dict[str, object] = {"name": name, "page": NEWEST_PAGE}
        if items:
            binds["key"], binds["value"] = items[0]
        below = MAX_SEQ if self.before_seq is None else self.before_seq - 1
        while best is None or below > best.seq:
            binds["below"] = below
            cur = dbapi.run(self.conn, query, binds)
            rows = cur.fetchall()
            cur.close()
            if self.budget is not None:
                self.budget.take(len(rows))
            for seq, row_name, params, created, state, _entry in rows:
                if seq is None or not self._prior(state):
                    continue
                e = StoredEvent(seq, row_name, json.loads(params), created)
                if all(
                    k in e.params and param_text(e.params[k]) == v for k, v in equal.items()
                ) and accept(e):
                    return e if best is None or e.seq > best.seq else best
            if len(rows) < NEWEST_PAGE:
                break
            below = rows[-1][5] - 1
        return best


# --------------------------------------------------------------------------- the reactor's batch


class NewRow:
    """A NEW event as the reactor's batch read it: decoded only as far as needed.

    Most events concern no config (by name) or no dependency (by params), so the
    params are decoded only for names some config waits for, and the event built
    only for those some dependency may want. A plain class: 200 per batch.
    """

    __slots__ = ("created", "name", "raw_params", "seq")

    def __init__(self, seq: int, name: str, raw_params: str, created: object) -> None:
        self.seq = seq
        self.name = name
        self.raw_params = raw_params
        self.created = created

    def params(self) -> Params:
        params: Params = json.loads(self.raw_params)
        return params

    def event(self, params: Params) -> StoredEvent:
        """The event, with `params` as `params()` decoded them."""
        return StoredEvent(self.seq, self.name, params, self.created)


def new_events(conn: dbapi.Conn, limit: int) -> list[NewRow]:
    """The oldest `limit` NEW events, in seq order (params left undecoded)."""
    cur = dbapi.run(conn, _Q["new_events"], {"limit": limit})
    rows = [NewRow(*row) for row in cur.fetchall()]
    cur.close()
    return rows


def newest_processed(conn: dbapi.Conn) -> int:
    """The highest seq of a PROCESSED event (0 when none): what the reactor evaluated last."""
    sqlite = dbapi.is_sqlite(conn)
    cur = dbapi.run(conn, _Q["newest_processed_sqlite" if sqlite else "newest_processed"])
    row = cur.fetchone()
    cur.close()
    return 0 if row is None or row[0] is None else int(row[0])


SEQ_CHUNK = 500  # seqs per IN list: a statement shape per length, at most this many


@functools.cache
def _seqs_in(n: int, what: str) -> queries.Query:
    """A statement over the events `:seq_0 .. :seq_{n-1}`: one Query per length."""
    seqs = ", ".join(f":seq_{i}" for i in range(n))
    if what == "mark":
        sql = f"UPDATE events SET state = 'PROCESSED' WHERE seq IN ({seqs}) AND state = 'NEW'"
    else:
        sql = f"SELECT 1 FROM events WHERE seq IN ({seqs}) AND state = 'REJECTED' LIMIT 1"
    return queries.Query(name=f"lookup.{what}_{n}", sql=sql)


def _seq_binds(seqs: Sequence[int]) -> dict[str, object]:
    return {f"seq_{i}": seq for i, seq in enumerate(seqs)}


def mark_processed(conn: dbapi.Conn, seqs: Sequence[int], *, whole_range: bool) -> None:
    """Mark a batch's NEW events PROCESSED (an event rejected meanwhile stays rejected).

    `whole_range`: the caller knows that `seqs` are every NEW event from the first to
    the last (SQLite, under its write lock), so one range update does it.
    """
    if whole_range and seqs:
        binds = {"first": seqs[0], "last": seqs[-1]}
        dbapi.run(conn, _Q["mark_range_processed"], binds).close()
        return
    for start in range(0, len(seqs), SEQ_CHUNK):
        chunk = seqs[start : start + SEQ_CHUNK]
        dbapi.run(conn, _seqs_in(len(chunk), "mark"), _seq_binds(chunk)).close()


def count_new(conn: dbapi.Conn, first: int, last: int) -> int:
    """How many events with a seq in [first, last] are NEW."""
    cur = dbapi.run(conn, _Q["count_new"], {"first": first, "last": last})
    (count,) = cur.fetchone()
    cur.close()
    return int(count)


def any_rejected(conn: dbapi.Conn, seqs: Sequence[int]) -> bool:
    """Whether any of the events `seqs` is REJECTED now."""
    for start in range(0, len(seqs), SEQ_CHUNK):
        chunk = seqs[start : start + SEQ_CHUNK]
        cur = dbapi.run(conn, _seqs_in(len(chunk), "rejected"), _seq_binds(chunk))
        found = cur.fetchone() is not None
        cur.close()
        if found:
            return True
    return False


def config_generation(conn: dbapi.Conn) -> int:
    """The configs' generation (as `store.configs.generation`), once per reactor batch."""
    cur = dbapi.run(conn, _Q["config_generation"])
    (generation,) = cur.fetchone()
    cur.close()
    return int(generation)
