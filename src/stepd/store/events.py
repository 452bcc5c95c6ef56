"""Store functions for events; each takes the caller's connection (the caller owns it)."""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    Select,
    TextClause,
    TextualSelect,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from stepd.domain.events import Event, EventState, Source
from stepd.domain.params import Params, param_text
from stepd.store import dbapi, queries
from stepd.store.notify import notify_events
from stepd.store.schema import event_params, event_requests, event_sources, events, triggers
from stepd.timeutil import as_utc, utcnow

# Values longer than this are indexed by their hash: equality lookups stay exact
# and the index entry stays within PostgreSQL's b-tree row limit.
MAX_INDEXED_VALUE = 200


def index_value(text: str) -> str:
    """The form of a param's canonical text kept in the param index."""
    if len(text) <= MAX_INDEXED_VALUE:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    """An event about to be stored."""

    name: str
    params: Params
    created: datetime
    author: str | None = None
    request_id: str | None = None
    source_type: str | None = None
    source: Source | None = None
    state: EventState = EventState.NEW


def serialise_with_event_inserts(conn: Connection) -> None:
    """Order the caller's write transaction after every transaction storing events, and
    before the next ones (they wait for it): a check of the events it then reads cannot
    miss a batch committed meanwhile.

    PostgreSQL: LOCK TABLE events IN SHARE MODE, which conflicts with the ROW EXCLUSIVE
    lock every INSERT takes anyway: storing events pays nothing for it, and waits only
    while the caller's (rare) transaction lasts. SQLite needs nothing: its writers take
    turns.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {events.name} IN SHARE MODE")


def insert_events(conn: Connection, new: Sequence[NewEvent]) -> list[int]:
    """Store `new` (and its param index rows); return their seqs in order."""
    seqs: list[int] = []
    # One insert per run of events that share their other fields (usually the whole batch).
    start = 0
    for end in range(1, len(new) + 1):
        if end < len(new) and _shared(new[end]) == _shared(new[start]):
            continue
        e = new[start]
        seqs += insert_rows(
            conn,
            [event_row(x.name, x.params) for x in new[start:end]],
            created=e.created,
            author=e.author,
            request_id=e.request_id,
            source_type=e.source_type,
            source=e.source,
            state=e.state,
        )
        start = end
    return seqs


def _shared(e: NewEvent) -> tuple[object, ...]:
    return (e.created, e.author, e.request_id, e.source_type, e.source, e.state)


# Built once: json.dumps with options builds an encoder on every call.
_PARAMS_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def params_json(params: Params) -> str:
    """The stored text of an event's params: compact JSON, non-ASCII kept as is.

    orjson writes a map of scalars exactly as the json module does, several times
    faster; what it refuses (an integer beyond 64 bits) goes to the json module.
    """
    try:
        return orjson.dumps(params).decode()
    except orjson.JSONEncodeError:
        return _PARAMS_ENCODER.encode(params)


EventRow = tuple[str, str, list[tuple[str, str]]]
"""An event ready to store: (name, params JSON, [(key, param_text) of each non-null param])."""


def event_row(name: str, params: Params, texts: list[tuple[str, str]] | None = None) -> EventRow:
    """The row of an event; `texts` are its params' (key, param_text) when already known."""
    if texts is None:
        texts = [(k, t) for k, v in params.items() if (t := param_text(v)) is not None]
    return (name, params_json(params), texts)


class StoreClock(enum.Enum):
    """`created=STORE_NOW`: the events are stamped by the store's clock, not the caller's."""

    NOW = "now"


# Join windows compare events' `created`, so events stored by different hosts must be
# stamped by one clock. PostgreSQL's: `statement_timestamp()`, evaluated in the INSERT
# itself (no round trip, one time for the whole batch, as a host's `now` was). SQLite
# lives on one machine, so every process that writes it shares that host's clock.
STORE_NOW = StoreClock.NOW


def insert_rows(
    conn: Connection,
    rows: Sequence[EventRow],
    *,
    created: datetime | StoreClock,
    author: str | None,
    request_id: str | None = None,
    source_type: str | None = None,
    source: Source | None = None,
    state: EventState = EventState.NEW,
    group: EventGroup | None = None,
) -> Sequence[int]:
    """Store events that share every field but name and params; return their seqs in order.

    On SQLite with a `group`, the rows join the group, written when it is flushed.
    """
    if not rows:
        return []
    sqlite = conn.dialect.name == "sqlite"
    at = utcnow() if created is STORE_NOW and sqlite else created
    fields: _Shared = (at, author, request_id, source_type, source, state)
    if not sqlite:
        stored = _insert_generic(conn, rows, fields)
        notify_events(conn)
        return stored
    if group is not None:
        return group.add(rows, fields)
    alone = EventGroup(conn)
    seqs = alone.add(rows, fields)
    alone.flush()
    return seqs


_Shared = tuple[
    datetime | StoreClock, str | None, str | None, str | None, Source | None, EventState
]


def source_columns(source: Source | None) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """(the `source` column, the `source_object` column, the event_sources (key, value)
    rows) of a batch's source: a string stays in `source`; an object is kept as its JSON
    (see migration 0008) and its non-null scalars indexed as params are."""
    if source is None or isinstance(source, str):
        return source, None, []
    index = [
        (key, index_value(text))
        for key, value in source.items()
        if (text := param_text(value)) is not None
    ]
    return None, params_json(source), index


_Q = queries.load("events")  # the SQLite writer's statements, by name: sql/events.sql


def sqlite_rows_sql(query: queries.Query, columns: tuple[str, ...]) -> str:
    """`query` for sqlite3, checked to bind exactly `columns` in that order: rows of an
    executemany may then be tuples of those columns.

    The writer's rows are tuples: a mapping per row (bound by name at each execution)
    makes a batch of 100 events 8 to 15% slower to write (measured, issue 14). The
    check, run once at import, keeps a statement and its rows from drifting apart.
    """
    compiled = query.compiled(True)
    if compiled.order != columns:
        raise ValueError(f"{query.name} binds {compiled.order}, its rows hold {columns}")
    return compiled.sql


_EVENT_ROW = (
    "seq",
    "name",
    "params",
    "state",
    "created",
    "author",
    "request_id",
    "source_type",
    "source",
    "source_object",
)
_PARAM_ROW = ("name", "key", "value", "event_seq")
_SOURCE_ROW = ("key", "value", "event_seq")
_INSERT_EVENTS = sqlite_rows_sql(_Q["insert_event"], _EVENT_ROW)
_INSERT_PARAMS = sqlite_rows_sql(_Q["insert_param"], _PARAM_ROW)
_INSERT_SOURCES = sqlite_rows_sql(_Q["insert_source"], _SOURCE_ROW)


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime reads back: UTC, without an offset.
    return as_utc(value).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class EventGroup:
    """SQLite: events of one or more submissions in the caller's write transaction,
    written with one executemany per table by `flush`.

    Seqs are handed out as rows are added, so a submission knows its ids (and can
    record its request_id) before anything is written: the caller holds SQLite's
    write lock (BEGIN IMMEDIATE), so no other writer can take a seq meanwhile, and an
    explicit seq above the largest one updates sqlite_sequence as AUTOINCREMENT would.
    `flush` must run before the transaction commits (and before anything in it reads
    the events it holds).
    """

    def __init__(self, conn: Connection) -> None:
        self._db = dbapi.Raw(conn)
        self._next: int | None = None
        # rows as tuples of _EVENT_ROW, _PARAM_ROW and _SOURCE_ROW (see sqlite_rows_sql)
        self._events: list[tuple[object, ...]] = []
        self._params: list[tuple[str, str, str, int]] = []
        self._sources: list[tuple[str, str, int]] = []

    def add(self, rows: Sequence[EventRow], fields: _Shared) -> range:
        if self._next is None:
            cur = dbapi.run(self._db, _Q["next_seq_sqlite"])
            self._next = int(cur.fetchone()[0])
            cur.close()
        first = self._next
        self._next = first + len(rows)
        created, author, request_id, source_type, source, state = fields
        assert isinstance(created, datetime)  # insert_rows resolves STORE_NOW on SQLite
        source_text, source_object, source_index = source_columns(source)
        stamp = _sqlite_time(created)
        state_text = state.value
        # Comprehensions: a batch of 1,000 events has up to 100,000 index rows.
        self._events += [
            (
                seq,
                name,
                params_text,
                state_text,
                stamp,
                author,
                request_id,
                source_type,
                source_text,
                source_object,
            )
            for seq, (name, params_text, _texts) in enumerate(rows, first)
        ]
        if source_index:
            self._sources += [
                (key, value, seq) for seq in range(first, self._next) for key, value in source_index
            ]
        self._params += [
            (name, key, text if len(text) <= MAX_INDEXED_VALUE else index_value(text), seq)
            for seq, (name, _params_text, texts) in enumerate(rows, first)
            for key, text in texts
        ]
        return range(first, self._next)

    def flush(self) -> None:
        """Write what was added (and forget it)."""
        if self._events:
            self._db.driver.executemany(_INSERT_EVENTS, self._events)
            self._events = []
        if self._params:
            self._db.driver.executemany(_INSERT_PARAMS, self._params)
            self._params = []
        if self._sources:
            self._db.driver.executemany(_INSERT_SOURCES, self._sources)
            self._sources = []


# Built once: building and hashing a statement costs more than a one-event INSERT's wait.
_INSERT = insert(events).returning(events.c.seq, sort_by_parameter_order=True)
_INSERT_STAMPED = (
    insert(events)
    .values(created=func.statement_timestamp())
    .returning(events.c.seq, sort_by_parameter_order=True)
)


def _insert_generic(conn: Connection, rows: Sequence[EventRow], fields: _Shared) -> list[int]:
    created, author, request_id, source_type, source, state = fields
    source_text, source_object, source_index = source_columns(source)
    shared: dict[str, object] = {} if created is STORE_NOW else {"created": created}
    values = [
        {
            "name": name,
            "params": params_text,
            "state": state.value,
            **shared,
            "author": author,
            "request_id": request_id,
            "source_type": source_type,
            "source": source_text,
            "source_object": source_object,
        }
        for name, params_text, _index in rows
    ]
    stmt = _INSERT_STAMPED if created is STORE_NOW else _INSERT
    result = conn.execute(stmt, values)
    seqs = [int(row[0]) for row in result]
    index_rows = [
        {"name": name, "key": key, "value": index_value(text), "event_seq": seq}
        for (name, _params_text, texts), seq in zip(rows, seqs, strict=True)
        for key, text in texts
    ]
    if index_rows:
        conn.execute(insert(event_params), index_rows)
    if source_index:
        conn.execute(
            insert(event_sources),
            [{"key": k, "value": v, "event_seq": seq} for seq in seqs for k, v in source_index],
        )
    return seqs


def row_to_event(row: Row[Any] | Mapping[Any, Any]) -> Event:
    m = row._mapping if isinstance(row, Row) else row
    return Event(
        seq=int(m["seq"]),
        name=str(m["name"]),
        params=json.loads(str(m["params"])),
        state=EventState(m["state"]),
        created=as_utc(m["created"]),
        author=m["author"],
        request_id=m["request_id"],
        source_type=m["source_type"],
        # A row stores one or the other (migration 0008); old rows only `source`.
        source=m["source"] if m["source_object"] is None else json.loads(m["source_object"]),
    )


def get_event(conn: Connection, seq: int) -> Event | None:
    row = conn.execute(select(events).where(events.c.seq == seq)).first()
    return None if row is None else row_to_event(row)


def name_seen(conn: Connection, name: str) -> bool:
    """Whether any event of `name` was ever stored: one probe of `ix_events_name_seq`."""
    stmt = select(events.c.seq).where(events.c.name == name).limit(1)
    return conn.execute(stmt).first() is not None


def get_events(conn: Connection, seqs: Iterable[int]) -> dict[int, Event]:
    wanted = sorted(set(seqs))
    found: dict[int, Event] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in conn.execute(select(events).where(events.c.seq.in_(chunk))):
            event = row_to_event(row)
            found[event.seq] = event
    return found


@dataclass(frozen=True, kw_only=True)
class EventQuery:
    """A filter over stored events, as `GET /api/v1/events` takes it."""

    name: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)  # key -> canonical text
    source: Mapping[str, str] = field(default_factory=dict)  # an object source's key -> text
    state: EventState | None = None
    skip: int = 0
    limit: int = 30
    newest_first: bool = False
    since: datetime | None = None  # stored at or after (aware UTC)
    until: datetime | None = None  # stored before
    # Not events of these names (the UI's list leaves out the clock's and the schedules'
    # unless asked): only with neither a name nor params, the plain walk along the seqs.
    exclude_names: tuple[str, ...] = ()
    # Only events whose firings made a task (`GET /api/v1/events?fired=true`).
    fired: bool = False


# How far out of order (a server's clock behind another's) an event's time may be and
# still be found by a time range: the seq range is widened by this much at both ends.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class _Span:
    """The seqs [lo, hi) of the events stored in [since, until): events are numbered in
    the order they are stored, so a time range is a seq range, found by bisecting the
    primary key (no index on `created` to pay for at every insert), widened by
    CLOCK_SKEW_ALLOWANCE. The times are also checked on each row, so nothing outside the
    range asked for is ever shown."""

    lo: int
    hi: int
    since: datetime
    until: datetime

    def binds(self) -> dict[str, object]:
        return {"lo": self.lo, "hi": self.hi, "since": self.since, "until": self.until}


# Before and after every stored time, with room for the allowance either side.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _first_seq_at(conn: Connection, when: datetime, lo: int, hi: int) -> int:
    """The least x in [lo, hi] such that no event with seq >= x was stored before `when`
    (the first such event's time decides, events being numbered in storing order)."""
    while lo < hi:
        mid = (lo + hi) // 2
        created = conn.execute(
            select(events.c.created).where(events.c.seq >= mid).order_by(events.c.seq).limit(1)
        ).scalar()
        if created is None or as_utc(created) >= when:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _span(conn: Connection, q: EventQuery) -> _Span | None:
    """`q`'s time range as a seq range (None: `q` has no time range)."""
    if q.since is None and q.until is None:
        return None
    first, last = conn.execute(select(func.min(events.c.seq), func.max(events.c.seq))).one()
    if first is None:
        return _Span(lo=1, hi=1, since=_EARLIEST, until=_LATEST)
    lo, hi = int(first), int(last) + 1
    since, until = q.since or _EARLIEST, q.until or _LATEST
    if q.since is not None:
        lo = _first_seq_at(conn, max(q.since, _EARLIEST) - CLOCK_SKEW_ALLOWANCE, lo, hi)
    if q.until is not None:
        hi = _first_seq_at(conn, min(q.until, _LATEST) + CLOCK_SKEW_ALLOWANCE, lo, hi)
    return _Span(lo=lo, hi=hi, since=since, until=until)


# The conditions of a span on a statement's event seq and created columns.
def _span_sql(seq_col: str, created_col: str) -> list[str]:
    return [
        f"{seq_col} >= :lo",
        f"{seq_col} < :hi",
        f"{created_col} >= :since",
        f"{created_col} < :until",
    ]


def _typed(stmt: TextClause) -> TextClause:
    # The times bound as the column stores them (SQLite: text in a fixed format).
    return stmt.bindparams(
        bindparam("since", type_=events.c.created.type),
        bindparam("until", type_=events.c.created.type),
    )


def _param_match(key: str, value: str, name_col: Any, seq_col: Any) -> Exists:
    """`value`: the param's index_value."""
    p = event_params.alias()
    return exists().where(
        and_(
            p.c.name == name_col,
            p.c.key == key,
            p.c.value == value,
            p.c.event_seq == seq_col,
        )
    )


_EVENT_COLUMNS = (
    "e.seq, e.name, e.params, e.state, e.created, e.author, e.request_id, e.source_type,"
    " e.source, e.source_object"
)


_EVENT_TYPES = (
    events.c.seq,
    events.c.name,
    events.c.params,
    events.c.state,
    events.c.created,
    events.c.author,
    events.c.request_id,
    events.c.source_type,
    events.c.source,
    events.c.source_object,
)


@functools.cache
def _by_param_statement(
    n_params: int, with_state: bool, newest_first: bool, spanned: bool = False
) -> TextualSelect:
    """Events of a name with params: walk the param index from one end, stop at the limit.

    SQLite runs each EXISTS as a subquery per index entry (its planner does not turn
    them into joins), so the cost grows with the number of filters, not faster.
    """
    where = ["p.name = :name", "p.key = :k0", "p.value = :v0"]
    where += [
        f"EXISTS (SELECT 1 FROM event_params q{i} WHERE q{i}.name = :name AND q{i}.key = :k{i}"
        f" AND q{i}.value = :v{i} AND q{i}.event_seq = p.event_seq)"
        for i in range(1, n_params)
    ]
    return _walk_param_index(where, with_state, newest_first, spanned)


def _walk_param_index(
    where: list[str], with_state: bool, newest_first: bool, spanned: bool
) -> TextualSelect:
    """Events along the first filter's param index entries `p`, in seq order, where
    `where` holds (and the state, with `with_state`; inside a _Span, with `spanned`)."""
    if with_state:
        where = [*where, "e.state = :state"]
    if spanned:  # (the seq bounds narrow the index range walked)
        where = [*where, *_span_sql("p.event_seq", "e.created")]
    order = "DESC" if newest_first else "ASC"
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM event_params p JOIN events e ON e.seq = p.event_seq"
        f" WHERE {' AND '.join(where)} ORDER BY p.event_seq {order} LIMIT :limit OFFSET :skip"
    )
    stmt = text(sql)
    return (_typed(stmt) if spanned else stmt).columns(*_EVENT_TYPES)


# PostgreSQL turns each EXISTS above into a semi-join and searches the orders of joining
# them: time exponential in the number of filters (80 filters: over 100 s on 58 events).
# There each other filter is a scalar subquery instead: PostgreSQL never pulls one up into
# a join, so the plan joins two tables whatever the number of filters, and each filter is
# a subplan with one possible plan, a probe of the whole primary key (name, key, value,
# seq), run per candidate until one fails. (One count(*) over all the filters would let
# the planner scan every entry of the name per candidate: it did, on a fresh schema.)


def _has_params(first: int, n_params: int, seq_col: str, name_col: str) -> list[str]:
    """Conditions that the event `seq_col` has the params k{first}..k{n_params-1}."""
    return [
        f"(SELECT 1 FROM event_params q{i} WHERE q{i}.name = {name_col} AND q{i}.key = :k{i}"
        f" AND q{i}.value = :v{i} AND q{i}.event_seq = {seq_col}) IS NOT NULL"
        for i in range(first, n_params)
    ]


@functools.cache
def _by_param_probed(
    n_params: int, with_state: bool, newest_first: bool, spanned: bool
) -> TextualSelect:
    """`_by_param_statement` for PostgreSQL: k0 leads, the others are probed per entry."""
    where = ["p.name = :name", "p.key = :k0", "p.value = :v0"]
    where += _has_params(1, n_params, "p.event_seq", "p.name")
    return _walk_param_index(where, with_state, newest_first, spanned)


@functools.cache
def _any_name_probed(
    n_params: int, with_state: bool, newest_first: bool, spanned: bool
) -> TextualSelect:
    """PostgreSQL, params without a name: each event in seq order, its params probed."""
    where = _has_params(0, n_params, "e.seq", "e.name")
    if with_state:
        where.append("e.state = :state")
    if spanned:
        where += _span_sql("e.seq", "e.created")
    order = "DESC" if newest_first else "ASC"
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM events e"
        f" WHERE {' AND '.join(where)} ORDER BY e.seq {order} LIMIT :limit OFFSET :skip"
    )
    stmt = text(sql)
    return (_typed(stmt) if spanned else stmt).columns(*_EVENT_TYPES)


# How far to count a filter's index entries when choosing the one to lead with.
LEAD_ESTIMATE_CAP = 1000


@functools.cache
def _estimates_statement(n_params: int) -> TextClause:
    """Each filter's index entries, counted up to the cap: one row, one column per filter."""
    counts = ", ".join(
        f"(SELECT count(*) FROM (SELECT 1 FROM event_params WHERE name = :name"
        f" AND key = :k{i} AND value = :v{i} LIMIT :cap) AS s{i})"
        for i in range(n_params)
    )
    return text(f"SELECT {counts}")


def _rarest_first(conn: Connection, name: str, items: list[tuple[str, str]]) -> None:
    """Put first the filter with the fewest index entries: the range the query walks."""
    binds: dict[str, object] = {"name": name, "cap": LEAD_ESTIMATE_CAP}
    for i, (key, value) in enumerate(items):
        binds[f"k{i}"], binds[f"v{i}"] = key, value
    row = conn.execute(_estimates_statement(len(items)), binds).one()
    rarest = min(range(len(items)), key=lambda i: int(row[i]))
    items.insert(0, items.pop(rarest))


def query_events(conn: Connection, q: EventQuery) -> list[Event]:
    """Events matching `q`, in seq order (or newest first).

    With a name and a param filter the query walks the param index backwards
    (or forwards) and stops after `skip + limit` rows, so its cost does not grow
    with the number of stored events; on PostgreSQL the rarest filter's entries are
    walked. On both stores the cost grows linearly with the number of filters.
    """
    stmt: Select[tuple[object, ...]]
    items = list(q.params.items())
    span = _span(conn, q)
    if span is not None and span.lo >= span.hi:
        return []  # nothing was stored in that time
    if q.source:
        return _query_by_source(conn, q, span)
    if len(items) > 1 and conn.dialect.name != "sqlite" and not q.fired:
        return _query_postgres(conn, q, items, span)
    if q.name is not None and items and not q.fired:
        # The hot shape (the original's own curl): one prepared statement per shape.
        binds: dict[str, object] = {"name": q.name, "skip": q.skip, "limit": q.limit}
        for i, (key, text) in enumerate(items):
            binds[f"k{i}"], binds[f"v{i}"] = key, index_value(text)
        if q.state is not None:
            binds["state"] = q.state.value
        if span is not None:
            binds.update(span.binds())
        shape = _by_param_statement(
            len(items), q.state is not None, q.newest_first, span is not None
        )
        return [row_to_event(row) for row in conn.execute(shape, binds)]
    else:
        stmt = select(events)
        order_col = events.c.seq
        if q.name is not None:
            stmt = stmt.where(events.c.name == q.name)
        for key, text in items:
            stmt = stmt.where(_param_match(key, index_value(text), events.c.name, events.c.seq))
        if q.exclude_names and q.name is None and not items:
            stmt = stmt.where(events.c.name.not_in(q.exclude_names))
        if q.fired:
            stmt = stmt.where(_fired(events.c.seq))
    stmt = _in_span(stmt, span, events.c.seq)
    if q.state is not None:
        stmt = stmt.where(events.c.state == q.state.value)
    stmt = stmt.order_by(order_col.desc() if q.newest_first else order_col.asc())
    stmt = stmt.offset(q.skip).limit(q.limit)
    return [row_to_event(row) for row in conn.execute(stmt)]


def _fired(seq_col: Any) -> ColumnElement[bool]:
    """The events whose firings made a task. An IN list of the triggers' event seqs: both
    stores read it once, sorted, and walk the events by primary key in that order, so the
    cost is one read of the triggers (as many as the tasks firings made, which retention
    bounds) and none per event skipped, however sparse the fired events are among the rest
    (a correlated EXISTS walked every event newer than the page)."""
    made = select(triggers.c.event_seq).where(triggers.c.task_id.is_not(None))
    found: ColumnElement[bool] = seq_col.in_(made)
    return found


def _in_span(
    stmt: Select[tuple[object, ...]], span: _Span | None, seq_col: Any
) -> Select[tuple[object, ...]]:
    if span is None:
        return stmt
    return stmt.where(
        seq_col >= span.lo,
        seq_col < span.hi,
        events.c.created >= span.since,
        events.c.created < span.until,
    )


def _query_by_source(conn: Connection, q: EventQuery, span: _Span | None) -> list[Event]:
    """Events whose object source has every `q.source` value (and the rest of `q`).

    Driven by the event_sources index on the first of them: the rows read are those of
    the events sent with that source value (a task's few reports, say), whatever the
    size of the store; every other filter is checked on those rows by its index.
    """
    (key, text), *rest = q.source.items()
    s = event_sources.alias("s")
    stmt = (
        select(events)
        .select_from(s.join(events, events.c.seq == s.c.event_seq))
        .where(s.c.key == key, s.c.value == index_value(text))
    )
    for other_key, other_text in rest:
        o = event_sources.alias()
        stmt = stmt.where(
            exists().where(
                o.c.key == other_key,
                o.c.value == index_value(other_text),
                o.c.event_seq == s.c.event_seq,
            )
        )
    if q.name is not None:
        stmt = stmt.where(events.c.name == q.name)
    for param_key, param_value in q.params.items():
        stmt = stmt.where(_param_match(param_key, param_value, events.c.name, events.c.seq))
    if q.state is not None:
        stmt = stmt.where(events.c.state == q.state.value)
    if q.fired:
        stmt = stmt.where(_fired(s.c.event_seq))
    stmt = _in_span(stmt, span, s.c.event_seq)
    order = s.c.event_seq.desc() if q.newest_first else s.c.event_seq.asc()
    stmt = stmt.order_by(order).offset(q.skip).limit(q.limit)
    return [row_to_event(row) for row in conn.execute(stmt)]


def _query_postgres(
    conn: Connection, q: EventQuery, given: list[tuple[str, str]], span: _Span | None
) -> list[Event]:
    """`query_events` with two or more param filters on PostgreSQL (see _has_params)."""
    items = [(key, index_value(text)) for key, text in given]
    binds: dict[str, object] = {"skip": q.skip, "limit": q.limit}
    if q.state is not None:
        binds["state"] = q.state.value
    if span is not None:
        binds.update(span.binds())
    shape_of = (len(items), q.state is not None, q.newest_first, span is not None)
    if q.name is not None:
        binds["name"] = q.name
        _rarest_first(conn, q.name, items)
        shape = _by_param_probed(*shape_of)
    else:
        shape = _any_name_probed(*shape_of)
    for i, (key, value) in enumerate(items):
        binds[f"k{i}"], binds[f"v{i}"] = key, value
    return [row_to_event(row) for row in conn.execute(shape, binds)]


def set_state(
    conn: Connection, seq: int, state: EventState, *, only_from: EventState | None = None
) -> bool:
    """Move an event to `state` (with `only_from`, only an event in that state)."""
    stmt = update(events).where(events.c.seq == seq)
    if only_from is not None:
        stmt = stmt.where(events.c.state == only_from.value)
    return conn.execute(stmt.values(state=state.value)).rowcount > 0


def find_request(conn: Connection, request_id: str) -> tuple[list[str], str] | None:
    """(the ids a request_id got when it was first seen, the digest of what was sent), or None."""
    if conn.dialect.name == "sqlite":
        cur = dbapi.run(conn, _Q["find_request"], {"request_id": request_id})
        row = cur.fetchone()
        cur.close()
    else:
        row = conn.execute(
            select(event_requests.c.event_ids, event_requests.c.digest).where(
                event_requests.c.request_id == request_id
            )
        ).first()
    return None if row is None else (list(json.loads(row[0])), str(row[1]))


def record_request(
    conn: Connection, request_id: str, ids: Sequence[str], digest: str, created: datetime
) -> None:
    event_ids = json.dumps(list(ids))
    if conn.dialect.name == "sqlite":
        query = _Q["record_request"]
        binds = {
            "request_id": request_id,
            "event_ids": event_ids,
            "digest": digest,
            "created": _sqlite_time(created),
        }
        try:
            dbapi.run(conn, query, binds).close()
        except sqlite3.IntegrityError as exc:  # as SQLAlchemy would raise it: callers catch that
            raise IntegrityError(query.compiled(True).sql, None, exc) from exc
        return
    conn.execute(
        insert(event_requests).values(
            request_id=request_id, event_ids=event_ids, digest=digest, created=created
        )
    )
