"""Accepting, querying and rejecting events."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stepd.domain.events import (
    Event,
    EventState,
    ParamsProblem,
    Source,
    format_event_ids,
    name_problem,
    param_texts,
    parse_event_id,
    source_texts,
)
from stepd.domain.params import Params
from stepd.errors import Conflict, InvalidInput, NotFound
from stepd.services import authz
from stepd.services.event_descs import DescCache
from stepd.store import events as event_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.events import EventGroup, EventRow
from stepd.store.tokens import Principal
from stepd.store.writer import Writer
from stepd.timeutil import utcnow

MAX_REQUEST_ID_LENGTH = 200
# params__ filters one GET /events may combine: each costs an index probe per candidate.
MAX_PARAM_FILTERS = 20


@dataclass(frozen=True, kw_only=True)
class EventBatch:
    """What a client submits in one `POST /api/v1/events`."""

    events: Sequence[object]  # raw [{name, params}], validated by `submit`
    request_id: str | None = None
    source_type: str | None = None
    source: Source | None = None  # raw: checked by `submit` (a string or a flat object)


_EVENT_FIELDS = frozenset(("name", "params"))
# Names that passed name_problem: a batch repeats a few names, and the check (a regex)
# costs more than the set lookup. Bounded, and cleared when full.
_GOOD_NAMES: set[str] = set()


def _validate_one(raw: object, index: int) -> tuple[str, Params, EventRow]:
    """An event of a submitted batch, checked: (name, params, the row to store)."""
    if not isinstance(raw, dict):
        where = f"events[{index}]"
        raise InvalidInput(f"{where} must be an object with name and params", field=where)
    if not _EVENT_FIELDS.issuperset(raw):
        where = f"events[{index}]"
        unknown = sorted(set(raw) - _EVENT_FIELDS)
        raise InvalidInput(
            f"{where} has unknown fields {unknown}: an event is {{name, params}}", field=where
        )
    name = raw.get("name")
    if type(name) is not str or name not in _GOOD_NAMES:
        if (problem := name_problem(name)) is not None:
            raise InvalidInput(f"events[{index}]: {problem}", field=f"events[{index}].name")
        assert isinstance(name, str)
        if len(_GOOD_NAMES) >= 10_000:
            _GOOD_NAMES.clear()
        _GOOD_NAMES.add(name)
    params = raw.get("params")
    if params is None:
        params = {}
    try:
        texts = param_texts(params)
    except ParamsProblem as exc:
        raise InvalidInput(f"events[{index}]: {exc}", field=f"events[{index}].params") from None
    return name, params, event_store.event_row(name, params, texts)


def _check_text(value: object, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{what} must be a string of at most {limit} characters", field=what)
    return value


def _check_source(value: object) -> Source | None:
    if value is None:
        return None
    try:
        source_texts(value)
    except ParamsProblem as exc:
        raise InvalidInput(str(exc), field="source") from None
    return value  # type: ignore[return-value]  # source_texts refuses anything else


def _digest(
    valid: list[tuple[str, Params, EventRow]],
    author: str | None,
    source_type: str | None,
    source: Source | None,
) -> str:
    """What a request sent, so that a request_id reused for something else is caught."""
    body = [author, source_type, source, [[name, params] for name, params, _row in valid]]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _same_request(request_id: str, seen: tuple[list[str], str], digest: str) -> list[str]:
    ids, first_digest = seen
    # A digest of "" predates digests: trust the request_id alone, as before.
    if first_digest and first_digest != digest:
        raise Conflict(
            f"request_id {request_id!r} was already used for other events (or by another user); "
            "a retry must resend the same batch, and a new batch needs a new request_id",
            field="request_id",
        )
    return ids


@dataclass(frozen=True)
class _Plan:
    # The checks and writes, in the caller's write transaction; on SQLite the events may
    # join an EventGroup (the writer thread's), written when the group is flushed.
    write: Callable[[Connection, EventGroup | None], list[str]]
    request_id: str | None
    digest: str


@dataclass
class EventService:
    """The use cases around events. `on_stored` hooks run after each commit (reactor wake-up)."""

    store: Store
    max_events_per_request: int = 1000
    descs: DescCache = field(default_factory=DescCache)  # share the EventDescService's
    on_stored: list[Callable[[], None]] = field(default_factory=list)
    writer: Writer | None = None  # SQLite: the process's writer thread
    max_param_filters: int = MAX_PARAM_FILTERS

    def submit(self, batch: EventBatch, *, author: str | None) -> list[str]:
        """Validate and store a batch, all or nothing; return the ids in order.

        The same `request_id` again returns the first call's ids and stores nothing.
        """
        plan = self._plan(batch, author)
        try:
            with self.store.write() as conn:
                ids = plan.write(conn, None)
        except IntegrityError:
            return self._after_conflict(plan)
        self.stored()
        return ids

    def submit_in(self, conn: Connection, batch: EventBatch, *, author: str | None) -> list[str]:
        """`submit` in the caller's write transaction (a schedule's tick stores its event
        with the move of its next tick): the caller commits, then calls `stored`. A
        request_id seen before returns the first ids; a StepdError leaves nothing written."""
        return self._plan(batch, author).write(conn, None)

    async def submit_async(self, batch: EventBatch, *, author: str | None) -> list[str]:
        """`submit` for the event loop: on SQLite through the writer thread (grouped
        commits, no thread per request); elsewhere in the threadpool."""
        if self.writer is None:
            return await to_thread.run_sync(functools.partial(self.submit, batch, author=author))
        plan = self._plan(batch, author)
        ids = await self.writer.run(plan.write)
        self.stored()
        return ids

    def stored(self) -> None:
        """Run the `on_stored` hooks: after a commit that stored events."""
        for hook in self.on_stored:
            hook()

    def _after_conflict(self, plan: _Plan) -> list[str]:
        # Another request with the same request_id committed first: answer as it did.
        if plan.request_id is None:
            raise
        with self.store.read() as conn:
            first = event_store.find_request(conn, plan.request_id)
        if first is None:
            raise
        return _same_request(plan.request_id, first, plan.digest)

    def _plan(self, batch: EventBatch, author: str | None) -> _Plan:
        raw = batch.events
        if not isinstance(raw, list):
            raise InvalidInput("events must be a list of {name, params}", field="events")
        if len(raw) > self.max_events_per_request:
            raise InvalidInput(
                f"events has {len(raw)} items; send at most {self.max_events_per_request} "
                "per request",
                field="events",
            )
        request_id = _check_text(batch.request_id, "request_id", MAX_REQUEST_ID_LENGTH)
        source_type = _check_text(batch.source_type, "source_type", MAX_REQUEST_ID_LENGTH)
        source = _check_source(batch.source)
        valid = [_validate_one(item, i) for i, item in enumerate(raw)]
        digest = _digest(valid, author, source_type, source) if request_id is not None else ""
        names = {name for name, _params, _row in valid}
        rows = [row for _name, _params, row in valid]
        now = utcnow()

        def write(conn: Connection, group: EventGroup | None) -> list[str]:
            # Reads and checks first, writes last: a StepdError leaves nothing written.
            if request_id is not None:
                seen = event_store.find_request(conn, request_id)
                if seen is not None:
                    return _same_request(request_id, seen, digest)
            if descs := self.descs.get(conn, names):
                for i, (name, params, _row) in enumerate(valid):
                    if (desc := descs.get(name)) is not None:
                        desc.check(params, field=f"events[{i}].params")
            seqs = event_store.insert_rows(
                conn,
                rows,
                created=event_store.STORE_NOW,  # one clock for every replica's events
                author=author,
                request_id=request_id,
                source_type=source_type,
                source=source,
                group=group,
            )
            ids = format_event_ids(seqs)
            if request_id is not None:
                event_store.record_request(conn, request_id, ids, digest, now)
            return ids

        return _Plan(write=write, request_id=request_id, digest=digest)

    def get(self, event_id: str) -> Event:
        seq = parse_event_id(event_id)
        if seq is not None:
            with self.store.read() as conn:
                event = event_store.get_event(conn, seq)
            if event is not None:
                return event
        raise NotFound(f"no event with id {event_id!r}", field="id")

    def query(self, q: event_store.EventQuery) -> list[Event]:
        """The events matching `q`; more than `max_param_filters` params__ filters (or as
        many source__ filters) is a 400: each is one more index probe per candidate."""
        if len(q.params) > self.max_param_filters:
            raise InvalidInput(
                f"{len(q.params)} params__ filters; a query may combine at most "
                f"{self.max_param_filters}",
                field="params",
            )
        if len(q.source) > self.max_param_filters:
            raise InvalidInput(
                f"{len(q.source)} source__ filters; a query may combine at most "
                f"{self.max_param_filters}",
                field="source",
            )
        with self.store.read() as conn:
            return event_store.query_events(conn, q)

    def fired(self, events: Sequence[Event]) -> dict[int, trigger_store.Fired]:
        """What each of `events` fired (by seq; absent: nothing)."""
        with self.store.read() as conn:
            return trigger_store.fired_by(conn, [e.seq for e in events])

    def reject(self, event_id: str, principal: Principal) -> Event:
        """Mark an event REJECTED: it never counts as a dependency again.

        Only its author, the owner of its event description or an admin may (authz).
        """
        seq = parse_event_id(event_id)
        with self.store.write() as conn:
            event = None if seq is None else event_store.get_event(conn, seq)
            if event is None:
                raise NotFound(f"no event with id {event_id!r}", field="id")
            authz.reject_event(conn, principal, event)
            event_store.set_state(conn, event.seq, EventState.REJECTED)
        return event
