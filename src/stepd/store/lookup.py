"""The matcher's view of stored events: `find(name, equal)` on the param index."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from sqlalchemy import Connection, TextualSelect, text

from stepd.domain.events import Event
from stepd.store.events import index_value, row_to_event
from stepd.store.schema import events

# How far to count when choosing the most selective param to lead a lookup with.
ESTIMATE_CAP = 1000


_COLUMNS = (
    events.c.seq,
    events.c.name,
    events.c.params,
    events.c.state,
    events.c.created,
    events.c.author,
    events.c.request_id,
    events.c.source_type,
    events.c.source,
)
_SELECT = (
    "SELECT e.seq, e.name, e.params, e.state, e.created, e.author, e.request_id,"
    " e.source_type, e.source"
)


@functools.cache
def _find_statement(n_params: int, before: bool) -> TextualSelect:
    """Prior events of a name with `n_params` equal params: one prepared text per shape
    (building a Core statement per lookup cost ~50x the query itself)."""
    prior = "e.seq < :before AND e.state != 'REJECTED'" if before else "e.state = 'PROCESSED'"
    if n_params == 0:
        sql = f"{_SELECT} FROM events e WHERE e.name = :name AND {prior}"
    else:
        where = ["p.name = :name", "p.key = :k0", "p.value = :v0", prior]
        where += [
            f"EXISTS (SELECT 1 FROM event_params q{i} WHERE q{i}.name = :name"
            f" AND q{i}.key = :k{i} AND q{i}.value = :v{i} AND q{i}.event_seq = p.event_seq)"
            for i in range(1, n_params)
        ]
        sql = (
            f"{_SELECT} FROM event_params p JOIN events e ON e.seq = p.event_seq"
            f" WHERE {' AND '.join(where)}"
        )
    return text(sql).columns(*_COLUMNS)


_ESTIMATE = text(
    "SELECT count(*) FROM (SELECT 1 FROM event_params WHERE name = :name AND key = :key"
    " AND value = :value LIMIT :cap) AS counted"
)


class StoredEvents:
    """Prior events for one evaluation.

    For the reactor, "prior" means already evaluated (PROCESSED): events are
    evaluated one at a time in order, so each firing is completed by exactly one
    event. For a story told later, it means created before the event and not
    rejected (`before_seq`).
    """

    def __init__(self, conn: Connection, *, before_seq: int | None = None) -> None:
        self.conn = conn
        self.before_seq = before_seq

    def _estimate(self, name: str, key: str, value: str) -> int:
        found = self.conn.execute(
            _ESTIMATE, {"name": name, "key": key, "value": index_value(value), "cap": ESTIMATE_CAP}
        )
        return int(found.scalar_one())

    def find(self, name: str, equal: Mapping[str, str]) -> list[Event]:
        items = list(equal.items())
        if len(items) > 1:
            # Lead with the rarest value: a join on `date` beats a scan of `taskType=X`.
            items.sort(key=lambda kv: self._estimate(name, kv[0], kv[1]))
        binds: dict[str, object] = {"name": name}
        for i, (key, value) in enumerate(items):
            binds[f"k{i}"], binds[f"v{i}"] = key, index_value(value)
        if self.before_seq is not None:
            binds["before"] = self.before_seq
        statement = _find_statement(len(items), self.before_seq is not None)
        return [row_to_event(row) for row in self.conn.execute(statement, binds)]
