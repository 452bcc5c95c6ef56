"""Statements on the driver's own cursor, for the reactor's per-event work.

On this stack a SQLAlchemy statement (Core, or a cached `text()`) costs 60-90 µs
of Python per execution, whatever SQLite then spends on it; the same statement
on the driver's cursor costs 3-5 µs. The reactor runs several statements per
matching event, so it uses these helpers; everything else keeps SQLAlchemy.

The cursor belongs to the connection the caller's transaction is open on, so
these statements are part of that transaction: they commit and roll back with it.
Every statement is a named `Query` (store/queries.py), its parameters bound by name
and its placeholders those SQLAlchemy's compiler writes for the driver. Times are stored
as SQLAlchemy's `DateTime` stores them: text without an offset (UTC) on SQLite,
`timestamptz` on PostgreSQL.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from stepd.store.queries import Query


class Raw:
    """The driver connection under a SQLAlchemy connection, and its dialect, looked up once.

    SQLAlchemy's properties on the way to the driver cost about as much as a short
    statement, so a caller that runs many (the reactor's batch) wraps its connection
    once and passes this instead. Valid while the connection is checked out.
    """

    __slots__ = ("driver", "sqlite")

    def __init__(self, conn: Connection) -> None:
        self.driver: Any = conn.connection.driver_connection
        self.sqlite = conn.dialect.name == "sqlite"


Conn = Connection | Raw


def raw(conn: Conn) -> Raw:
    return conn if isinstance(conn, Raw) else Raw(conn)


def is_sqlite(conn: Conn) -> bool:
    return conn.sqlite if isinstance(conn, Raw) else conn.dialect.name == "sqlite"


def run(conn: Conn, query: Query, params: Mapping[str, object] | None = None) -> Any:
    """Run the named `query`, its parameters bound by name, in `conn`'s transaction; the
    driver's cursor."""
    r = raw(conn)
    compiled = query.compiled(r.sqlite)
    cur = r.driver.cursor()
    cur.execute(compiled.sql, compiled.bind(params or {}))
    return cur


def run_insert(conn: Conn, query: Query, params: Mapping[str, object]) -> int | None:
    """`insert` for a named INSERT of one row: the new row's `id`, or None when it
    inserted nothing (ON CONFLICT DO NOTHING)."""
    r = raw(conn)
    cur = r.driver.cursor()
    if r.sqlite:
        compiled = query.compiled(True)
        cur.execute(compiled.sql, compiled.bind(params))
        inserted = cur.lastrowid if cur.rowcount > 0 else None
        cur.close()
        return None if inserted is None else int(inserted)
    compiled = _returning(query).compiled(False)
    cur.execute(compiled.sql, compiled.bind(params))
    row = cur.fetchone()
    cur.close()
    return None if row is None else int(row[0])


@functools.cache
def _returning(query: Query) -> Query:
    return Query(name=query.name, sql=query.sql + " RETURNING id")


def run_many(conn: Conn, query: Query, rows: Iterable[Mapping[str, object]]) -> None:
    """Run the named `query` once per parameter mapping of `rows`."""
    r = raw(conn)
    compiled = query.compiled(r.sqlite)
    cur = r.driver.cursor()
    cur.executemany(compiled.sql, [compiled.bind(row) for row in rows])
    cur.close()


# JSON as the store keeps it, like json.dumps(..., ensure_ascii=False): one encoder, since
# json.dumps with any option makes a new encoder per call.
to_json = json.JSONEncoder(ensure_ascii=False).encode


def time_param(conn: Conn, value: datetime) -> object:
    """`value` as the driver should bind it for a DateTime column."""
    if not is_sqlite(conn):
        return value
    # The text SQLAlchemy's SQLite DateTime writes and reads back: UTC, no offset.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def read_time(value: object) -> datetime:
    """A DateTime column's value from the driver as an aware UTC datetime."""
    if isinstance(value, str):  # SQLite
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        raise TypeError(f"not a stored time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
