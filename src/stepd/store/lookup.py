"""The matcher's view of stored events: `find(name, equal)` on the param index."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, and_, exists, func, select

from stepd.domain.events import Event, EventState
from stepd.store.events import index_value, row_to_event
from stepd.store.schema import event_params, events

# How far to count when choosing the most selective param to lead a lookup with.
ESTIMATE_CAP = 1000


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

    def _estimate(self, name: str, key: str, text: str) -> int:
        inner = (
            select(event_params.c.event_seq)
            .where(
                event_params.c.name == name,
                event_params.c.key == key,
                event_params.c.value == index_value(text),
            )
            .limit(ESTIMATE_CAP)
            .subquery()
        )
        return int(self.conn.execute(select(func.count()).select_from(inner)).scalar_one())

    def find(self, name: str, equal: Mapping[str, str]) -> list[Event]:
        items = list(equal.items())
        if len(items) > 1:
            # Lead with the rarest value: a join on `date` beats a scan of `taskType=X`.
            items.sort(key=lambda kv: self._estimate(name, kv[0], kv[1]))
        if items:
            key, text = items[0]
            p = event_params
            stmt = (
                select(events)
                .select_from(p.join(events, events.c.seq == p.c.event_seq))
                .where(p.c.name == name, p.c.key == key, p.c.value == index_value(text))
            )
            for key, text in items[1:]:
                q = event_params.alias()
                stmt = stmt.where(
                    exists().where(
                        and_(
                            q.c.name == name,
                            q.c.key == key,
                            q.c.value == index_value(text),
                            q.c.event_seq == p.c.event_seq,
                        )
                    )
                )
        else:
            stmt = select(events).where(events.c.name == name)
        if self.before_seq is None:
            stmt = stmt.where(events.c.state == EventState.PROCESSED.value)
        else:
            stmt = stmt.where(
                events.c.seq < self.before_seq, events.c.state != EventState.REJECTED.value
            )
        return [row_to_event(row) for row in self.conn.execute(stmt)]
